"""Which labels and generations an export selects, aggregated in SQL."""
from __future__ import annotations


from django.db.models import CharField, Count, F, Func, Q, QuerySet

from feedback.models import Label, Project

from .params import AGREEMENT_EPSILON, ExportSpec

# --- selection (SQL) ---------------------------------------------------------------------------


class IsoTimestamp(Func):
    """A timestamp as ISO 8601 text in UTC, formatted by the database: far cheaper than building
    a datetime per value in Python only to print it again."""

    output_field = CharField()
    arity = 1

    def as_postgresql(self, compiler, connection, **extra):
        template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        # Django keeps SQLite datetimes as UTC text "YYYY-MM-DD HH:MM:SS[.ffffff]".
        return self.as_sql(compiler, connection, template="replace(%(expressions)s, ' ', 'T') || 'Z'", **extra)


def _label_conditions(spec: ExportSpec) -> dict:
    conditions = {}
    if spec.annotator_ids:
        conditions["annotator_id__in"] = spec.annotator_ids
    if spec.created_from:
        conditions["created_at__gte"] = spec.created_from
    if spec.created_to:
        conditions["created_at__lte"] = spec.created_to
    return conditions


def _agreement_condition(spec: ExportSpec, *, exclude_ties: bool) -> Q:
    """Conditions on per-generation counts n (selected labels) and d (desirable among them)."""
    condition = Q(n__gte=spec.min_labels)
    if exclude_ties:
        condition &= ~Q(n=F("d") * 2)
    if spec.unanimous:
        condition &= Q(d=0) | Q(d=F("n"))
    if spec.min_agreement is not None:
        share = spec.min_agreement
        condition &= Q(d__gte=F("n") * share - AGREEMENT_EPSILON) | Q(d__lte=F("n") * (1 - share) + AGREEMENT_EPSILON)
    return condition


def _selected_labels(project: Project, spec: ExportSpec) -> QuerySet:
    labels = Label.objects.filter(generation__round__project=project, **_label_conditions(spec))
    if spec.rounds:
        labels = labels.filter(generation__round__number__in=spec.rounds)
    return labels


def _per_generation_counts(labels: QuerySet) -> QuerySet:
    """GROUP BY generation in SQL: n selected labels, d of them desirable."""
    return labels.order_by().values("generation_id").annotate(n=Count("id"), d=Count("id", filter=Q(desirable=True)))


def majority_queryset(project: Project, spec: ExportSpec) -> QuerySet:
    """(generation_id, n, d) per generation with a majority, aggregated in SQL, ties and
    generations failing the agreement filters left out. Only integers are grouped; the texts
    are joined on afterwards (_kto_query)."""
    return (
        _per_generation_counts(_selected_labels(project, spec))
        .filter(_agreement_condition(spec, exclude_ties=True))
        .order_by("generation_id")
        .values_list("generation_id", "n", "d")
    )


def labels_queryset(project: Project, spec: ExportSpec) -> QuerySet:
    """One row per selected label as plain tuples (no model instances)."""
    labels = _selected_labels(project, spec)
    if spec.filters_agreement:
        agreeing = (
            _per_generation_counts(labels)
            .filter(_agreement_condition(spec, exclude_ties=False))
            .values("generation_id")
        )
        labels = labels.filter(generation_id__in=agreeing)
    annotator = "annotator__username" if spec.annotator_names else "annotator_id"
    # By generation (all votes on an item together), then label: deterministic, and PostgreSQL
    # streams it from the generation indexes without sorting the whole result first.
    return labels.order_by("generation_id", "id").annotate(
        created_iso=IsoTimestamp("created_at"), updated_iso=IsoTimestamp("updated_at")
    ).values_list(
        "generation_id", "generation__round__number", "generation__checkpoint_id", annotator,
        "desirable", "reason", "created_iso", "updated_iso",
    )


def uses_chat_form(project: Project, spec: ExportSpec) -> bool:
    """Whether the kto export is conversational: any selected prompt is a chat prompt."""
    return _selected_labels(project, spec).filter(generation__prompt__messages__isnull=False).exists()


def count_rows(project: Project, spec: ExportSpec) -> int:
    """Rows the export will hold (the command's progress bar total)."""
    if spec.view == "kto":
        return majority_queryset(project, spec).count()
    return labels_queryset(project, spec).count()
