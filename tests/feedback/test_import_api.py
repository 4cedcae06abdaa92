"""POST /api/projects/{id}/import/: uploads, counts, and 400s that name line and field."""
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from feedback.models import Generation, Label, Prompt


def upload(client, project, name, content):
    return client.post(f"/api/projects/{project.pk}/import/", {"file": SimpleUploadedFile(name, content)},
                       format="multipart")


@pytest.fixture
def client(admin_user, api_client_for):
    return api_client_for(admin_user)


def test_upload_reports_what_was_created_and_deduplicated(client, project, admin_user):
    rows = [{"prompt": "a", "completion": "x", "label": True}, {"prompt": "a", "completion": "y"}, {"prompt": "b"}]
    content = "".join(json.dumps(row) + "\n" for row in rows).encode()
    response = upload(client, project, "rows.jsonl", content)
    assert response.status_code == 201
    assert response.json() == {
        "rows": 3, "round": 1, "prompts_created": 2, "prompts_deduplicated": 1, "generations_created": 2,
        "generations_deduplicated": 0, "labels_created": 1, "labels_updated": 0, "ignored_fields": [],
    }
    assert Label.objects.get().annotator == admin_user


def test_a_bad_line_is_a_400_naming_line_and_field_and_stores_nothing(client, project):
    content = b'prompt,completion,label\nfine,ok,true\n"",orphan,false\n'
    response = upload(client, project, "rows.csv", content)
    assert response.status_code == 400
    body = response.json()
    assert (body["line"], body["field"]) == (3, "prompt")
    assert "line 3" in body["detail"] and "prompt" in body["detail"]
    assert (Prompt.objects.count(), Generation.objects.count(), Label.objects.count()) == (0, 0, 0)


def test_missing_file_field_is_a_400(client, project):
    response = client.post(f"/api/projects/{project.pk}/import/", {}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()


def test_file_over_the_size_limit_is_a_400(client, project, settings):
    settings.IMPORT_MAX_BYTES = 64
    response = upload(client, project, "prompts.txt", b"a prompt that is long enough\n" * 5)
    assert response.status_code == 400
    assert response.json()["field"] == "file" and "64 bytes" in response.json()["detail"]
    assert not Prompt.objects.exists()


def test_overlong_field_is_a_400(client, project):
    from feedback.services.limits import COMPLETION_MAX_CHARS

    row = {"prompt": "p", "completion": "c" * (COMPLETION_MAX_CHARS + 1)}
    response = upload(client, project, "rows.jsonl", (json.dumps(row) + "\n").encode())
    assert response.status_code == 400
    assert (response.json()["line"], response.json()["field"]) == (1, "completion")


def test_unsupported_extension_is_a_400(client, project):
    response = upload(client, project, "rows.xlsx", b"PK")
    assert response.status_code == 400 and "Unsupported" in response.json()["detail"]


def test_oversized_request_is_refused_before_the_body_is_parsed(client, project, settings, monkeypatch):
    from rest_framework.parsers import MultiPartParser

    settings.IMPORT_MAX_BYTES = 1000
    parsed = []
    original = MultiPartParser.parse
    monkeypatch.setattr(MultiPartParser, "parse", lambda self, *args, **kwargs: parsed.append(1) or original(self, *args, **kwargs))
    response = upload(client, project, "prompts.txt", b"x" * (200 * 1024))
    assert response.status_code == 400 and response.json()["field"] == "file"
    assert parsed == []  # refused from Content-Length: the body was never parsed or spooled
    assert upload(client, project, "prompts.txt", b"small prompt\n").status_code == 201
    assert parsed == [1]
