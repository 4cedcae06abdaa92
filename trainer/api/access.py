"""The one permission rule of the orchestration API and the admin pages: project admins and superusers.

The same rule as the feedback API (feedback/api/access.py): a project the user cannot see (not a
member) is 404, a member who is not an admin gets 403, an anonymous request is refused by DRF.
"""
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from feedback.api.access import project_for
from feedback.permissions import is_project_admin, visible_projects


def admin_project(request, project_id: int):
    return project_for(request.user, project_id, admin=True)


def admin_object(request, queryset, pk: int):
    """An object that belongs to a project (run, checkpoint), with the same 404/403 rule.

    Raises Django's Http404 and PermissionDenied, so the admin pages use it as they are and
    DRF answers them as 404 and 403 with the same message."""
    obj = get_object_or_404(queryset.filter(project__in=visible_projects(request.user)), pk=pk)
    if not is_project_admin(request.user, obj.project_id):
        raise PermissionDenied("Only the project's admins may manage its training runs and checkpoints.")
    return obj
