"""The project page's forms call the orchestration services and show what they refuse."""
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from feedback.models import Prompt, Round
from trainer.models import TrainingRun


def page(client, project):
    return client.get(reverse("project-page", args=[project.pk])).content.decode()


# --- rounds -------------------------------------------------------------------------------------

def test_open_next_round_creates_a_generating_round_from_the_active_checkpoint(client_as, admin_user, project):
    for n in range(3):
        Prompt.objects.create(project=project, text=f"Prompt {n}")
    client = client_as(admin_user)
    response = client.post(reverse("project-open-round", args=[project.pk]), {"prompt_limit": "2"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("project-page", args=[project.pk])
    round_ = Round.objects.get(project=project)
    assert (round_.number, round_.status, round_.prompt_limit, round_.checkpoint) == (1, "generating", 2, None)
    assert round_.progress_total == 2 * project.samples_per_prompt
    assert "Round 1 opened" in response.content.decode()


def test_open_round_without_prompts_says_so(client_as, admin_user, project):
    response = client_as(admin_user).post(reverse("project-open-round", args=[project.pk]), {"prompt_limit": ""})
    assert response.status_code == 400
    assert "no prompts yet" in response.content.decode()
    assert not project.rounds.exists()


@pytest.mark.parametrize("limit", ["0", "ten"])
def test_open_round_with_a_bad_prompt_limit_names_the_field(client_as, admin_user, project, limit):
    Prompt.objects.create(project=project, text="Prompt")
    response = client_as(admin_user).post(reverse("project-open-round", args=[project.pk]), {"prompt_limit": limit})
    assert response.status_code == 400
    assert "prompt_limit: must be a whole number" in response.content.decode()
    assert not project.rounds.exists()


def test_open_round_while_one_is_generating_is_a_conflict(client_as, admin_user, project):
    Prompt.objects.create(project=project, text="Prompt")
    Round.objects.create(project=project, number=1, status="generating")
    response = client_as(admin_user).post(reverse("project-open-round", args=[project.pk]))
    assert response.status_code == 409
    assert "Round 1 is still generating" in response.content.decode()
    assert project.rounds.count() == 1


# --- training runs ------------------------------------------------------------------------------

def test_a_bad_override_shows_the_error_and_keeps_what_was_typed(client_as, admin_user, project, labelled_round):
    response = client_as(admin_user).post(
        reverse("project-start-run", args=[project.pk]), {"beta": "-1", "batch_size": "1", "learning_rate": "3e-6"}
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "beta: must be a number greater than 0" in html
    assert "batch_size: must be a whole number from 2" in html
    assert 'name="learning_rate" value="3e-6"' in html
    assert not TrainingRun.objects.exists()


def test_a_run_without_enough_labels_is_refused(client_as, admin_user, project):
    response = client_as(admin_user).post(reverse("project-start-run", args=[project.pk]), {})
    assert response.status_code == 400
    assert "Not enough labelled examples" in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_start_training_run_queues_a_run_with_the_overrides(client_as, admin_user, project, labelled_round):
    client = client_as(admin_user)
    response = client.post(
        reverse("project-start-run", args=[project.pk]),
        {"beta": "0.2", "epochs": "2", "lora": "false", "reference": "base", "rounds": ["1"], "learning_rate": ""},
        follow=True,
    )
    run = TrainingRun.objects.get(project=project)
    assert run.status == "queued"
    assert run.created_by == admin_user
    assert run.config["train"]["beta"] == 0.2
    assert run.config["train"]["epochs"] == 2
    assert run.config["train"]["learning_rate"] == project.learning_rate  # blank field: project default
    assert run.config["rounds"] == [1]
    assert run.config["reference"] == "base"
    assert len(run.examples) == 12
    html = response.content.decode()
    assert f"Training run {run.pk} queued with 12 examples" in html
    assert f'data-run="{run.pk}"' in html


def test_cancel_a_queued_run_and_refuse_cancelling_a_finished_one(client_as, admin_user, project):
    queued = TrainingRun.objects.create(project=project)
    done = TrainingRun.objects.create(project=project, status="succeeded")
    client = client_as(admin_user)
    assert client.post(reverse("run-cancel", args=[queued.pk])).status_code == 302
    queued.refresh_from_db()
    assert queued.status == "cancelled"
    response = client.post(reverse("run-cancel", args=[done.pk]))
    assert response.status_code == 409
    assert "already finished" in response.content.decode()


def test_a_running_run_gets_a_cancel_request(client_as, admin_user, project):
    running = TrainingRun.objects.create(project=project, status="running")
    response = client_as(admin_user).post(reverse("run-cancel", args=[running.pk]), follow=True)
    running.refresh_from_db()
    assert running.cancel_requested and running.status == "running"
    assert "cancel requested" in response.content.decode()


# --- checkpoints --------------------------------------------------------------------------------

def test_activate_and_roll_back(client_as, admin_user, project, make_checkpoint):
    older = make_checkpoint()
    newer = make_checkpoint(parent=older)
    client = client_as(admin_user)
    client.post(reverse("checkpoint-activate-page", args=[newer.pk]))
    project.refresh_from_db()
    assert project.active_checkpoint == newer
    response = client.post(reverse("checkpoint-activate-page", args=[older.pk]), follow=True)
    project.refresh_from_db()
    assert project.active_checkpoint == older
    html = response.content.decode()
    assert f"Checkpoint {older.pk} is active" in html
    assert reverse("checkpoint-download", args=[newer.pk]) in html


def test_activating_a_checkpoint_without_files_is_refused(client_as, admin_user, project, make_checkpoint):
    checkpoint = make_checkpoint(with_files=False)
    response = client_as(admin_user).post(reverse("checkpoint-activate-page", args=[checkpoint.pk]))
    assert response.status_code == 409
    assert "has no files" in response.content.decode()
    project.refresh_from_db()
    assert project.active_checkpoint is None


# --- import -------------------------------------------------------------------------------------

def test_import_prompts_from_the_page(client_as, admin_user, project):
    rows = b'{"prompt": "Tell me about the lake."}\n{"prompt": "Write a short story."}\n'
    response = client_as(admin_user).post(
        reverse("project-import", args=[project.pk]), {"file": SimpleUploadedFile("prompts.jsonl", rows)}, follow=True
    )
    assert sorted(project.prompts.values_list("text", flat=True)) == ["Tell me about the lake.", "Write a short story."]
    assert "Imported 2 rows: 2 new prompts" in response.content.decode()


def test_import_without_a_file_says_so(client_as, admin_user, project):
    response = client_as(admin_user).post(reverse("project-import", args=[project.pk]))
    assert response.status_code == 400
    assert "Choose a file" in response.content.decode()


# --- the dashboard's figures --------------------------------------------------------------------

def test_the_headline_shows_each_rounds_desirable_rate(client_as, admin_user, project, labelled_round):
    html = page(client_as(admin_user), project)
    assert "42%" in html  # 5 of 12 labels desirable
    assert "<polyline" in html


def test_live_feed_reports_run_progress_and_curves(client_as, admin_user, project, labelled_round):
    metrics = [{"step": s, "elapsed": s * 0.5, "loss": 0.7 - s / 100, "kl": 0.01 * s,
                "rewards/chosen": 0.1 * s, "rewards/rejected": -0.1 * s, "rewards/margins": 0.2 * s}
               for s in range(1, 5)]
    run = TrainingRun.objects.create(project=project, status="running", step=4, total_steps=10, metrics=metrics)
    other = TrainingRun.objects.create(project=project, status="succeeded")
    url = reverse("project-live", args=[project.pk])
    response = client_as(admin_user).get(url, {"run": [run.pk], "round": [labelled_round.pk]})
    data = json.loads(response.content)
    assert [r["id"] for r in data["runs"]] == [run.pk]  # only what the page asked about
    entry = next(r for r in data["runs"] if r["id"] == run.pk)
    assert (entry["status"], entry["step"], entry["total_steps"], entry["live"]) == ("running", 4, 10, True)
    assert entry["eta"] == "3 s"  # 6 steps left at 0.5 s a step
    loss_points = entry["charts"]["loss"]["series"][0]["points"].split()
    assert len(loss_points) == 4
    assert [s["name"] for s in entry["charts"]["rewards"]["series"]] == [
        "rewards/chosen", "rewards/rejected", "rewards/margins"]
    assert data["rounds"] == [{"id": labelled_round.pk, "status": "open", "progress_done": 0, "progress_total": 0,
                               "generations": 12, "labels": 12, "desirable": 5, "rate": 5 / 12, "live": False}]
    assert other.pk not in [r["id"] for r in client_as(admin_user).get(url).json()["runs"]]


def test_run_cards_show_their_example_counts_and_the_checkpoint_they_produced(
        client_as, admin_user, project, make_checkpoint):
    examples = [{"generation": n, "desirable": n % 3 == 0, "labels": [n]} for n in range(9)]
    run = TrainingRun.objects.create(project=project, status="failed", examples=examples, error="boom")
    html = page(client_as(admin_user), project)
    assert "9 examples (3 desirable / 6 undesirable)" in html
    finished = TrainingRun.objects.create(project=project, status="succeeded", examples=examples)
    checkpoint = make_checkpoint()
    checkpoint.run = finished
    checkpoint.metrics = {"examples": 9, "desirable": 3, "undesirable": 6}
    checkpoint.save()
    html = page(client_as(admin_user), project)
    assert html.count("9 examples (3 desirable / 6 undesirable)") == 2
    assert f"→ checkpoint {checkpoint.pk}" in html
    assert f'data-run="{run.pk}"' in html
