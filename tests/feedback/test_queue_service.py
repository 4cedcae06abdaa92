"""Queue rules, through the service functions: overlap, no repeats, leases, skips."""
from datetime import timedelta

import pytest
from django.utils import timezone

from feedback.models import Assignment, Round
from feedback.services.labels import submit_label
from feedback.services.queue import next_item, skip


def label_next(user, project, desirable=True):
    generation = next_item(user, project)
    if generation is not None:
        submit_label(user, generation, desirable)
    return generation


def expire_leases(**filters):
    """Move leases into the past (both timestamps: the model requires expires_at > created_at)."""
    past = timezone.now() - timedelta(hours=1)
    Assignment.objects.filter(**filters).update(created_at=past - timedelta(minutes=10), expires_at=past)


def test_each_item_gets_exactly_labels_per_item_distinct_annotators(project, make_items, annotators):
    project.labels_per_item = 2
    project.save()
    items = make_items(3)
    people = annotators(3)
    seen = {person.pk: [] for person in people}
    for _ in range(10):  # round-robin until the queue is empty for everyone
        for person in people:
            generation = label_next(person, project)
            if generation is not None:
                seen[person.pk].append(generation.pk)
    for generation in items:
        assert generation.labels.count() == 2
    for taken in seen.values():
        assert len(taken) == len(set(taken)), "an annotator got the same generation twice"
    assert sum(len(taken) for taken in seen.values()) == 6
    assert all(next_item(person, project) is None for person in people)


def test_a_live_lease_holds_a_place_and_asking_again_returns_the_same_item(project, make_items, annotators):
    first, second = make_items(2)
    alice, bob = annotators(2)
    mine = next_item(alice, project)
    assert next_item(alice, project) == mine
    # labels_per_item is 1 and Alice's lease holds the only place: Bob gets the other item.
    assert next_item(bob, project) not in (None, mine)


def test_exclude_gives_a_second_item_for_prefetch(project, make_items, annotator):
    make_items(3)
    current = next_item(annotator, project)
    prefetched = next_item(annotator, project, exclude=[current.pk])
    assert prefetched is not None and prefetched != current
    # Both are held: the current one is still what a plain request returns first or second.
    assert {next_item(annotator, project).pk, next_item(annotator, project, exclude=[prefetched.pk]).pk} == {
        current.pk,
        prefetched.pk,
    }
    assert Assignment.objects.filter(annotator=annotator).count() == 2


def test_an_expired_lease_returns_the_item_to_the_pool(project, make_items, annotators):
    (only,) = make_items(1)
    alice, bob = annotators(2)
    assert next_item(alice, project) == only
    assert next_item(bob, project) is None
    expire_leases(annotator=alice)
    assert next_item(bob, project) == only
    # Alice asking again finds the item reserved by Bob.
    assert next_item(alice, project) is None


def test_short_lease_minutes_sets_the_expiry(project, make_items, annotator):
    project.lease_minutes = 1
    project.save()
    make_items(1)
    before = timezone.now()
    generation = next_item(annotator, project)
    lease = Assignment.objects.get(generation=generation, annotator=annotator)
    assert before + timedelta(seconds=59) < lease.expires_at <= timezone.now() + timedelta(minutes=1)


def test_skipped_items_go_to_others_and_come_back_to_the_skipper_last(project, make_items, annotators):
    a, b, c = make_items(3)
    alice, bob = annotators(2)
    assert next_item(alice, project) == a
    skip(alice, a)
    # The place is free again: Bob gets the skipped item first (oldest first for him).
    assert next_item(bob, project) == a
    submit_label(bob, a, True)
    assert label_next(alice, project) == b
    assert label_next(alice, project) == c
    assert next_item(alice, project) is None  # a is fully labelled by Bob


def test_skipped_items_return_oldest_skip_first_after_everything_else(project, make_items, annotator):
    a, b, c = make_items(3)
    assert next_item(annotator, project) == a
    skip(annotator, a)
    assert next_item(annotator, project) == b
    skip(annotator, b)
    assert next_item(annotator, project) == c
    submit_label(annotator, c, False)
    assert next_item(annotator, project) == a
    skip(annotator, a)  # skipped again: now the most recent skip, so b comes first
    assert next_item(annotator, project) == b


def test_newest_round_first_and_closed_rounds_are_not_served(project, make_items, annotator):
    (old,) = make_items(1, number=1)
    (new,) = make_items(1, number=2)
    make_items(1, number=3, status=Round.Status.CLOSED)
    assert label_next(annotator, project) == new
    assert label_next(annotator, project) == old
    assert next_item(annotator, project) is None


def test_generations_of_other_projects_are_never_served(project, make_items, annotator, django_user_model):
    from feedback.models import Project

    other = Project.objects.create(name="Other", base_model="tiny")
    make_items(2, target=other, prefix="other")
    assert next_item(annotator, project) is None


@pytest.mark.parametrize("labels_per_item", [1, 3])
def test_queue_empties_with_every_item_labelled(project, make_items, annotators, labels_per_item):
    project.labels_per_item = labels_per_item
    project.save()
    items = make_items(4)
    people = annotators(3)
    while any([label_next(person, project) for person in people]):
        pass
    assert [generation.labels.count() for generation in items] == [labels_per_item] * 4


def test_count_available_agrees_with_available_to(project, make_items, annotators):
    from feedback.services.queue import available_to, count_available, round_progress

    project.labels_per_item = 2
    project.save()
    me, alice, bob = annotators(3)
    items = make_items(8, number=1) + make_items(3, number=2)
    make_items(2, number=3, status=Round.Status.CLOSED)
    submit_label(me, items[0], True)                      # mine
    submit_label(alice, items[1], True)                   # half full
    submit_label(alice, items[2], True)
    submit_label(bob, items[2], False)                    # full
    for person, generation in ((alice, items[3]), (bob, items[4])):
        Assignment.objects.create(generation=generation, annotator=person,
                                  expires_at=timezone.now() + timedelta(minutes=5))
    submit_label(bob, items[3], True)                     # bob's label + alice's lease: full
    Assignment.objects.create(generation=items[5], annotator=alice, expires_at=timezone.now() + timedelta(minutes=5))
    Assignment.objects.create(generation=items[5], annotator=bob, expires_at=timezone.now() + timedelta(minutes=5))
    expire_leases(generation=items[5], annotator=bob)     # one live lease: still room
    Assignment.objects.create(generation=items[6], annotator=me, expires_at=timezone.now() + timedelta(minutes=5))
    submit_label(alice, items[8], True)                   # round 2
    for person in (me, alice, bob):
        assert count_available(person, project) == available_to(person, project).count()
        for number in (1, 2, 3):
            round_ = Round.objects.get(project=project, number=number)
            assert count_available(person, project, round_) == available_to(person, project).filter(round=round_).count()
    progress = round_progress(me, items[0].round)
    # Round 1: items 0 (mine), 2 (full) and 3 (label + lease) are out of my reach; 5 others remain.
    assert progress == {"mine_done": 1, "mine_total": 6, "round_done": 1, "round_total": 8}
