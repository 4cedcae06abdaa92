"""The orchestration API: who may call each endpoint, and what the answers look like.

The permission matrix uses requests that are refused or answered without a worker (a project
without prompts, a finished run, ...), so it exercises access control and not the broker.
"""
import io
import tarfile

import pytest
from orchestration_helpers import make_round

from feedback.models import Label
from trainer.models import Checkpoint, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects(project, settings, tmp_path):
    settings.CHECKPOINT_DIR = tmp_path
    run = TrainingRun.objects.create(project=project, status="succeeded", config={"train": {}},
                                     error="<script>alert(1)</script>")
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    checkpoint = Checkpoint.objects.create(project=project, run=run, path="ckpt")
    return {"project": project.pk, "run": run.pk, "checkpoint": checkpoint.pk}


# (method, url template, body, status for an admin)
ENDPOINTS = [
    ("get", "/api/projects/{project}/rounds/", None, 200),
    ("post", "/api/projects/{project}/rounds/", {}, 400),  # no prompts yet
    ("get", "/api/projects/{project}/training-runs/", None, 200),
    ("post", "/api/projects/{project}/training-runs/", {}, 400),  # no labels yet
    ("get", "/api/training-runs/{run}/", None, 200),
    ("post", "/api/training-runs/{run}/cancel/", {}, 409),  # already finished
    ("get", "/api/projects/{project}/checkpoints/", None, 200),
    ("post", "/api/checkpoints/{checkpoint}/activate/", {}, 200),
    ("get", "/api/checkpoints/{checkpoint}/download/", None, 200),
    ("post", "/api/projects/{project}/generate/", {"prompt": ""}, 400),
]


@pytest.mark.parametrize("method, url, body, admin_status", ENDPOINTS, ids=[f"{m} {u}" for m, u, *_ in ENDPOINTS])
@pytest.mark.parametrize("who", ["anonymous", "outsider", "annotator", "admin", "superuser"])
def test_permission_matrix(request, api_client_for, objects, method, url, body, admin_status, who):
    user = None if who == "anonymous" else request.getfixturevalue({"admin": "admin_user"}.get(who, who))
    client = api_client_for(user)
    response = getattr(client, method)(url.format(**objects), body, format="json")
    expected = {"anonymous": (401, 403), "outsider": (404,), "annotator": (403,),
                "admin": (admin_status,), "superuser": (admin_status,)}[who]
    assert response.status_code in expected, getattr(response, "data", response)


def test_objects_of_another_project_are_404_for_its_non_members(objects, make_user, api_client_for):
    from feedback.models import Project

    other = Project.objects.create(name="Other", base_model="tiny")
    other_admin = make_user("other-admin", project=other, role="admin")
    client = api_client_for(other_admin)
    assert client.get(f"/api/training-runs/{objects['run']}/").status_code == 404
    assert client.post(f"/api/checkpoints/{objects['checkpoint']}/activate/").status_code == 404
    assert client.get(f"/api/checkpoints/{objects['checkpoint']}/download/").status_code == 404


def test_bad_override_is_a_400_naming_the_field(project, admin_user, api_client_for, make_user):
    make_round(project, texts=[f"t{i}" for i in range(8)])
    for index, generation in enumerate(project.rounds.get().generations.all()):
        Label.objects.create(generation=generation, annotator=admin_user, desirable=index % 2 == 0)
    response = api_client_for(admin_user).post(f"/api/projects/{project.pk}/training-runs/",
                                               {"batch_size": 1, "beta": -1}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"batch_size", "beta"}
    assert "at least 2" in response.json()["batch_size"][0]
    assert not TrainingRun.objects.exists()


def test_too_few_labels_is_a_400_with_a_message(project, admin_user, api_client_for):
    make_round(project)
    response = api_client_for(admin_user).post(f"/api/projects/{project.pk}/training-runs/", {}, format="json")
    assert response.status_code == 400
    assert "Not enough labelled examples: 0" in response.json()["detail"]


