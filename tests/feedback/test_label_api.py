"""The annotation API as the page uses it: queue/next, labels, skip, undo, edits."""
from datetime import timedelta

import pytest
from django.utils import timezone

from feedback.models import Assignment, Generation, Label, LabelEvent, Prompt, Round
from feedback.services.limits import REASON_MAX_CHARS

NASTY = '<script>alert("x")</script><b onmouseover="evil()">bold</b> &amp; <img src=x onerror=alert(1)>'


@pytest.fixture
def client(annotator, api_client_for):
    return api_client_for(annotator)


def next_url(project, exclude=None):
    return f"/api/projects/{project.pk}/queue/next/" + (f"?exclude={exclude}" if exclude else "")


def label(client, generation_id, desirable=True, reason=""):
    return client.post("/api/labels/", {"generation": generation_id, "desirable": desirable, "reason": reason},
                       format="json")


def test_queue_next_payload_is_self_sufficient(project, make_items, client):
    make_items(2)
    response = client.get(next_url(project))
    assert response.status_code == 200
    item = response.json()
    generation = Generation.objects.get(pk=item["generation"])
    assert item["prompt"] == generation.prompt.content and item["completion"] == generation.text
    assert (item["round"], item["round_id"], item["project"]) == (1, generation.round_id, project.pk)
    assert item["skipped"] is False and item["lease_expires_at"]
    assert item["progress"] == {"mine_done": 0, "mine_total": 2, "round_done": 0, "round_total": 2}
    label(client, item["generation"])
    progress = client.get(next_url(project)).json()["progress"]
    assert progress == {"mine_done": 1, "mine_total": 2, "round_done": 1, "round_total": 2}


def test_queue_next_is_204_with_no_body_when_nothing_is_left(project, make_items, client):
    (only,) = make_items(1)
    assert label(client, only.pk).status_code == 201
    response = client.get(next_url(project))
    assert response.status_code == 204 and response.content == b""


def test_chat_prompts_come_as_message_lists(project, client):
    round_ = Round.objects.create(project=project, number=1)
    messages = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hello?"}]
    prompt = Prompt.objects.create(project=project, messages=messages)
    Generation.objects.create(prompt=prompt, round=round_, text="Hi!")
    assert client.get(next_url(project)).json()["prompt"] == messages


def test_exclude_prefetches_a_different_item(project, make_items, client):
    make_items(3)
    current = client.get(next_url(project)).json()["generation"]
    prefetched = client.get(next_url(project, exclude=current)).json()["generation"]
    assert prefetched != current
    assert label(client, current).status_code == 201
    # After labelling the current one, the prefetched item is still held and served.
    assert client.get(next_url(project)).json()["generation"] == prefetched
    assert client.get(next_url(project, exclude="x")).status_code == 400
    assert client.get(next_url(project, exclude=",".join(["1"] * 11))).status_code == 400


def test_label_submission_is_idempotent(project, make_items, client, annotator):
    (generation,) = make_items(1)
    first = label(client, generation.pk, True, "good")
    assert first.status_code == 201
    again = label(client, generation.pk, False, "changed my mind")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Label.objects.filter(generation=generation, annotator=annotator).count() == 1
    assert again.json()["desirable"] is False
    assert label(client, generation.pk, False, "changed my mind").status_code == 200
    assert LabelEvent.objects.filter(generation=generation).count() == 2


def test_html_and_script_come_back_as_plain_json_strings(project, client, annotator):
    round_ = Round.objects.create(project=project, number=1)
    prompt = Prompt.objects.create(project=project, text="Prompt " + NASTY)
    generation = Generation.objects.create(prompt=prompt, round=round_, text="Completion " + NASTY)
    item = client.get(next_url(project))
    assert item["Content-Type"] == "application/json"
    assert item.json()["prompt"] == "Prompt " + NASTY
    assert item.json()["completion"] == "Completion " + NASTY
    saved = label(client, generation.pk, False, "Reason " + NASTY)
    assert saved.status_code == 201 and saved.json()["reason"] == "Reason " + NASTY
    listed = client.get(f"/api/labels/?project={project.pk}").json()["results"][0]
    assert (listed["prompt"], listed["completion"], listed["reason"]) == (
        "Prompt " + NASTY, "Completion " + NASTY, "Reason " + NASTY)
    assert Label.objects.get().reason == "Reason " + NASTY  # stored as typed, escaping is the page's job


