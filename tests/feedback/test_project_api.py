"""Accounts, tokens, projects and members through the API."""
import pytest
from rest_framework.test import APIClient

from feedback.models import Membership, Project

PASSWORD = "pw-Secret-123"  # the conftest's make_user default


def test_token_for_username_and_password_then_token_auth(annotator, project):
    client = APIClient()
    response = client.post("/api/auth/token/", {"username": "ann", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    assert client.post("/api/auth/token/", {"username": "ann", "password": PASSWORD}, format="json").json() == {
        "token": token}
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    projects = client.get("/api/projects/").json()["results"]
    assert [(row["id"], row["role"]) for row in projects] == [(project.pk, "annotator")]


@pytest.mark.parametrize("body", [{"username": "ann", "password": "wrong"}, {"username": "nobody", "password": "x"},
                                  {"username": "ann"}])
def test_token_refuses_bad_credentials_with_400(annotator, body):
    response = APIClient().post("/api/auth/token/", body, format="json")
    assert response.status_code == 400
    assert "token" not in response.json()


def test_token_endpoint_needs_no_csrf_token(annotator):
    client = APIClient(enforce_csrf_checks=True)
    response = client.post("/api/auth/token/", {"username": "ann", "password": PASSWORD}, format="json")
    assert response.status_code == 200


def test_session_writes_need_the_csrf_token(annotator, project, make_items):
    (generation,) = make_items(1)
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="ann", password=PASSWORD)
    refused = client.post("/api/labels/", {"generation": generation.pk, "desirable": True}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]


def test_superuser_creates_a_project_and_becomes_its_admin(superuser, api_client_for):
    response = api_client_for(superuser).post(
        "/api/projects/", {"name": "Poems", "base_model": "gpt2", "labels_per_item": 2}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["labels_per_item"], body["role"]) == ("Poems", 2, "admin")
    assert Membership.objects.filter(project_id=body["id"], user=superuser, role="admin").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("labels_per_item", 0), ("batch_size", 1), ("top_p", 0), ("top_p", 1.5), ("learning_rate", 1), ("beta", 0),
     ("temperature", -1), ("max_new_tokens", 5000), ("lease_minutes", 0), ("name", "Demo"), ("base_model", "")],
)
def test_invalid_project_fields_answer_400_naming_the_field(superuser, project, api_client_for, field, value):
    body = {"name": "Fresh", "base_model": "tiny", field: value}
    response = api_client_for(superuser).post("/api/projects/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert Project.objects.count() == 1


def test_admin_patches_settings_with_validation(admin_user, project, api_client_for):
    client = api_client_for(admin_user)
    url = f"/api/projects/{project.pk}/"
    changed = client.patch(url, {"labels_per_item": 3, "annotators_see_others": True}, format="json")
    assert changed.status_code == 200 and changed.json()["labels_per_item"] == 3
    assert client.patch(url, {"batch_size": 1}, format="json").status_code == 400
    assert client.patch(url, {"active_checkpoint": 5}, format="json").json()["active_checkpoint"] is None  # read-only
    assert client.put(url, {"name": "x", "base_model": "y"}, format="json").status_code == 405
    project.refresh_from_db()
    assert (project.labels_per_item, project.batch_size) == (3, 8)


def test_members_are_added_and_their_role_changed(admin_user, project, make_user, api_client_for):
    make_user("newcomer")
    client = api_client_for(admin_user)
    url = f"/api/projects/{project.pk}/members/"
    added = client.post(url, {"username": "newcomer", "role": "annotator"}, format="json")
    assert added.status_code == 201 and added.json()["role"] == "annotator"
    promoted = client.post(url, {"username": "newcomer", "role": "admin"}, format="json")
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    listed = {row["username"]: row["role"] for row in client.get(url).json()}
    assert listed == {"boss": "admin", "newcomer": "admin"}


@pytest.mark.parametrize(("body", "field"), [({"username": "ghost", "role": "annotator"}, "username"),
                                             ({"username": "boss", "role": "owner"}, "role")])
def test_bad_member_requests_answer_400(admin_user, project, api_client_for, body, field):
    response = api_client_for(admin_user).post(f"/api/projects/{project.pk}/members/", body, format="json")
    assert response.status_code == 400
    assert field in str(response.json())


def test_superuser_creates_an_account_that_can_log_in(superuser, api_client_for):
    response = api_client_for(superuser).post(
        "/api/users/", {"username": "maria", "password": "correct-horse-battery-9", "email": "m@example.org"},
        format="json")
    assert response.status_code == 201
    assert "password" not in response.json() and response.json()["username"] == "maria"
    token = APIClient().post("/api/auth/token/", {"username": "maria", "password": "correct-horse-battery-9"},
                             format="json")
    assert token.status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [({"username": "root", "password": "correct-horse-battery-9"}, "username"),
     ({"username": "weak", "password": "123"}, "password"),
     ({"username": "bad name!", "password": "correct-horse-battery-9"}, "username")],
)
def test_bad_accounts_answer_400(superuser, api_client_for, body, field):
    response = api_client_for(superuser).post("/api/users/", body, format="json")
    assert response.status_code == 400 and field in response.json()


def test_project_list_gives_each_role_in_a_fixed_number_of_queries(make_user, api_client_for):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    person = make_user("many")
    client = api_client_for(person)

    def listed():
        with CaptureQueriesContext(connection) as queries:
            rows = client.get("/api/projects/").json()["results"]
        return {row["name"]: row["role"] for row in rows}, len(queries)

    first = Project.objects.create(name="first")
    Membership.objects.create(project=first, user=person, role=Membership.Role.ADMIN)
    roles, one_project_queries = listed()
    assert roles == {"first": "admin"}
    for name in ("second", "third"):
        Membership.objects.create(project=Project.objects.create(name=name), user=person)
    Project.objects.create(name="not mine")
    roles, three_project_queries = listed()
    assert roles == {"first": "admin", "second": "annotator", "third": "annotator"}
    assert three_project_queries == one_project_queries
