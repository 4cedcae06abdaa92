"""Read side of the admin project page: rounds with their desirable rate, runs with their curves,
the checkpoint lineage. Plain functions over the models; the views only pass the results on."""
from dataclasses import dataclass
from functools import cached_property

from feedback.models import Label, Project, Round
from trainer.charts import Chart, rate_chart, run_charts
from trainer.models import Checkpoint, TrainingRun
from trainer.services.rounds import rounds_with_counts
from trainer.services.runs import FINISHED, checkpoint_of, eta_seconds, example_counts

RUNS_SHOWN = 20
REASONS_SHOWN = 10


@dataclass(frozen=True)
class RoundRow:
    round: Round
    generations: int
    labels: int
    desirable: int

    @property
    def rate(self) -> float | None:
        return self.desirable / self.labels if self.labels else None

    @property
    def live(self) -> bool:
        return self.round.status == Round.Status.GENERATING


def round_rows(project: Project, ids=None) -> list[RoundRow]:
    """Every round (or those among `ids`), oldest first, with generation and label counts (one query)."""
    queryset = rounds_with_counts(project)
    if ids is not None:
        queryset = queryset.filter(pk__in=ids)
    return [
        RoundRow(round=r, generations=r.generation_count, labels=r.label_count, desirable=r.desirable_count)
        for r in queryset
    ]


def round_payload(row: RoundRow) -> dict:
    """One round for the page's polling script."""
    return {
        "id": row.round.pk,
        "status": row.round.status,
        "progress_done": row.round.progress_done,
        "progress_total": row.round.progress_total,
        "generations": row.generations,
        "labels": row.labels,
        "desirable": row.desirable,
        "rate": row.rate,
        "live": row.live,
    }


def rate_history(rows: list[RoundRow]) -> Chart:
    """The headline: the share of thumbs-up among each round's labels."""
    return rate_chart([(row.round.number, row.rate) for row in rows])


def format_seconds(seconds: float | None) -> str:
    """An ETA for people: "42 s", "3 min 05 s", "1 h 02 min"; empty when unknown."""
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class RunView:
    """One run as the page shows it. The run's example snapshot can be large (one entry per
    labelled generation), so it is read only when the checkpoint's summary lacks the counts."""

    def __init__(self, run: TrainingRun):
        self.run = run
        self.charts = run_charts(run.metrics or [])

    @property
    def live(self) -> bool:
        return self.run.status not in FINISHED

    @property
    def eta(self) -> str:
        return format_seconds(eta_seconds(self.run))

    @property
    def checkpoint(self) -> Checkpoint | None:
        return checkpoint_of(self.run)

    @cached_property
    def examples(self) -> dict:
        summary = self.checkpoint.metrics if self.checkpoint is not None else {}
        if {"examples", "desirable", "undesirable"} <= summary.keys():
            return {"total": summary["examples"], "desirable": summary["desirable"],
                    "undesirable": summary["undesirable"]}
        examples = TrainingRun.objects.filter(pk=self.run.pk).values_list("examples", flat=True).first() or []
        return example_counts(examples)


def _runs(project: Project):
    # The snapshot is deferred: see RunView.
    return (TrainingRun.objects.filter(project=project).select_related("created_by", "checkpoint")
            .defer("examples").order_by("-id"))


def recent_runs(project: Project, limit: int = RUNS_SHOWN) -> list[RunView]:
    return [RunView(run) for run in _runs(project)[:limit]]


def runs_by_id(project: Project, ids) -> list[RunView]:
    """The project's runs among `ids` (what the polling script asks about)."""
    return [RunView(run) for run in _runs(project).filter(pk__in=ids)]


def live_payload(run: RunView) -> dict:
    """What the page's polling script needs to redraw one run: text fields and polyline points."""
    return {
        "id": run.run.pk,
        "status": run.run.status,
        "phase": run.run.phase,
        "step": run.run.step,
        "total_steps": run.run.total_steps,
        "eta": run.eta,
        "error": run.run.error,
        "live": run.live,
        "charts": {key: chart.as_dict() for key, chart in run.charts.items()},
    }


@dataclass
class LineageNode:
    checkpoint: Checkpoint
    depth: int
    active: bool


def checkpoint_lineage(project: Project) -> list[LineageNode]:
    """Checkpoints in tree order (each parent before its children, oldest first), with depth,
    so the template can indent them without recursion. Roots start from the base model."""
    checkpoints = list(Checkpoint.objects.filter(project=project).order_by("id"))
    by_parent: dict[int | None, list[Checkpoint]] = {}
    known = {c.pk for c in checkpoints}
    for checkpoint in checkpoints:
        # A parent from another project (should not happen) is shown as a root rather than lost.
        parent = checkpoint.parent_id if checkpoint.parent_id in known else None
        by_parent.setdefault(parent, []).append(checkpoint)
    ordered: list[LineageNode] = []
    stack = [(c, 0) for c in reversed(by_parent.get(None, []))]
    while stack:
        checkpoint, depth = stack.pop()
        ordered.append(LineageNode(checkpoint, depth, checkpoint.pk == project.active_checkpoint_id))
        stack.extend((child, depth + 1) for child in reversed(by_parent.get(checkpoint.pk, [])))
    return ordered


def latest_reasons(project: Project, limit: int = REASONS_SHOWN) -> list[Label]:
    """The newest labels that came with a written reason: why annotators liked or rejected items."""
    return list(
        Label.objects.filter(generation__round__project=project).exclude(reason="")
        .select_related("annotator", "generation__prompt", "generation__round")
        .order_by("-updated_at", "-id")[:limit]
    )
