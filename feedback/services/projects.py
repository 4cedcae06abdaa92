"""Projects, memberships and accounts."""
from django.contrib.auth import get_user_model
from django.db import transaction

from feedback.models import Membership, Project

from .errors import InvalidInput


def create_project(creator, **fields) -> Project:
    """Create a project; its creator becomes its first admin."""
    with transaction.atomic():
        project = Project.objects.create(**fields)
        Membership.objects.create(project=project, user=creator, role=Membership.Role.ADMIN)
    return project


def set_member(project: Project, username: str, role: str) -> tuple[Membership, bool]:
    """Add `username` to the project with `role`, or change their role. Returns (membership, created)."""
    if role not in Membership.Role.values:
        raise InvalidInput(f"Role must be one of {', '.join(Membership.Role.values)}.", field="role")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise InvalidInput(f"There is no user named '{username}'.", field="username")
    return Membership.objects.update_or_create(project=project, user=user, defaults={"role": role})


def create_account(username: str, password: str, *, email: str = ""):
    """A plain account (no staff or superuser rights); validation happens in the caller."""
    return get_user_model().objects.create_user(username=username, password=password, email=email)
