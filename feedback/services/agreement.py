"""How far annotators agree: Krippendorff's alpha per project and round, and a quality table per
annotator. Counting happens in SQL; only per-round sums and per-annotator rows reach Python.

Krippendorff's alpha for binary (nominal) labels. An item with m >= 2 labels, d of them
desirable, adds d(m-d)/(m-1) to the observed disagreement o (the off-diagonal cell of the
coincidence matrix); n is the number of pairable labels, n1 of them desirable, n0 = n - n1:

    alpha = 1 - (n - 1) * o / (n0 * n1)

It is undefined (None) when no item has two labels, or when every pairable label has the same
value (n0 * n1 = 0: no variation, so agreement cannot be told apart from chance).
"""
from __future__ import annotations

import statistics
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db import connection

from feedback.models import Generation, Label, Project, Round
from feedback.services.label_selectors import votes_per_generation

# Gaps between an annotator's consecutive labels longer than this are breaks, not labelling time.
BREAK_SECONDS = 600
AGREEMENT_DEFINITION = (
    "share of the annotator's labels on items with other labels that match the majority of the "
    "OTHER annotators' labels (own vote excluded; items where the others tie are not counted)"
)


def alpha_from_sums(pairable: int, desirable: int, disagreement: float) -> float | None:
    """Alpha from n pairable labels, n1 desirable among them and the observed disagreement o."""
    undesirable = pairable - desirable
    if pairable < 2 or desirable == 0 or undesirable == 0:
        return None
    return 1.0 - (pairable - 1) * disagreement / (desirable * undesirable)


def krippendorff_alpha_binary(items: Iterable[tuple[int, int]]) -> float | None:
    """Alpha over items given as (labels, desirable labels); items with fewer than 2 labels are
    not pairable and are ignored."""
    pairable = desirable = 0
    disagreement = 0.0
    for labels, yes in items:
        if labels >= 2:
            pairable += labels
            desirable += yes
            disagreement += yes * (labels - yes) / (labels - 1)
    return alpha_from_sums(pairable, desirable, disagreement)


