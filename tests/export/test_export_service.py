"""Which rows an export holds: majorities, views, pseudonyms and every filter."""
from datetime import datetime, timezone

import pytest
from django.test import override_settings

from feedback.models import Label
from feedback.services.export import (
    ExportError, ExportSpec, count_rows, kto_rows, parse_export_params, pseudonym, raw_rows,
)


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def spec_for(project, **params):
    return parse_export_params(project, {name: [str(value)] for name, value in params.items()})


@pytest.fixture
def votes(project, annotators, add_item):
    """Four generations: a 2-1 desirable majority, a 1-1 tie, a unanimous 0-3, and a 1-0."""
    a, b, c = annotators
    return {
        "majority_yes": add_item({a: True, b: True, c: False}, completion="yes 2-1"),
        "tie": add_item({a: True, b: False}, completion="tie"),
        "unanimous_no": add_item({a: False, b: False, c: False}, completion="no 0-3"),
        "single_yes": add_item({c: True}, completion="single"),
    }


def completions(project, spec):
    return {completion: label for _prompt, completion, label in kto_rows(project, spec)}


def test_kto_view_gives_majority_label_per_generation_and_leaves_out_ties(project, votes, add_item):
    add_item({})  # unlabelled: not exported
    assert completions(project, ExportSpec()) == {"yes 2-1": True, "no 0-3": False, "single": True}
    assert count_rows(project, ExportSpec()) == 3


def test_kto_rows_carry_prompt_text_unchanged(project, annotators, add_item):
    add_item({annotators[0]: True}, prompt="Say <b>hi</b>\nplease", completion='He said "hi"')
    assert list(kto_rows(project, ExportSpec())) == [("Say <b>hi</b>\nplease", 'He said "hi"', True)]


def test_chat_prompts_use_trl_conversational_form(project, annotators, add_item):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    add_item({annotators[0]: False}, prompt=messages, completion="Hello.")
    [(prompt, completion, label)] = kto_rows(project, ExportSpec())
    assert prompt == messages
    assert completion == [{"role": "assistant", "content": "Hello."}]
    assert label is False


def test_chat_messages_are_exported_as_role_and_content_strings(project, annotators, add_item):
    stored = [{"role": "user", "content": "Hi", "name": "bob"}, {"role": "assistant", "content": None}]
    add_item({annotators[0]: True}, prompt=stored + [{"role": "user", "content": "Again?"}])
    [(prompt, _completion, _label)] = kto_rows(project, ExportSpec())
    assert prompt == [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}, {"role": "user", "content": "Again?"}
    ]


def test_mixed_prompts_export_uniformly_as_conversations(project, annotators, add_item):
    # TRL decides the form from the first row, so one export must not mix strings and lists.
    add_item({annotators[0]: True}, prompt="plain", completion="one")
    add_item({annotators[0]: True}, prompt=[{"role": "user", "content": "chat"}], completion="two")
    rows = list(kto_rows(project, ExportSpec()))
    assert [row[0] for row in rows] == [[{"role": "user", "content": "plain"}], [{"role": "user", "content": "chat"}]]
    assert all(isinstance(row[1], list) for row in rows)


def test_raw_view_has_one_row_per_label_with_pseudonymous_annotators(project, votes, annotators):
    rows = list(raw_rows(project, ExportSpec(view="raw")))
    assert len(rows) == 9
    generation_id, round_number, checkpoint_id, annotator, desirable, reason, created_at, updated_at = rows[0]
    assert (generation_id, round_number, checkpoint_id, desirable) == (votes["majority_yes"].pk, 1, None, True)
    assert annotator == pseudonym(annotators[0].pk) and annotator.startswith("a_")
    assert all(row[3] not in {"ann1", "ann2", "ann3"} for row in rows)
    # ISO 8601 in UTC, formatted by the database.
    created, updated = datetime.fromisoformat(created_at), datetime.fromisoformat(updated_at)
    assert created.tzinfo == timezone.utc and updated >= created
    stored = Label.objects.get(generation=votes["majority_yes"], annotator=annotators[0]).created_at
    assert created == stored


def test_raw_rows_keep_each_generations_votes_together(project, annotators, add_item):
    a, b, _ = annotators
    first = add_item({a: True})
    second = add_item({a: False})
    Label.objects.create(generation=first, annotator=b, desirable=False)  # a later vote on the first item
    rows = list(raw_rows(project, ExportSpec(view="raw")))
    assert [(row[0], row[4]) for row in rows] == [(first.pk, True), (first.pk, False), (second.pk, False)]


def test_raw_view_gives_usernames_when_asked(project, votes):
    rows = list(raw_rows(project, spec_for(project, view="raw", annotator_names=1)))
    assert {row[3] for row in rows} == {"ann1", "ann2", "ann3"}


def test_raw_view_names_the_checkpoint_that_generated_the_completion(project, annotators, add_item):
    from trainer.models import Checkpoint

    checkpoint = Checkpoint.objects.create(project=project, path="/tmp/x")
    add_item({annotators[0]: True}, checkpoint=checkpoint)
    [row] = raw_rows(project, ExportSpec(view="raw"))
    assert row[2] == checkpoint.pk


def test_pseudonym_is_stable_and_depends_on_the_secret_key():
    assert pseudonym(7) == pseudonym(7) != pseudonym(8)
    with override_settings(SECRET_KEY="another-secret-key-of-sufficient-length"):
        other = pseudonym(7)
    assert other != pseudonym(7)