def test_a_full_item_answers_409_with_a_message(project, make_items, annotators, api_client_for):
    (generation,) = make_items(1)
    alice, bob = annotators(2)
    assert label(api_client_for(alice), generation.pk).status_code == 201
    refused = label(api_client_for(bob), generation.pk)
    assert refused.status_code == 409
    assert "already has the 1 label" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"desirable": True}, "generation"),
        ({"generation": 1}, "desirable"),
        ({"generation": 1, "desirable": "perhaps"}, "desirable"),
        ({"generation": 1, "desirable": True, "reason": "x" * (REASON_MAX_CHARS + 1)}, "reason"),
    ],
)
def test_bad_label_bodies_answer_400_naming_the_field(project, make_items, client, body, field):
    (generation,) = make_items(1)
    if "generation" in body:
        body["generation"] = generation.pk
    response = client.post("/api/labels/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Label.objects.exists()


def test_unknown_generation_is_404(client, project):
    assert label(client, 999_999).status_code == 404


def test_undo_returns_the_item_to_show_next(project, make_items, client):
    make_items(3)
    labelled = []
    for _ in range(2):
        generation = client.get(next_url(project)).json()["generation"]
        assert label(client, generation, True, "r").status_code == 201
        labelled.append(generation)
    response = client.post("/api/labels/undo/", {"project": project.pk}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["undone"]["generation"] == labelled[-1] and body["undone"]["reason"] == "r"
    assert body["item"]["generation"] == labelled[-1]
    assert client.get(next_url(project)).json()["generation"] == labelled[-1]
    assert not Label.objects.filter(generation_id=labelled[-1]).exists()
    assert Label.objects.filter(generation_id=labelled[0]).exists()


def test_undo_with_nothing_to_undo_is_404(client, project):
    response = client.post("/api/labels/undo/", {}, format="json")
    assert response.status_code == 404
    assert response.json()["detail"] == "You have no label to undo."


def test_skip_sends_the_item_to_the_back_of_my_queue(project, make_items, client):
    first, second = make_items(2)
    assert client.get(next_url(project)).json()["generation"] == first.pk
    assert client.post(f"/api/projects/{project.pk}/queue/skip/", {"generation": first.pk}, format="json").status_code == 204
    assert client.get(next_url(project)).json()["generation"] == second.pk
    assert label(client, second.pk).status_code == 201
    again = client.get(next_url(project)).json()
    assert again["generation"] == first.pk and again["skipped"] is True


def test_skip_of_another_projects_generation_is_refused(project, client, make_items):
    from feedback.models import Project

    other = Project.objects.create(name="Elsewhere", base_model="tiny")
    (foreign,) = make_items(1, target=other, prefix="foreign")
    response = client.post(f"/api/projects/{project.pk}/queue/skip/", {"generation": foreign.pk}, format="json")
    assert response.status_code == 404


def test_an_expired_lease_frees_the_item_for_someone_else(project, make_items, annotators, api_client_for):
    (only,) = make_items(1)
    alice, bob = (api_client_for(user) for user in annotators(2))
    assert alice.get(next_url(project)).json()["generation"] == only.pk
    assert bob.get(next_url(project)).status_code == 204
    past = timezone.now() - timedelta(minutes=1)
    Assignment.objects.update(created_at=past - timedelta(minutes=10), expires_at=past)
    assert bob.get(next_url(project)).json()["generation"] == only.pk
    assert label(bob, only.pk).status_code == 201
    assert label(alice, only.pk).status_code == 409  # Alice's lease ran out and the place is gone


def test_edit_and_delete_own_label(project, make_items, client):
    (generation,) = make_items(1)
    label_id = label(client, generation.pk, True).json()["id"]
    edited = client.patch(f"/api/labels/{label_id}/", {"reason": "edited"}, format="json")
    assert edited.status_code == 200 and edited.json()["reason"] == "edited" and edited.json()["desirable"] is True
    flipped = client.patch(f"/api/labels/{label_id}/", {"desirable": False}, format="json")
    assert flipped.json()["desirable"] is False and flipped.json()["reason"] == "edited"
    assert client.delete(f"/api/labels/{label_id}/").status_code == 204
    assert client.get(f"/api/labels/{label_id}/").status_code == 404
    assert list(LabelEvent.objects.values_list("action", flat=True)) == ["created", "updated", "updated", "deleted"]


def test_label_list_filters_by_annotator_me_newest_first(project, make_items, client, admin_user, api_client_for):
    first, second, third = make_items(3)
    label(client, first.pk)
    label(client, second.pk)
    label(api_client_for(admin_user), third.pk)
    admin_view = api_client_for(admin_user).get(f"/api/labels/?project={project.pk}").json()
    assert admin_view["count"] == 3
    mine = api_client_for(admin_user).get(f"/api/labels/?project={project.pk}&annotator=me").json()["results"]
    assert [row["generation"] for row in mine] == [third.pk]
    own = client.get(f"/api/labels/?project={project.pk}&limit=1").json()
    assert own["count"] == 2 and [row["generation"] for row in own["results"]] == [second.pk]
