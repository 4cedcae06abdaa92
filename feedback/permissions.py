"""Who may do what in a project: the one place these rules live.

Roles: a superuser can do everything; a project admin manages their project (imports, exports,
training, checkpoints, members); an annotator labels items of the projects they belong to.
"""
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import CharField, OuterRef, QuerySet, Subquery, Value

from .models import Membership, Project


def role_in(user: User | AnonymousUser, project: Project | int) -> str | None:
    """The user's role in the project: "admin", "annotator", or None for non-members.
    Superusers count as admins of every project."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Membership.Role.ADMIN
    project_id = project.pk if isinstance(project, Project) else project
    return Membership.objects.filter(project_id=project_id, user=user).values_list("role", flat=True).first()


def is_member(user, project) -> bool:
    return role_in(user, project) is not None


def is_project_admin(user, project) -> bool:
    return role_in(user, project) == Membership.Role.ADMIN


def visible_projects(user):
    """Projects a user may see: all for superusers, their memberships otherwise."""
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user).distinct()


def with_role(projects: QuerySet, user) -> QuerySet:
    """`projects` annotated with `my_role`: what role_in() says for each, in the same query
    (a list of projects must not ask once per row)."""
    if not user.is_authenticated:
        return projects.annotate(my_role=Value(None, output_field=CharField()))
    if user.is_superuser:
        return projects.annotate(my_role=Value(Membership.Role.ADMIN, output_field=CharField()))
    mine = Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]
    return projects.annotate(my_role=Subquery(mine))
