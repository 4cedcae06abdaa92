"""Selectors for project statistics: counts per round, desirable rates, the caller's progress,
and (for admins) per-annotator counts plus the agreement figures of services/agreement.py."""
from django.db import connection
from django.db.models import Count, Max, Q

from feedback.models import Generation, Label, Project, Prompt

from . import queue
from .label_selectors import votes_per_generation
from .agreement import agreement_summary  # admin-only: per-round alpha, per-annotator agreement


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _label_counts_per_round(project: Project) -> dict[int, tuple[int, int, int, int]]:
    """Per round id: (labelled generations, complete generations, labels, desirable labels), from
    one GROUP BY generation wrapped in a GROUP BY round: a fixed number of queries however many
    rounds there are."""
    inner, params = votes_per_generation(project).query.sql_with_params()
    sql = (
        "SELECT round_id, COUNT(*), SUM(CASE WHEN n >= %s THEN 1 ELSE 0 END), SUM(n), SUM(d) "
        f"FROM ({inner}) AS items GROUP BY round_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.labels_per_item, *params])
        # int(): PostgreSQL sums integers as numeric (Decimal).
        return {row[0]: tuple(int(value) for value in row[1:]) for row in cursor.fetchall()}


def round_counts(project: Project, *, with_rates: bool) -> list[dict]:
    """One entry per round, oldest first. `labelled` counts generations with at least one label,
    `complete` those with the labels they need; both are counted from the label table."""
    generations = dict(
        Generation.objects.filter(round__project=project).order_by().values("round_id")
        .annotate(n=Count("pk")).values_list("round_id", "n")
    )
    label_counts = _label_counts_per_round(project)
    rows = []
    for round_ in project.rounds.order_by("number"):
        labelled, complete, total, desirable = label_counts.get(round_.pk, (0, 0, 0, 0))
        row = {
            "id": round_.pk,
            "number": round_.number,
            "status": round_.status,
            "checkpoint": round_.checkpoint_id,
            "generations": generations.get(round_.pk, 0),
            "labelled": labelled,
            "complete": complete,
            "labels": total,
        }
        if with_rates:
            row["desirable"] = desirable
            row["desirable_rate"] = _rate(desirable, total)
        rows.append(row)
    return rows


def my_progress(user, project: Project) -> dict:
    """The caller's labels in the project against everything they could label."""
    mine = Label.objects.filter(annotator=user, generation__round__project=project).aggregate(
        total=Count("pk"), desirable=Count("pk", filter=Q(desirable=True))
    )
    available = queue.count_available(user, project)
    return {
        "labelled": mine["total"],
        "available": available,
        "total": mine["total"] + available,
        "desirable": mine["desirable"],
        "desirable_rate": _rate(mine["desirable"], mine["total"]),
    }


def annotator_counts(project: Project) -> list[dict]:
    rows = (
        Label.objects.filter(generation__round__project=project)
        .values("annotator", "annotator__username")
        .annotate(labels=Count("pk"), desirable=Count("pk", filter=Q(desirable=True)), last_label_at=Max("created_at"))
        .order_by("annotator__username")
    )
    return [
        {
            "user": row["annotator"],
            "username": row["annotator__username"],
            "labels": row["labels"],
            "desirable": row["desirable"],
            "desirable_rate": _rate(row["desirable"], row["labels"]),
            "last_label_at": row["last_label_at"],
        }
        for row in rows
    ]


def admin_sections(project: Project) -> dict:
    """Admin-only sections of the stats payload. Extra admin sections are merged HERE."""
    return {"annotators": annotator_counts(project), "agreement": agreement_summary(project)}


def project_stats(user, project: Project, *, is_admin: bool) -> dict:
    """The payload of GET /api/projects/{id}/stats/. Desirable rates of others' labels are shown
    to admins, and to annotators only when the project lets annotators see others' labels."""
    rounds = round_counts(project, with_rates=is_admin or project.annotators_see_others)
    payload = {
        "project": project.pk,
        "labels_per_item": project.labels_per_item,
        "prompts": Prompt.objects.filter(project=project).count(),
        "rounds": rounds,
        "me": my_progress(user, project),
    }
    if is_admin:
        payload.update(admin_sections(project))
    return payload
