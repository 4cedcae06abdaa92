"""Label writes through the service functions: idempotency, refusals, history, undo."""
import pytest

from feedback.models import Assignment, Label, LabelEvent, Round, Skip
from feedback.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from feedback.services.labels import delete_label, edit_label, submit_label, undo_last
from feedback.services.limits import REASON_MAX_CHARS
from feedback.services.queue import next_item, skip


def actions(generation):
    return list(LabelEvent.objects.filter(generation=generation).values_list("action", "desirable"))


def test_first_submission_creates_and_a_repeat_updates_the_same_label(project, make_items, annotator):
    (generation,) = make_items(1)
    label, created = submit_label(annotator, generation, True, "fine")
    assert created
    again, created_again = submit_label(annotator, generation, False, "on reflection, no")
    assert not created_again and again.pk == label.pk
    assert Label.objects.filter(generation=generation).count() == 1
    again.refresh_from_db()
    assert (again.desirable, again.reason) == (False, "on reflection, no")
    assert actions(generation) == [("created", True), ("updated", False)]


def test_an_identical_repeat_changes_nothing_and_records_no_event(project, make_items, annotator):
    (generation,) = make_items(1)
    submit_label(annotator, generation, True, "ok")
    submit_label(annotator, generation, True, "ok")
    assert actions(generation) == [("created", True)]


def test_labelling_releases_the_lease_and_the_skip(project, make_items, annotator):
    (generation,) = make_items(1)
    assert next_item(annotator, project) == generation
    skip(annotator, generation)
    submit_label(annotator, generation, True)
    assert not Assignment.objects.filter(annotator=annotator).exists()
    assert not Skip.objects.filter(annotator=annotator).exists()


def test_a_full_item_refuses_a_new_annotator_without_a_lease(project, make_items, annotators):
    (generation,) = make_items(1)
    alice, bob = annotators(2)
    submit_label(alice, generation, True)
    with pytest.raises(Conflict, match="already has the 1 label"):
        submit_label(bob, generation, False)
    assert generation.labels.count() == 1


def test_a_place_reserved_by_someone_elses_lease_is_not_taken(project, make_items, annotators):
    (generation,) = make_items(1)
    alice, bob = annotators(2)
    assert next_item(alice, project) == generation
    with pytest.raises(Conflict):
        submit_label(bob, generation, True)
    submit_label(alice, generation, True)  # the lease holder may always label


def test_closed_rounds_take_no_new_labels_but_existing_labels_stay_editable(project, make_items, annotator):
    (generation,) = make_items(1)
    label, _ = submit_label(annotator, generation, True)
    Round.objects.filter(pk=generation.round_id).update(status=Round.Status.CLOSED)
    (other,) = make_items(1, number=1, prefix="late")
    with pytest.raises(Conflict, match="closed"):
        submit_label(annotator, other, True)
    assert edit_label(annotator, label, desirable=False).desirable is False


def test_reason_is_trimmed_and_limited(project, make_items, annotator):
    first, second = make_items(2)
    label, _ = submit_label(annotator, first, True, "  padded  ")
    assert label.reason == "padded"
    with pytest.raises(InvalidInput) as error:
        submit_label(annotator, second, True, "x" * (REASON_MAX_CHARS + 1))
    assert error.value.field == "reason"
    assert not second.labels.exists()


def test_undo_removes_the_latest_label_and_leases_the_item_back(project, make_items, annotator):
    first, second, third = make_items(3)
    for generation in (first, second, third):
        assert next_item(annotator, project) == generation
        submit_label(annotator, generation, True, "why")
    undone = undo_last(annotator, project)
    assert undone.generation == third and undone.reason == "why"
    assert not Label.objects.filter(generation=third).exists()
    assert actions(third) == [("created", True), ("undone", None)]
    assert LabelEvent.objects.get(generation=third, action="undone").label_id is None  # the label row is gone
    assert next_item(annotator, project) == third
    undo_last(annotator, project)  # undo walks back: the second label goes next
    assert next_item(annotator, project) == second
    assert Assignment.objects.filter(annotator=annotator).count() == 2


def test_undo_keeps_the_place_even_when_others_wait(project, make_items, annotators):
    (generation,) = make_items(1)
    alice, bob = annotators(2)
    submit_label(alice, generation, True)
    undo_last(alice)
    assert next_item(bob, project) is None  # Alice's fresh lease holds the only place
    submit_label(alice, generation, False)


def test_undo_is_scoped_to_the_project_and_reports_nothing_to_undo(project, make_items, annotator):
    from feedback.models import Project

    other = Project.objects.create(name="Other", base_model="tiny")
    other.memberships.create(user=annotator, role="annotator")
    (here,) = make_items(1)
    (there,) = make_items(1, target=other, prefix="other")
    submit_label(annotator, here, True)
    submit_label(annotator, there, True)
    assert undo_last(annotator, project).generation == here
    with pytest.raises(NotFound):
        undo_last(annotator, project)
    assert undo_last(annotator).generation == there


def test_only_own_labels_can_be_edited_or_deleted(project, make_items, annotators):
    (generation,) = make_items(1)
    alice, bob = annotators(2)
    label, _ = submit_label(alice, generation, True)
    with pytest.raises(Forbidden):
        edit_label(bob, label, desirable=False)
    with pytest.raises(Forbidden):
        delete_label(bob, label)
    delete_label(alice, label)
    assert not Label.objects.exists()
    assert actions(generation) == [("created", True), ("deleted", None)]


def test_editing_or_deleting_a_label_removed_meanwhile_is_not_found(project, make_items, annotator):
    # The page may still hold a label another tab has undone or deleted.
    (generation,) = make_items(1)
    label, _ = submit_label(annotator, generation, True)
    delete_label(annotator, label)
    with pytest.raises(NotFound):
        delete_label(annotator, label)
    with pytest.raises(NotFound):
        edit_label(annotator, label, desirable=False)
    assert actions(generation) == [("created", True), ("deleted", None)]


def test_undo_in_a_closed_round_is_refused_and_keeps_the_label(project, make_items, annotator):
    (generation,) = make_items(1)
    submit_label(annotator, generation, True)
    Round.objects.filter(pk=generation.round_id).update(status=Round.Status.CLOSED)
    with pytest.raises(Conflict, match="edited, not undone"):
        undo_last(annotator, project)
    assert Label.objects.filter(generation=generation).exists()
