"""Which labels a user may read, and the labels of a project counted per generation."""
from django.db.models import Count, F, Q, QuerySet

from feedback.models import Label, Membership, Project
from feedback.permissions import role_in


def may_see_others_labels(user, project: Project) -> bool:
    """Admins always; annotators only when the project allows it."""
    role = role_in(user, project)
    return role == Membership.Role.ADMIN or (role is not None and project.annotators_see_others)


def visible_labels(user, project: Project | None = None) -> QuerySet[Label]:
    """Labels `user` may read: their own, plus every label of the projects where
    may_see_others_labels() holds. Newest first."""
    labels = Label.objects.select_related("generation__round", "generation__prompt", "annotator")
    if project is not None:
        labels = labels.filter(generation__round__project=project)
        if not may_see_others_labels(user, project):
            labels = labels.filter(annotator=user)
    elif not user.is_superuser:
        shared = Membership.objects.filter(user=user).filter(
            Q(role=Membership.Role.ADMIN) | Q(project__annotators_see_others=True)
        )
        member_of = Membership.objects.filter(user=user).values("project")
        labels = labels.filter(generation__round__project__in=member_of).filter(
            Q(annotator=user) | Q(generation__round__project__in=shared.values("project"))
        )
    return labels.order_by("-created_at", "-pk")


def votes_per_generation(project: Project) -> QuerySet:
    """One row per labelled generation of the project: generation_id, round_id, round_number,
    n (labels) and d (desirable labels). Statistics and agreement aggregate over it in SQL."""
    return (
        Label.objects.filter(generation__round__project=project)
        .values("generation_id")
        .annotate(
            round_id=F("generation__round_id"),
            round_number=F("generation__round__number"),
            n=Count("pk"),
            d=Count("pk", filter=Q(desirable=True)),
        )
        .order_by()
    )