def test_round_filter_accepts_repeats_and_comma_lists(project, annotators, add_item):
    for number in (1, 2, 3):
        add_item({annotators[0]: True}, round_number=number, completion=f"round {number}")
    spec = parse_export_params(project, {"round": ["1,3"]})
    assert set(completions(project, spec)) == {"round 1", "round 3"}
    spec = parse_export_params(project, {"round": ["2", "3"]})
    assert set(completions(project, spec)) == {"round 2", "round 3"}


def test_annotator_filter_counts_only_their_labels(project, votes, annotators):
    c = annotators[2]
    by_username = spec_for(project, annotator="ann3")
    # ann3 alone: their own votes are the majority, so the 2-1 item flips to undesirable.
    assert completions(project, by_username) == {"yes 2-1": False, "no 0-3": False, "single": True}
    assert spec_for(project, annotator=c.pk).annotator_ids == (c.pk,)
    assert spec_for(project, annotator=pseudonym(c.pk)).annotator_ids == (c.pk,)
    rows = list(raw_rows(project, spec_for(project, view="raw", annotator="ann3")))
    assert len(rows) == 3 and {row[3] for row in rows} == {pseudonym(c.pk)}


def test_date_filters_select_labels_by_creation_time(project, annotators, add_item):
    add_item({annotators[0]: True}, completion="january", at=utc(2025, 1, 15, 12))
    add_item({annotators[0]: True}, completion="february", at=utc(2025, 2, 1, 0, 0, 1))
    add_item({annotators[0]: True}, completion="march", at=utc(2025, 3, 31, 23, 59))
    assert set(completions(project, spec_for(project, **{"from": "2025-02-01"}))) == {"february", "march"}
    # A bare "to" date includes that whole day.
    assert set(completions(project, spec_for(project, to="2025-03-31"))) == {"january", "february", "march"}
    assert set(completions(project, spec_for(project, to="2025-03-31T12:00:00Z"))) == {"january", "february"}
    window = spec_for(project, **{"from": "2025-01-16", "to": "2025-02-28"})
    assert set(completions(project, window)) == {"february"}


def test_min_agreement_keeps_generations_whose_majority_share_is_high_enough(project, votes):
    # Shares: 2-1 -> 2/3, tie -> 1/2, 0-3 -> 1, single -> 1.
    assert set(completions(project, spec_for(project, min_agreement=0.7))) == {"no 0-3", "single"}
    assert set(completions(project, spec_for(project, min_agreement="0.6"))) == {"yes 2-1", "no 0-3", "single"}
    raw = list(raw_rows(project, spec_for(project, view="raw", min_agreement=0.5)))
    assert len(raw) == 9  # raw keeps ties: every generation reaches 1/2
    raw = list(raw_rows(project, spec_for(project, view="raw", min_agreement=1)))
    assert len(raw) == 4  # the 0-3 item's three labels and the single label


def test_min_agreement_boundary_is_inclusive(project, annotators, add_item, make_user):
    voters = annotators + [make_user(f"extra{i}", project=project, role="annotator") for i in range(7)]
    add_item({user: i < 7 for i, user in enumerate(voters)}, completion="7 of 10")
    assert set(completions(project, spec_for(project, min_agreement=0.7))) == {"7 of 10"}
    assert set(completions(project, spec_for(project, min_agreement=0.71))) == set()


def test_unanimous_and_min_labels(project, votes):
    assert set(completions(project, spec_for(project, unanimous=1))) == {"no 0-3", "single"}
    # A single label is trivially unanimous; min_labels asks for a second opinion.
    assert set(completions(project, spec_for(project, unanimous=1, min_labels=2))) == {"no 0-3"}
    raw = list(raw_rows(project, spec_for(project, view="raw", min_labels=3)))
    assert len(raw) == 6


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"format": ["xml"]}, "'format' must be one of jsonl, csv, parquet"),
        ({"view": ["pairs"]}, "'view' must be one of kto, raw"),
        ({"round": ["one"]}, "'round' must be round numbers"),
        ({"round": ["99999999999999999999"]}, "'round' must be round numbers"),
        ({"min_labels": ["²"]}, "'min_labels' must be a whole number"),
        ({"round": ["9"]}, "no round 9"),
        ({"annotator": ["nobody"]}, "no annotator 'nobody'"),
        ({"from": ["yesterday"]}, "'from' must be an ISO date"),
        ({"to": ["2025-02-30"]}, "'to' must be an ISO date"),
        ({"from": ["2025-03-01"], "to": ["2025-02-01"]}, "'from' must not be after 'to'"),
        ({"min_agreement": ["high"]}, "'min_agreement' must be a number"),
        ({"min_agreement": ["1.5"]}, "'min_agreement' must be from 0 to 1"),
        ({"min_labels": ["0"]}, "'min_labels' must be a whole number"),
        ({"unanimous": ["maybe"]}, "'unanimous' must be 1 or 0"),
        ({"format": ["csv", "jsonl"]}, "'format' takes one value"),
        ({"annotator_names": ["1"]}, "applies to view=raw only"),
        ({"rounds": ["1"]}, "Unknown parameter 'rounds'"),
    ],
)
def test_bad_parameters_are_refused_with_a_message(project, votes, params, fragment):
    with pytest.raises(ExportError) as error:
        parse_export_params(project, params)
    assert fragment in str(error.value)


def test_outsiders_are_not_valid_annotator_filters(project, votes, make_user):
    stranger = make_user("stranger")
    with pytest.raises(ExportError):
        parse_export_params(project, {"annotator": [str(stranger.pk)]})
    with pytest.raises(ExportError):
        parse_export_params(project, {"annotator": ["stranger"]})


def test_blank_values_from_an_html_form_mean_no_filter(project, votes):
    spec = parse_export_params(project, {"round": [""], "from": [""], "min_agreement": [""], "annotator": [""]})
    assert spec == ExportSpec()
