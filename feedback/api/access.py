"""Permission checks for the feedback API, one call at the top of each endpoint.

Policy: a project (or anything in it) that the caller cannot see answers 404, whether it
exists or not, so non-members learn nothing; a member who lacks the needed role gets 403.
Anonymous callers get DRF's 403 ("Authentication credentials were not provided").
"""
from rest_framework.exceptions import NotFound, PermissionDenied

from feedback.models import Generation, Label, Project
from feedback.permissions import is_project_admin, visible_projects
from feedback.services.label_selectors import may_see_others_labels


def project_for(user, project_id, *, admin: bool = False) -> Project:
    project = visible_projects(user).filter(pk=project_id).first()
    if project is None:
        raise NotFound("No such project.")
    if admin and not is_project_admin(user, project):
        raise PermissionDenied("Only the project's admins may do this.")
    return project


def generation_for(user, generation_id) -> Generation:
    """A generation of a project the caller belongs to (any role)."""
    generation = (
        Generation.objects.select_related("round__project", "prompt")
        .filter(pk=generation_id, round__project__in=visible_projects(user))
        .first()
    )
    if generation is None:
        raise NotFound("No such generation.")
    return generation


def label_for(user, label_id, *, own: bool = False) -> Label:
    """A label the caller may read; with own=True, one they may also change (their own)."""
    label = (
        Label.objects.select_related("generation__round__project", "generation__prompt", "annotator")
        .filter(pk=label_id, generation__round__project__in=visible_projects(user))
        .first()
    )
    if label is None:
        raise NotFound("No such label.")
    mine = label.annotator_id == user.pk
    if not mine and not may_see_others_labels(user, label.generation.round.project):
        raise PermissionDenied("This is another annotator's label.")
    if own and not mine:
        raise PermissionDenied("You can only change your own labels.")
    return label


def require_superuser(user) -> None:
    if not user.is_superuser:
        raise PermissionDenied("Only superusers may do this.")
