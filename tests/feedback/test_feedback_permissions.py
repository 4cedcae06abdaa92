"""The permission matrix: every feedback endpoint x anonymous / annotator / admin / superuser /
outsider. Policy: anonymous 403 (no credentials), non-members 404 for anything inside a project,
members without the needed role 403."""
import json
from dataclasses import dataclass
from typing import Callable

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from feedback.models import Label
from feedback.services.labels import submit_label

ROLES = ["anonymous", "annotator", "admin", "superuser", "outsider"]


@dataclass
class World:
    project: object
    users: dict
    items: list
    carol_label: Label  # another annotator's label
    own_labels: dict  # role -> that user's label


@pytest.fixture
def world(project, make_items, annotator, admin_user, superuser, outsider, make_user):
    carol = make_user("carol", project=project, role="annotator")
    project.labels_per_item = 3
    project.save()
    items = make_items(6)
    users = {"anonymous": None, "annotator": annotator, "admin": admin_user, "superuser": superuser,
             "outsider": outsider}
    own = {role: submit_label(users[role], items[index], True)[0]
           for index, role in enumerate(["annotator", "admin", "superuser"])}
    carol_label, _ = submit_label(carol, items[0], False)
    return World(project, users, items, carol_label, own)


def own_or_carols(world, role):
    return world.own_labels.get(role, world.carol_label)


@dataclass
class Case:
    name: str
    method: str
    url: Callable
    body: Callable | None
    expected: dict  # role -> status
    multipart: bool = False


def expect(anonymous, annotator, admin, superuser, outsider):
    return dict(zip(ROLES, [anonymous, annotator, admin, superuser, outsider]))


def upload(world, role):
    content = json.dumps({"prompt": f"imported by {role}", "completion": "c"}).encode()
    return {"file": SimpleUploadedFile("rows.jsonl", content)}


