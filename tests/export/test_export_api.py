"""GET /api/projects/{id}/export/: who may export, every format x view, bad parameters."""
import csv
import io
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.http import StreamingHttpResponse


def url(project) -> str:
    return f"/api/projects/{project.pk}/export/"


@pytest.fixture
def labelled(project, annotators, add_item):
    a, b, _ = annotators
    add_item({a: True, b: True}, prompt="Two\nlines", completion='A "quoted", reply')
    add_item({a: False}, prompt="p2", completion="c2")


def download(response) -> bytes:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content)


@pytest.mark.parametrize(
    "who, status",
    [("anonymous", (401, 403)), ("annotator", (403,)), ("outsider", (404,)), ("admin", (200,)), ("superuser", (200,))],
)
def test_only_project_admins_and_superusers_export(request, api_client_for, project, labelled, who, status):
    user = None if who == "anonymous" else request.getfixturevalue({"admin": "admin_user"}.get(who, who))
    response = api_client_for(user).get(url(project), {"format": "jsonl"})
    assert response.status_code in status
    if response.status_code != 200:
        assert "detail" in response.json()
        assert not isinstance(response, StreamingHttpResponse)


def test_admin_of_another_project_gets_404(api_client_for, project, labelled, make_user):
    from feedback.models import Project

    other = Project.objects.create(name="Other", base_model="tiny")
    boss_elsewhere = make_user("elsewhere", project=other, role="admin")
    assert api_client_for(boss_elsewhere).get(url(project)).status_code == 404


@pytest.mark.parametrize("view", ["kto", "raw"])
@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_every_format_and_view_streams_an_attachment(api_client_for, admin_user, project, labelled, fmt, view):
    response = api_client_for(admin_user).get(url(project), {"format": fmt, "view": view})
    assert response.status_code == 200
    filename = rf'attachment; filename="demo-{project.pk}-{view}-\d{{8}}T\d{{6}}Z\.{fmt}"'
    assert re.fullmatch(filename, response["Content-Disposition"])
    data = download(response)
    expected_rows = 2 if view == "kto" else 3
    if fmt == "jsonl":
        assert response["Content-Type"].startswith("application/x-ndjson")
        rows = [json.loads(line) for line in data.decode().splitlines()]
    elif fmt == "csv":
        assert response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(data.decode(), newline="")))
    else:
        assert response["Content-Type"] == "application/vnd.apache.parquet"
        rows = pq.read_table(pa.BufferReader(data)).to_pylist()
    assert len(rows) == expected_rows
    if view == "kto":
        assert rows[0]["prompt"] == "Two\nlines" and rows[0]["completion"] == 'A "quoted", reply'


def test_defaults_are_kto_jsonl(api_client_for, admin_user, project, labelled):
    response = api_client_for(admin_user).get(url(project))
    rows = [json.loads(line) for line in download(response).decode().splitlines()]
    assert rows == [
        {"prompt": "Two\nlines", "completion": 'A "quoted", reply', "label": True},
        {"prompt": "p2", "completion": "c2", "label": False},
    ]


def test_filters_arrive_from_the_query_string(api_client_for, admin_user, project, labelled, annotators, add_item):
    add_item({annotators[0]: True}, round_number=2, completion="round two")
    client = api_client_for(admin_user)
    response = client.get(url(project) + "?round=2&round=1&unanimous=1&min_labels=2")
    rows = [json.loads(line) for line in download(response).decode().splitlines()]
    assert [row["completion"] for row in rows] == ['A "quoted", reply']
    response = client.get(url(project), {"view": "raw", "annotator_names": "1", "annotator": "ann2"})
    rows = [json.loads(line) for line in download(response).decode().splitlines()]
    assert [row["annotator"] for row in rows] == ["ann2"]


@pytest.mark.parametrize(
    "query, field, fragment",
    [
        ("format=xml", "format", "'format' must be one of"),
        ("view=pairs", "view", "'view' must be one of"),
        ("round=7", "round", "no round 7"),
        ("min_agreement=2", "min_agreement", "'min_agreement' must be from 0 to 1"),
        ("from=soon", "from", "'from' must be an ISO date"),
        ("annotator=ghost", "annotator", "no annotator 'ghost'"),
        ("colour=blue", "colour", "Unknown parameter 'colour'"),
    ],
)
def test_bad_parameters_get_400_with_a_message(api_client_for, admin_user, project, labelled, query, field, fragment):
    response = api_client_for(admin_user).get(f"{url(project)}?{query}")
    assert response.status_code == 400
    assert fragment in response.json()["detail"]
    assert response.json()["field"] == field


def test_unknown_project_is_404_even_for_superusers(api_client_for, superuser):
    assert api_client_for(superuser).get("/api/projects/999999/export/").status_code == 404
