"""Read-only queries behind the server-rendered annotator pages (home and annotate)."""
from dataclasses import dataclass

from django.db.models import Count, Q

from .models import Label, Membership, Project
from .permissions import visible_projects, with_role


@dataclass(frozen=True)
class ProjectEntry:
    project: Project
    role: str
    my_labels: int

    @property
    def is_admin(self) -> bool:
        return self.role == Membership.Role.ADMIN


def home_projects(user) -> list[ProjectEntry]:
    """The user's projects with their role and how many items they have labelled in each."""
    projects = with_role(visible_projects(user), user).annotate(
        my_labels=Count("prompts__generations__labels", filter=Q(prompts__generations__labels__annotator=user))
    )
    return [
        ProjectEntry(project=project, role=project.my_role, my_labels=project.my_labels)
        for project in projects.order_by("name")
    ]


def recent_decisions(user, project: Project, limit: int = 8) -> list[dict]:
    """The user's latest labels in the project, newest first (by creation, the order undo follows),
    shaped like the page's own history entries so undo and flipping work after a reload too."""
    labels = (
        Label.objects.filter(annotator=user, generation__prompt__project=project)
        .select_related("generation__prompt", "generation__round")
        .order_by("-created_at", "-id")[:limit]
    )
    return [
        {
            "label": label.pk,
            "generation": label.generation_id,
            "desirable": label.desirable,
            "reason": label.reason,
            "item": {
                "generation": label.generation_id,
                "prompt": label.generation.prompt.content,
                "completion": label.generation.text,
                "round": label.generation.round.number,
            },
        }
        for label in labels
    ]