def _round_sums(project: Project) -> dict[int, tuple[int, int, int, float]]:
    """Per round number: (pairable items, pairable labels, desirable labels, disagreement)."""
    inner, params = votes_per_generation(project).filter(n__gte=2).query.sql_with_params()
    sql = (
        "SELECT round_number, COUNT(*), SUM(n), SUM(d), SUM(d * (n - d) * 1.0 / (n - 1)) "
        f"FROM ({inner}) AS items GROUP BY round_number"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        # int()/float(): PostgreSQL sums integers as numeric (Decimal).
        return {row[0]: (int(row[1]), int(row[2]), int(row[3]), float(row[4])) for row in cursor.fetchall()}


def _rounds_table(project: Project, sums: dict) -> list[dict]:
    rounds = []
    for number in Round.objects.filter(project=project).order_by("number").values_list("number", flat=True):
        items, pairable, desirable, disagreement = sums.get(number, (0, 0, 0, 0.0))
        rounds.append({
            "round": number,
            "alpha": alpha_from_sums(pairable, desirable, disagreement),
            "items": items,
            "labels": pairable,
        })
    return rounds


def _overall_alpha(sums: dict) -> float | None:
    # An item never spans rounds, so the per-round sums add up to the project's.
    totals = [sum(column) for column in zip(*sums.values())] or [0, 0, 0, 0.0]
    return alpha_from_sums(totals[1], totals[2], totals[3])


def round_agreement(project: Project) -> list[dict]:
    """Alpha per round: every round of the project, None where undefined."""
    return _rounds_table(project, _round_sums(project))


def project_alpha(project: Project) -> float | None:
    """Alpha over all the project's items."""
    return _overall_alpha(_round_sums(project))


def _annotator_counts(project: Project) -> list[tuple]:
    """Per annotator: user id, username, labels, desirable, compared, agreed (see
    AGREEMENT_DEFINITION). One statement: each label joined to its item's counts."""
    label, generation, round_ = Label._meta.db_table, Generation._meta.db_table, Round._meta.db_table
    user = get_user_model()._meta.db_table
    desirable = "CASE WHEN l.desirable THEN 1 ELSE 0 END"
    others_yes = f"(c.d - {desirable})"  # the other annotators' desirable votes; they cast c.n - 1
    sql = f"""
        WITH c AS (
            SELECT l.generation_id, COUNT(*) AS n, SUM({desirable}) AS d
            FROM {label} l JOIN {generation} g ON g.id = l.generation_id JOIN {round_} r ON r.id = g.round_id
            WHERE r.project_id = %s GROUP BY l.generation_id
        )
        SELECT l.annotator_id, u.username, COUNT(*), SUM({desirable}),
               SUM(CASE WHEN c.n >= 2 AND 2 * {others_yes} <> c.n - 1 THEN 1 ELSE 0 END),
               SUM(CASE WHEN c.n >= 2 AND ((l.desirable AND 2 * {others_yes} > c.n - 1)
                                        OR (NOT l.desirable AND 2 * {others_yes} < c.n - 1)) THEN 1 ELSE 0 END)
        FROM {label} l JOIN c ON c.generation_id = l.generation_id JOIN {user} u ON u.id = l.annotator_id
        GROUP BY l.annotator_id, u.username ORDER BY u.username
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.pk])
        return cursor.fetchall()


def median_seconds_per_label(project: Project) -> dict[int, float | None]:
    """Per annotator: the median gap in seconds between consecutive labels they created in this
    project, gaps over BREAK_SECONDS left out as breaks (None: no gap to measure)."""
    if connection.vendor == "postgresql":
        return _median_gaps_in_sql(project)
    return _median_gaps_in_python(project)


def _median_gaps_in_sql(project: Project) -> dict[int, float | None]:
    # One statement: LAG() gives each label's gap to the annotator's previous one, and
    # percentile_cont(0.5) is the median (interpolated like statistics.median).
    label, generation, round_ = Label._meta.db_table, Generation._meta.db_table, Round._meta.db_table
    sql = f"""
        SELECT annotator_id,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) FILTER (WHERE gap <= %s)
        FROM (
            SELECT l.annotator_id, EXTRACT(EPOCH FROM l.created_at - LAG(l.created_at)
                       OVER (PARTITION BY l.annotator_id ORDER BY l.created_at)) AS gap
            FROM {label} l JOIN {generation} g ON g.id = l.generation_id JOIN {round_} r ON r.id = g.round_id
            WHERE r.project_id = %s
        ) AS gaps
        GROUP BY annotator_id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [BREAK_SECONDS, project.pk])
        return {user_id: None if median is None else float(median) for user_id, median in cursor.fetchall()}


def _median_gaps_in_python(project: Project) -> dict[int, float | None]:
    # Databases without percentile_cont (SQLite): stream the timestamps in order.
    gaps: dict[int, list[float]] = {}
    previous_user = previous_at = None
    moments = (
        Label.objects.filter(generation__round__project=project)
        .order_by("annotator_id", "created_at")
        .values_list("annotator_id", "created_at")
    )
    for user_id, created_at in moments.iterator(chunk_size=5000):
        user_gaps = gaps.setdefault(user_id, [])
        if user_id == previous_user:
            gap = (created_at - previous_at).total_seconds()
            if gap <= BREAK_SECONDS:
                user_gaps.append(gap)
        previous_user, previous_at = user_id, created_at
    return {user_id: statistics.median(values) if values else None for user_id, values in gaps.items()}


def annotator_quality(project: Project) -> list[dict]:
    medians = median_seconds_per_label(project)
    table = []
    for user_id, username, *counts in _annotator_counts(project):
        labels, desirable, compared, agreed = map(int, counts)  # PostgreSQL sums come back as Decimal
        table.append({
            "user_id": user_id,
            "username": username,
            "labels": labels,
            "desirable_rate": desirable / labels,
            "compared": compared,
            "agreement": agreed / compared if compared else None,
            "median_seconds_per_label": medians.get(user_id),
        })
    return table


def agreement_summary(project: Project) -> dict:
    """What admins see on the dashboard and in the stats payload."""
    sums = _round_sums(project)
    return {
        "alpha": _overall_alpha(sums),
        "rounds": _rounds_table(project, sums),
        "annotators": annotator_quality(project),
        "agreement_definition": AGREEMENT_DEFINITION,
        "break_seconds": BREAK_SECONDS,
    }
