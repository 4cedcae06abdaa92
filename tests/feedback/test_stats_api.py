"""Stats: counts per round, desirable rates, my progress, per-annotator counts."""
import pytest

from feedback.models import Round
from feedback.services.labels import submit_label
from feedback.services.stats import project_stats


@pytest.fixture
def labelled(project, make_items, annotators, admin_user):
    """Round 1: 3 items, 2 labels each (3 desirable of 6). Round 2: 2 items, one labelled down."""
    project.labels_per_item = 2
    project.save()
    alice, bob = annotators(2)
    first_round = make_items(3, number=1)
    second_round = make_items(2, number=2)
    for generation in first_round:
        submit_label(alice, generation, True)
    submit_label(bob, first_round[0], False)
    submit_label(bob, first_round[1], False)
    submit_label(bob, second_round[0], False)
    return alice, bob


def test_round_counts_and_rates_for_admins(project, labelled, admin_user):
    stats = project_stats(admin_user, project, is_admin=True)
    first, second = stats["rounds"]
    assert (first["number"], first["generations"], first["labelled"], first["complete"], first["labels"]) == (1, 3, 3, 2, 5)
    assert first["desirable"] == 3 and first["desirable_rate"] == pytest.approx(3 / 5)
    assert (second["labels"], second["desirable_rate"]) == (1, 0.0)
    by_name = {row["username"]: row for row in stats["annotators"]}
    assert (by_name["ann0"]["labels"], by_name["ann0"]["desirable_rate"]) == (3, 1.0)
    assert (by_name["ann1"]["labels"], by_name["ann1"]["desirable"]) == (3, 0)
    assert stats["prompts"] == 5 and stats["labels_per_item"] == 2


def test_my_progress_counts_what_is_still_available_to_me(project, labelled):
    alice, bob = labelled
    me = project_stats(alice, project, is_admin=False)["me"]
    # Alice labelled all of round 1; round 2 has two items with room for her.
    assert (me["labelled"], me["available"], me["total"], me["desirable_rate"]) == (3, 2, 5, 1.0)
    Round.objects.filter(number=2).update(status=Round.Status.CLOSED)
    assert project_stats(alice, project, is_admin=False)["me"]["available"] == 0


def test_annotators_get_rates_only_when_the_project_shares_labels(project, labelled, api_client_for):
    alice, _ = labelled
    client = api_client_for(alice)
    url = f"/api/projects/{project.pk}/stats/"
    assert "desirable_rate" not in client.get(url).json()["rounds"][0]
    project.annotators_see_others = True
    project.save()
    body = client.get(url).json()
    assert body["rounds"][0]["desirable_rate"] == pytest.approx(3 / 5)
    assert "annotators" not in body


def test_admin_stats_merge_the_agreement_section(project, labelled, admin_user, api_client_for):
    body = api_client_for(admin_user).get(f"/api/projects/{project.pk}/stats/").json()
    assert isinstance(body["agreement"], dict)


def test_round_counts_take_as_many_queries_for_many_rounds_as_for_two(project, labelled, make_items):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from feedback.services.stats import round_counts

    with CaptureQueriesContext(connection) as two_rounds:
        round_counts(project, with_rates=True)
    make_items(2, number=3)
    make_items(1, number=4, prefix="more")
    with CaptureQueriesContext(connection) as four_rounds:
        rows = round_counts(project, with_rates=True)
    assert [(row["number"], row["generations"], row["labels"], row["desirable_rate"]) for row in rows[2:]] == [
        (3, 2, 0, None), (4, 1, 0, None)]
    assert len(four_rounds) == len(two_rounds)