CASES = [
    Case("list projects", "get", lambda w, r: "/api/projects/", None, expect(403, 200, 200, 200, 200)),
    Case("create project", "post", lambda w, r: "/api/projects/",
         lambda w, r: {"name": f"New {r}", "base_model": "tiny"}, expect(403, 403, 403, 201, 403)),
    Case("read project", "get", lambda w, r: f"/api/projects/{w.project.pk}/", None, expect(403, 200, 200, 200, 404)),
    Case("change project", "patch", lambda w, r: f"/api/projects/{w.project.pk}/",
         lambda w, r: {"guidelines": "new"}, expect(403, 403, 200, 200, 404)),
    Case("create user", "post", lambda w, r: "/api/users/",
         lambda w, r: {"username": "newbie", "password": "a-Long-pass-phrase-42"}, expect(403, 403, 403, 201, 403)),
    Case("list members", "get", lambda w, r: f"/api/projects/{w.project.pk}/members/", None,
         expect(403, 403, 200, 200, 404)),
    Case("add member", "post", lambda w, r: f"/api/projects/{w.project.pk}/members/",
         lambda w, r: {"username": "stranger", "role": "annotator"}, expect(403, 403, 201, 201, 404)),
    Case("import", "post", lambda w, r: f"/api/projects/{w.project.pk}/import/", upload,
         expect(403, 403, 201, 201, 404), multipart=True),
    Case("queue next", "get", lambda w, r: f"/api/projects/{w.project.pk}/queue/next/", None,
         expect(403, 200, 200, 200, 404)),
    Case("queue skip", "post", lambda w, r: f"/api/projects/{w.project.pk}/queue/skip/",
         lambda w, r: {"generation": w.items[5].pk}, expect(403, 204, 204, 204, 404)),
    Case("submit label", "post", lambda w, r: "/api/labels/",
         lambda w, r: {"generation": w.items[4].pk, "desirable": True}, expect(403, 201, 201, 201, 404)),
    Case("list project labels", "get", lambda w, r: f"/api/labels/?project={w.project.pk}", None,
         expect(403, 200, 200, 200, 404)),
    Case("list another annotator's labels", "get",
         lambda w, r: f"/api/labels/?project={w.project.pk}&annotator={w.carol_label.annotator_id}", None,
         expect(403, 403, 200, 200, 404)),
    Case("undo", "post", lambda w, r: "/api/labels/undo/", lambda w, r: {"project": w.project.pk},
         expect(403, 200, 200, 200, 404)),
    Case("read another annotator's label", "get", lambda w, r: f"/api/labels/{w.carol_label.pk}/", None,
         expect(403, 403, 200, 200, 404)),
    Case("read own label", "get", lambda w, r: f"/api/labels/{own_or_carols(w, r).pk}/", None,
         expect(403, 200, 200, 200, 404)),
    Case("edit another annotator's label", "patch", lambda w, r: f"/api/labels/{w.carol_label.pk}/",
         lambda w, r: {"desirable": True}, expect(403, 403, 403, 403, 404)),
    Case("edit own label", "patch", lambda w, r: f"/api/labels/{own_or_carols(w, r).pk}/",
         lambda w, r: {"desirable": False}, expect(403, 200, 200, 200, 404)),
    Case("delete another annotator's label", "delete", lambda w, r: f"/api/labels/{w.carol_label.pk}/", None,
         expect(403, 403, 403, 403, 404)),
    Case("delete own label", "delete", lambda w, r: f"/api/labels/{own_or_carols(w, r).pk}/", None,
         expect(403, 204, 204, 204, 404)),
    Case("stats", "get", lambda w, r: f"/api/projects/{w.project.pk}/stats/", None, expect(403, 200, 200, 200, 404)),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_permission_matrix(world, api_client_for, case, role):
    client = api_client_for(world.users[role])
    kwargs = {}
    if case.body is not None:
        kwargs = {"data": case.body(world, role), "format": "multipart" if case.multipart else "json"}
    response = getattr(client, case.method)(case.url(world, role), **kwargs)
    assert response.status_code == case.expected[role], response.content


def test_refused_requests_change_nothing(world, api_client_for):
    annotator_client = api_client_for(world.users["annotator"])
    outsider_client = api_client_for(world.users["outsider"])
    before = list(Label.objects.order_by("pk").values_list("pk", "desirable"))
    annotator_client.patch(f"/api/labels/{world.carol_label.pk}/", {"desirable": True}, format="json")
    annotator_client.delete(f"/api/labels/{world.carol_label.pk}/")
    outsider_client.post("/api/labels/", {"generation": world.items[4].pk, "desirable": True}, format="json")
    assert list(Label.objects.order_by("pk").values_list("pk", "desirable")) == before


def test_annotators_see_others_labels_when_the_project_allows_it(world, api_client_for):
    world.project.annotators_see_others = True
    world.project.save()
    client = api_client_for(world.users["annotator"])
    assert client.get(f"/api/labels/{world.carol_label.pk}/").status_code == 200
    listed = client.get(f"/api/labels/?project={world.project.pk}").json()["results"]
    assert world.carol_label.pk in {label["id"] for label in listed}
    # Seeing is not editing.
    assert client.patch(f"/api/labels/{world.carol_label.pk}/", {"desirable": True}, format="json").status_code == 403


def test_annotators_list_only_their_own_labels_by_default(world, api_client_for):
    client = api_client_for(world.users["annotator"])
    listed = client.get(f"/api/labels/?project={world.project.pk}").json()["results"]
    assert {label["annotator"] for label in listed} == {world.users["annotator"].pk}
    everything = client.get("/api/labels/").json()["results"]
    assert {label["annotator"] for label in everything} == {world.users["annotator"].pk}


def test_stats_show_per_annotator_sections_to_admins_only(world, api_client_for):
    url = f"/api/projects/{world.project.pk}/stats/"
    annotator_view = api_client_for(world.users["annotator"]).get(url).json()
    admin_view = api_client_for(world.users["admin"]).get(url).json()
    assert "annotators" not in annotator_view and "agreement" not in annotator_view
    assert "desirable_rate" not in annotator_view["rounds"][0]
    assert {"carol", "ann", "boss", "root"} <= {row["username"] for row in admin_view["annotators"]}
    assert "agreement" in admin_view
