"""Krippendorff's alpha and the per-annotator quality table."""
from datetime import datetime, timedelta, timezone

import pytest
from django.template.loader import render_to_string

from feedback.models import Label
from feedback.services.agreement import (
    BREAK_SECONDS, _median_gaps_in_python, agreement_summary, annotator_quality, krippendorff_alpha_binary,
    median_seconds_per_label, project_alpha, round_agreement,
)

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section A: binary data,
# two observers, ten units. Coincidences: o00 = 10, o01 = o10 = 4, o11 = 2; n0 = 14, n1 = 6,
# n = 20; alpha = 1 - (n - 1) * o01 / (n0 * n1) = 1 - 19 * 4 / 84 = 2/21 (the paper's 0.095).
TEXTBOOK_A = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
TEXTBOOK_B = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
TEXTBOOK_ALPHA = 2 / 21


def items(*columns):
    return [(len(unit), sum(unit)) for unit in zip(*columns)]


def test_alpha_matches_the_textbook_binary_example():
    assert krippendorff_alpha_binary(items(TEXTBOOK_A, TEXTBOOK_B)) == pytest.approx(TEXTBOOK_ALPHA, abs=1e-9)


def test_alpha_with_three_annotators_and_missing_labels():
    # By hand: pairable items (3,3) (3,1) (2,1) (2,0); the (1,1) item is not pairable.
    # n = 10, n1 = 5, n0 = 5; o01 = 0 + 1*2/2 + 1*1/1 + 0 = 2; alpha = 1 - 9 * 2 / 25 = 0.28.
    assert krippendorff_alpha_binary([(3, 3), (3, 1), (2, 1), (1, 1), (2, 0)]) == pytest.approx(0.28, abs=1e-9)


def test_perfect_agreement_is_one():
    assert krippendorff_alpha_binary([(2, 2), (3, 0), (2, 0), (4, 4)]) == 1.0


def test_alpha_is_undefined_without_pairable_items_or_without_variation():
    assert krippendorff_alpha_binary([]) is None
    assert krippendorff_alpha_binary([(1, 1), (1, 0)]) is None
    assert krippendorff_alpha_binary([(2, 2), (3, 3)]) is None


def test_systematic_disagreement_is_negative():
    assert krippendorff_alpha_binary([(2, 1)] * 4) < 0


def test_sql_alpha_per_project_and_round_matches_the_textbook(project, make_user, add_item):
    a = make_user("coder_a", project=project, role="annotator")
    b = make_user("coder_b", project=project, role="annotator")
    for x, y in zip(TEXTBOOK_A, TEXTBOOK_B):
        add_item({a: bool(x), b: bool(y)}, round_number=1)
    add_item({a: True, b: True}, round_number=2)
    add_item({a: False, b: False}, round_number=2)
    add_item({a: True}, round_number=3)  # one label only: nothing to pair
    rounds = round_agreement(project)
    assert [row["round"] for row in rounds] == [1, 2, 3]
    assert rounds[0]["alpha"] == pytest.approx(TEXTBOOK_ALPHA, abs=1e-9)
    assert (rounds[0]["items"], rounds[0]["labels"]) == (10, 20)
    assert rounds[1]["alpha"] == 1.0
    assert rounds[2] == {"round": 3, "alpha": None, "items": 0, "labels": 0}
    whole = items(TEXTBOOK_A + [1, 0], TEXTBOOK_B + [1, 0])
    assert project_alpha(project) == pytest.approx(krippendorff_alpha_binary(whole), abs=1e-9)


def test_project_without_labels_has_no_alpha(project):
    assert project_alpha(project) is None
    assert agreement_summary(project)["annotators"] == []


def test_annotator_table_counts_agreement_with_the_others_majority(project, annotators, add_item):
    a, b, c = annotators
    add_item({a: True, b: True, c: False})
    add_item({a: True, b: True, c: True})  # everyone agrees
    add_item({a: False, b: True})  # a and b each disagree with the other
    add_item({c: True})  # alone: not compared
    table = {row["username"]: row for row in annotator_quality(project)}
    # Item 1: for a the others (b+, c-) tie -> not compared; same for b; for c the others say + -> disagrees.
    # Item 2: all agree. Item 3: each disagrees with the single other vote.
    assert table["ann1"]["labels"] == 3 and table["ann1"]["compared"] == 2 and table["ann1"]["agreement"] == 0.5
    assert table["ann2"]["desirable_rate"] == 1.0 and table["ann2"]["agreement"] == 0.5
    values = [value for row in table.values() for value in row.values() if value is not None]
    assert all(type(value) in (int, float, str) for value in values)  # JSON-ready, no Decimal
    assert table["ann3"]["labels"] == 3 and table["ann3"]["compared"] == 2 and table["ann3"]["agreement"] == 0.5
    assert table["ann3"]["desirable_rate"] == pytest.approx(2 / 3)
    assert table["ann1"]["desirable_rate"] == pytest.approx(2 / 3)


def test_annotator_who_never_shares_an_item_has_no_agreement(project, annotators, add_item):
    add_item({annotators[0]: True})
    [row] = annotator_quality(project)
    assert row["compared"] == 0 and row["agreement"] is None


def test_median_seconds_per_label_ignores_breaks(project, annotators, add_item):
    a, b, _ = annotators
    start = datetime(2025, 1, 1, 9, tzinfo=timezone.utc)
    offsets = [0, 10, 40, 60, 60 + BREAK_SECONDS + 1, 60 + BREAK_SECONDS + 6]  # gaps 10, 30, 20, (break), 5
    for offset in offsets:
        add_item({a: True}, at=start + timedelta(seconds=offset))
    add_item({b: True}, at=start)
    table = {row["username"]: row for row in annotator_quality(project)}
    assert table["ann1"]["median_seconds_per_label"] == 15.0  # median of 5, 10, 20, 30
    assert table["ann2"]["median_seconds_per_label"] is None  # one label: no gap
    # PostgreSQL computes it in SQL; the streaming Python fallback must agree.
    assert _median_gaps_in_python(project) == median_seconds_per_label(project)


def test_summary_and_partial_render_escaped(project, make_user, add_item):
    evil = make_user("<script>x</script>", project=project, role="annotator")
    other = make_user("plain", project=project, role="annotator")
    add_item({evil: True, other: False})
    add_item({evil: True, other: True})
    summary = agreement_summary(project)
    assert set(summary) >= {"alpha", "rounds", "annotators", "agreement_definition", "break_seconds"}
    html = render_to_string("feedback/_agreement.html", {"agreement": summary})
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "Round" in html and "Median" in html


def test_export_form_partial_targets_the_export_endpoint(project, annotators, add_item):
    add_item({annotators[0]: True}, round_number=2)
    html = render_to_string("feedback/_export_form.html", {"project": project})
    assert f'action="/api/projects/{project.pk}/export/"' in html
    assert 'name="round" value="2"' in html
    for name in ("format", "view", "annotator", "from", "to", "min_agreement", "unanimous", "min_labels"):
        assert f'name="{name}"' in html


def test_label_edits_do_not_move_the_timing(project, annotators, add_item):
    a = annotators[0]
    start = datetime(2025, 1, 1, 9, tzinfo=timezone.utc)
    add_item({a: True}, at=start)
    add_item({a: True}, at=start + timedelta(seconds=8))
    Label.objects.filter(annotator=a).update(desirable=False)  # edits change updated_at only
    [row] = annotator_quality(project)
    assert row["median_seconds_per_label"] == 8.0 and row["desirable_rate"] == 0.0
