"""The one permission rule of the orchestration API: project admins and superusers only.

The same rule as the feedback API (feedback/api/access.py): a project the user cannot see (not a
member) is 404, a member who is not an admin gets 403, an anonymous request is refused by DRF.
"""
from django.shortcuts import get_object_or_404

from feedback.api.access import project_for
from feedback.permissions import visible_projects


def admin_project(request, project_id: int):
    return project_for(request.user, project_id, admin=True)


def admin_object(request, queryset, pk: int):
    """An object that belongs to a project (run, checkpoint), with the same 404/403 rule."""
    obj = get_object_or_404(queryset.filter(project__in=visible_projects(request.user)), pk=pk)
    project_for(request.user, obj.project_id, admin=True)
    return obj
