"""Truly concurrent annotators, each on its own PostgreSQL connection: no item ever goes past its
overlap and none is lost. (SQLite serialises every writer, so there is nothing to race there.)"""
import threading

import pytest
from django.db import connection, connections

from feedback.models import Assignment, Label, Round
from feedback.services.queue import next_item

pytestmark = [
    pytest.mark.skipif(connection.vendor == "sqlite", reason="needs PostgreSQL row locks and real concurrency"),
    pytest.mark.django_db(transaction=True),
]

CLIENTS = 10


def run_together(workers):
    """Start every worker at the same instant (barrier) in its own thread; each thread gets its
    own database connection and closes it at the end. Returns (results, errors, backend pids)."""
    barrier = threading.Barrier(len(workers))
    results, errors, pids = {}, [], set()
    lock = threading.Lock()

    def run(index, work):
        try:
            connection.ensure_connection()
            with lock:
                pids.add(connection.connection.info.backend_pid)
            barrier.wait(timeout=30)
            outcome = work()
            with lock:
                results[index] = outcome
        except Exception as exc:  # reported by the test, never swallowed
            with lock:
                errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index, work)) for index, work in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a client hung"
    return results, errors, pids


def test_concurrent_annotators_through_the_api_fill_every_item_exactly(
    project, make_items, annotators, api_client_for
):
    project.labels_per_item = 3
    project.save()
    items = make_items(12)
    people = annotators(CLIENTS)
    url = f"/api/projects/{project.pk}/queue/next/"

    def annotate(person):
        def work():
            client = api_client_for(person)
            labelled, refused = [], []
            while True:
                response = client.get(url)
                if response.status_code == 204:
                    return labelled, refused
                assert response.status_code == 200, response.content
                generation = response.json()["generation"]
                answer = client.post("/api/labels/", {"generation": generation, "desirable": person.pk % 2 == 0},
                                     format="json")
                (labelled if answer.status_code == 201 else refused).append((generation, answer.status_code))

        return work

    results, errors, pids = run_together([annotate(person) for person in people])
    assert errors == []
    assert len(pids) == CLIENTS, "the clients did not use separate connections"
    assert all(refused == [] for _, refused in results.values()), "an annotator was served an item that was full"
    counts = {generation.pk: Label.objects.filter(generation=generation).count() for generation in items}
    assert counts == {generation.pk: 3 for generation in items}
    for labelled, _ in results.values():
        generations = [generation for generation, _ in labelled]
        assert len(generations) == len(set(generations))
    assert Assignment.objects.count() == 0  # every lease was released by its label


def test_simultaneous_claims_on_one_item_never_exceed_its_overlap(project, make_items, annotators):
    project.labels_per_item = 2
    project.save()
    people = annotators(CLIENTS)
    for attempt in range(3):
        (only,) = make_items(1, number=attempt + 1, prefix=f"try{attempt}")
        results, errors, _ = run_together([lambda person=person: next_item(person, project) for person in people])
        assert errors == []
        winners = [generation for generation in results.values() if generation is not None]
        assert winners == [only, only]
        assert Assignment.objects.filter(generation=only).count() == 2
        Round.objects.filter(pk=only.round_id).update(status=Round.Status.CLOSED)  # out of the next attempt