def test_run_detail_shape_and_untrusted_error_is_plain_json(objects, admin_user, api_client_for):
    body = api_client_for(admin_user).get(f"/api/training-runs/{objects['run']}/").json()
    assert body["status"] == "succeeded" and body["checkpoint"] == objects["checkpoint"]
    assert body["error"] == "<script>alert(1)</script>"
    assert {"step", "total_steps", "eta_seconds", "latest_metrics", "metrics", "phase"} <= set(body)


def test_checkpoint_list_marks_the_active_one(objects, project, admin_user, api_client_for):
    client = api_client_for(admin_user)
    assert client.post(f"/api/checkpoints/{objects['checkpoint']}/activate/").json()["active"] is True
    listed = client.get(f"/api/projects/{project.pk}/checkpoints/").json()["results"]
    assert [(c["id"], c["active"], c["run"]) for c in listed] == [(objects["checkpoint"], True, objects["run"])]


def test_download_is_a_streamed_tar(objects, admin_user, api_client_for):
    response = api_client_for(admin_user).get(f"/api/checkpoints/{objects['checkpoint']}/download/")
    assert response.streaming and response["Content-Type"] == "application/x-tar"
    assert ".tar" in response["Content-Disposition"]
    with tarfile.open(fileobj=io.BytesIO(b"".join(response.streaming_content))) as archive:
        assert [name.split("/", 1)[1] for name in archive.getnames()] == ["config.json"]


def test_rounds_list_counts(project, admin_user, api_client_for):
    round_ = make_round(project, texts=("a", "b"))
    first = round_.generations.order_by("id").first()
    Label.objects.create(generation=first, annotator=admin_user, desirable=True)
    listed = api_client_for(admin_user).get(f"/api/projects/{project.pk}/rounds/").json()["results"]
    assert listed[0]["number"] == 1
    assert (listed[0]["generations"], listed[0]["labels"], listed[0]["desirable_labels"]) == (2, 1, 1)


@pytest.mark.parametrize("limit", ["many", 2.5, True, 0])
def test_open_round_bad_limit_is_a_400(project, admin_user, api_client_for, limit):
    make_round(project)
    response = api_client_for(admin_user).post(f"/api/projects/{project.pk}/rounds/", {"prompt_limit": limit},
                                               format="json")
    assert response.status_code == 400 and "prompt_limit" in response.json()
    assert project.rounds.count() == 1


@pytest.mark.django_db(transaction=True)
def test_generate_without_a_worker_is_a_clear_504(project, admin_user, api_client_for, settings):
    from celery_worker import purge_queues

    settings.PROSPECT_PLAYGROUND_TIMEOUT = 1
    response = api_client_for(admin_user).post(f"/api/projects/{project.pk}/generate/", {"prompt": "Hi"},
                                               format="json")
    purge_queues()
    assert response.status_code == 504
    assert "No generation worker answered within 1 s" in response.json()["detail"]


def test_the_web_process_never_loads_the_engine():
    """Views, services and tasks import torch only inside worker-side functions."""
    import subprocess
    import sys

    code = ("import django, os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'feedback.settings'); "
            "django.setup(); import feedback.urls, trainer.api.views, trainer.tasks; "
            "from trainer.services import rounds, runs, checkpoints, playground; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


@pytest.mark.django_db(transaction=True)  # on_commit runs inside the request, as in production
def test_broker_down_is_a_503_and_the_run_does_not_wait_forever(project, admin_user, api_client_for, monkeypatch):
    from kombu.exceptions import OperationalError

    from trainer import tasks

    def refuse(*args, **kwargs):
        raise OperationalError("Connection refused")

    monkeypatch.setattr(tasks.train_run, "apply_async", refuse)
    make_round(project, texts=[f"t{i}" for i in range(8)])
    for index, generation in enumerate(project.rounds.get().generations.all()):
        Label.objects.create(generation=generation, annotator=admin_user, desirable=index % 2 == 0)
    response = api_client_for(admin_user).post(f"/api/projects/{project.pk}/training-runs/", {}, format="json")
    assert response.status_code == 503
    assert "broker" in response.json()["detail"]
    run = TrainingRun.objects.get()
    assert run.status == "failed" and "Connection refused" in run.error
