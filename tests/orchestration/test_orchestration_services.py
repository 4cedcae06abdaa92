"""Orchestration services called directly (no worker): validation, snapshots, state changes."""
import io
import tarfile
from datetime import timedelta

import pytest
from django.utils import timezone
from orchestration_helpers import make_round

from feedback.models import Label, Prompt, Round
from trainer.models import Checkpoint, TrainingRun
from trainer.services import checkpoints, playground, rounds, runs, storage
from trainer.services.errors import Conflict, InvalidRequest
from trainer.services.training_data import aggregate_examples, training_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def with_prompt(project):
    Prompt.objects.create(project=project, text="Say <b>hi</b>")
    return project


@pytest.fixture
def voters(make_user, project):
    return [make_user(f"voter{i}", project=project, role="annotator") for i in range(3)]


def vote(generation, users, values):
    return [Label.objects.create(generation=generation, annotator=u, desirable=v) for u, v in zip(users, values)]


# --- snapshot -------------------------------------------------------------------------------------

def test_majority_per_generation_ties_left_out_label_ids_kept(with_prompt, voters):
    round_ = make_round(with_prompt, texts=("a", "b", "c"))
    a, b, c = round_.generations.order_by("id")
    up = vote(a, voters, [True, True, False])
    down = vote(b, voters, [False, False, True])
    vote(c, voters[:2], [True, False])  # a tie: no majority
    examples = aggregate_examples(with_prompt)
    assert examples == [
        {"generation": a.pk, "desirable": True, "labels": [label.pk for label in up]},
        {"generation": b.pk, "desirable": False, "labels": [label.pk for label in down]},
    ]
    rows = training_rows(examples)
    assert rows == [{"prompt": "Say <b>hi</b>", "completion": "a", "desirable": True},
                    {"prompt": "Say <b>hi</b>", "completion": "b", "desirable": False}]


def test_rounds_option_selects_whose_labels(with_prompt, voters):
    one = make_round(with_prompt, 1, texts=("x",))
    two = make_round(with_prompt, 2, texts=("y",))
    vote(one.generations.get(), voters[:1], [True])
    vote(two.generations.get(), voters[:1], [False])
    assert [e["desirable"] for e in aggregate_examples(with_prompt, [2])] == [False]
    assert len(aggregate_examples(with_prompt, [1, 2])) == 2


# --- starting a run -------------------------------------------------------------------------------

def labelled(project, voters, values):
    round_ = make_round(project, texts=[f"t{i}" for i in range(len(values))])
    for generation, value in zip(round_.generations.order_by("id"), values):
        vote(generation, voters[:1], [value])
    return round_


@pytest.mark.parametrize("overrides, field", [
    ({"beta": 0}, "beta"),
    ({"beta": "abc"}, "beta"),
    ({"learning_rate": 1.5}, "learning_rate"),
    ({"batch_size": 1}, "batch_size"),
    ({"epochs": 0}, "epochs"),
    ({"epochs": 1.5}, "epochs"),
    ({"lora": "maybe"}, "lora"),
    ({"reference": "other"}, "reference"),
    ({"rounds": [7]}, "rounds"),
    ({"rounds": "1"}, "rounds"),
    ({"desirable_weight": True}, "desirable_weight"),
    ({"learning_rate": float("nan")}, "learning_rate"),
    ({"bogus": 1}, "bogus"),
])
def test_bad_override_is_refused_naming_the_field(with_prompt, voters, admin_user, overrides, field):
    labelled(with_prompt, voters, [True, False] * 4)
    with pytest.raises(InvalidRequest) as caught:
        runs.start_training_run(with_prompt, user=admin_user, overrides=overrides)
    assert list(caught.value.detail) == [field]
    assert not TrainingRun.objects.exists()


def test_too_few_examples_refused(with_prompt, voters, admin_user):
    labelled(with_prompt, voters, [True, False, True])
    with pytest.raises(InvalidRequest, match="Not enough labelled examples: 3"):
        runs.start_training_run(with_prompt, user=admin_user, overrides={})


def test_one_class_only_refused(with_prompt, voters, admin_user):
    labelled(with_prompt, voters, [True] * 8)
    with pytest.raises(InvalidRequest, match="undesirable"):
        runs.start_training_run(with_prompt, user=admin_user)


def test_batch_size_raises_the_minimum(with_prompt, voters, admin_user):
    labelled(with_prompt, voters, [True, False] * 5)
    with pytest.raises(InvalidRequest, match="at least 16"):
        runs.start_training_run(with_prompt, user=admin_user, overrides={"batch_size": 16})


def test_started_run_is_queued_with_snapshot_and_resolved_config(with_prompt, voters, admin_user,
                                                                 django_capture_on_commit_callbacks):
    labelled(with_prompt, voters, [True, False] * 4)
    active = Checkpoint.objects.create(project=with_prompt, path="1/run-0")
    with_prompt.active_checkpoint = active
    with_prompt.save()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run = runs.start_training_run(with_prompt, user=admin_user,
                                      overrides={"beta": "0.2", "lora": "true", "rounds": ["1"]})
    assert len(callbacks) == 1  # enqueued once the transaction commits, never before
    assert run.status == TrainingRun.Status.QUEUED
    assert run.start_checkpoint == active
    assert len(run.examples) == 8 and all(len(example["labels"]) == 1 for example in run.examples)
    assert run.config["train"]["beta"] == 0.2
    assert run.config["train"]["lora"] is True and run.config["train"]["merge_lora"] is True
    assert run.config["train"]["batch_size"] == with_prompt.batch_size  # project default kept
    assert run.config["rounds"] == [1] and run.config["reference"] == "current"


# --- claim, cancel, stale -------------------------------------------------------------------------

def queued_run(project, **fields):
    return TrainingRun.objects.create(project=project, config={"train": {}}, **fields)


def test_claim_is_won_once(project):
    run = queued_run(project)
    assert runs.claim_run(run.pk, worker="w1") is True
    assert runs.claim_run(run.pk, worker="w2") is False
    run.refresh_from_db()
    assert run.status == "running" and run.worker == "w1"
    assert runs.execute_run(run.pk) is None  # a second delivery does nothing


def test_cancel_queued_running_and_finished(project):
    queued = queued_run(project)
    assert runs.cancel_run(queued).status == "cancelled"
    assert runs.claim_run(queued.pk) is False  # its message, when it arrives, trains nothing

    running = queued_run(project, status="running")
    cancelled = runs.cancel_run(running)
    assert cancelled.status == "running" and cancelled.cancel_requested
    assert runs.cancel_requested(running.pk)

    done = queued_run(project, status="succeeded")
    with pytest.raises(Conflict, match="already finished"):
        runs.cancel_run(done)


def test_stale_running_runs_fail_and_their_files_go(project, settings, tmp_path):
    settings.CHECKPOINT_DIR = tmp_path
    settings.PROSPECT_STALE_RUN_SECONDS = 60
    old = timezone.now() - timedelta(seconds=120)
    stale = queued_run(project, status="running", started_at=old, heartbeat_at=old)
    fresh = queued_run(project, status="running", started_at=old, heartbeat_at=timezone.now())
    staging = tmp_path / str(project.pk) / f".run-{stale.pk}.partial-123"
    staging.mkdir(parents=True)
    keep = tmp_path / str(project.pk) / f"run-{stale.pk}0"  # another run's directory, similar name
    keep.mkdir()
    assert runs.fail_stale_runs() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == "failed" and "worker lost" in stale.error and stale.finished_at
    assert fresh.status == "running"
    assert not staging.exists() and keep.exists()


def test_runs_of_a_restarted_worker_fail(project):
    mine = queued_run(project, status="running", worker="celery@gpu1", heartbeat_at=timezone.now())
    other = queued_run(project, status="running", worker="celery@gpu2", heartbeat_at=timezone.now())
    assert runs.fail_runs_of_worker("celery@gpu1") == 1
    assert TrainingRun.objects.get(pk=mine.pk).status == "failed"
    assert TrainingRun.objects.get(pk=other.pk).status == "running"


def test_status_reports_eta_from_step_pace(project):
    run = queued_run(project, status="running", step=4, total_steps=10, metrics=[
        {"step": 1, "elapsed": 10.0, "loss": 0.7}, {"step": 4, "elapsed": 16.0, "loss": 0.5}])
    status = runs.run_status(run)
    assert status["eta_seconds"] == 12.0  # 2 s per step, 6 steps left
    assert status["latest_metrics"]["loss"] == 0.5
    assert "metrics" not in status and runs.run_status(run, history=True)["metrics"] == run.metrics


def test_progress_reporter_writes_step_total_and_metrics(project):
    run = queued_run(project, status="running")
    reporter = runs.ProgressReporter(run.pk, min_interval=0)
    reporter({"phase": "reference", "done": 1, "total": 2})
    reporter({"step": 1, "total_steps": 2, "metrics": {"loss": 0.69, "kl": 0.0}})
    run.refresh_from_db()
    assert (run.step, run.total_steps, run.phase) == (1, 2, "training")
    assert run.metrics[0]["loss"] == 0.69 and run.heartbeat_at is not None


# --- rounds ---------------------------------------------------------------------------------------

def test_open_round_without_prompts_is_refused(project, admin_user):
    with pytest.raises(InvalidRequest, match="no prompts"):
        rounds.open_round(project, user=admin_user)


@pytest.mark.parametrize("limit", [0, -1, "3", 2.5, True])
def test_open_round_bad_limit(with_prompt, admin_user, limit):
    with pytest.raises(InvalidRequest):
        rounds.open_round(with_prompt, user=admin_user, prompt_limit=limit)


def test_open_round_numbers_and_checkpoint(with_prompt, admin_user, django_capture_on_commit_callbacks):
    make_round(with_prompt, 1)
    active = Checkpoint.objects.create(project=with_prompt, path="1/run-9")
    with_prompt.active_checkpoint = active
    with_prompt.save()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        round_ = rounds.open_round(with_prompt, user=admin_user)
    assert len(callbacks) == 1
    assert (round_.number, round_.status, round_.checkpoint) == (2, "generating", active)
    assert round_.progress_total == with_prompt.samples_per_prompt
    with pytest.raises(Conflict, match="Round 2 is still generating"):
        rounds.open_round(with_prompt, user=admin_user)


def test_stalled_generating_round_does_not_block_forever(with_prompt, admin_user, settings,
                                                         django_capture_on_commit_callbacks):
    settings.PROSPECT_STALE_RUN_SECONDS = 60
    stuck = Round.objects.create(project=with_prompt, number=1, status="generating")
    Round.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timedelta(seconds=120))
    with django_capture_on_commit_callbacks(execute=False):
        new = rounds.open_round(with_prompt, user=admin_user)
    stuck.refresh_from_db()
    assert stuck.status == "failed" and "stalled" in stuck.error
    assert new.number == 2


def test_prompt_limit_picks_a_seeded_sample(project):
    for i in range(10):
        Prompt.objects.create(project=project, text=f"p{i}")
    round_ = Round.objects.create(project=project, number=3, prompt_limit=4)
    chosen = rounds.selected_prompts(round_)
    assert len(chosen) == 4 and chosen == rounds.selected_prompts(round_)
    Prompt.objects.create(project=project, text="imported after the round opened")
    assert rounds.selected_prompts(Round.objects.get(pk=round_.pk)) == chosen


# --- checkpoints ----------------------------------------------------------------------------------

def test_archive_streams_the_directory_as_tar(project, settings, tmp_path):
    settings.CHECKPOINT_DIR = tmp_path
    directory = tmp_path / "1" / "run-1"
    (directory / "sub").mkdir(parents=True)
    (directory / "config.json").write_text('{"a": 1}')
    (directory / "model.safetensors").write_bytes(bytes(range(256)) * 5000)
    (directory / "sub" / "empty").write_bytes(b"")
    checkpoint = Checkpoint.objects.create(project=project, path="1/run-1")
    chunks = list(checkpoints.stream_archive(checkpoint))
    assert len(chunks) > 3  # produced piece by piece, not as one buffer
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
        root = checkpoints.archive_name(checkpoint).removesuffix(".tar")
        assert sorted(archive.getnames()) == [f"{root}/config.json", f"{root}/model.safetensors", f"{root}/sub",
                                              f"{root}/sub/empty"]
        assert archive.extractfile(f"{root}/model.safetensors").read() == bytes(range(256)) * 5000
        assert archive.extractfile(f"{root}/config.json").read() == b'{"a": 1}'


def test_activate_and_roll_back(project, settings, tmp_path, admin_user):
    settings.CHECKPOINT_DIR = tmp_path
    older = Checkpoint.objects.create(project=project, path="1/run-1")
    newer = Checkpoint.objects.create(project=project, path="1/run-2", parent=older)
    for checkpoint in (older, newer):
        storage.absolute(checkpoint.path).mkdir(parents=True)
    checkpoints.activate(newer, user=admin_user)
    project.refresh_from_db()
    assert project.active_checkpoint == newer
    checkpoints.activate(older, user=admin_user)
    project.refresh_from_db()
    assert project.active_checkpoint == older
    missing = Checkpoint.objects.create(project=project, path="1/run-3")
    with pytest.raises(Conflict, match="no files"):
        checkpoints.activate(missing, user=admin_user)


# --- playground -----------------------------------------------------------------------------------

@pytest.mark.parametrize("prompt", ["", "   ", 5, None, [{"role": "user"}], [], "x" * 20_001])
def test_playground_bad_prompt(project, prompt):
    with pytest.raises(InvalidRequest) as caught:
        playground.generate_text(project, prompt, {})
    assert "prompt" in caught.value.detail


@pytest.mark.parametrize("options, field", [
    ({"max_new_tokens": 0}, "max_new_tokens"), ({"temperature": -1}, "temperature"),
    ({"top_p": 0}, "top_p"), ({"seed": "x"}, "seed"), ({"nope": 1}, "nope"),
])
def test_playground_bad_option(project, options, field):
    with pytest.raises(InvalidRequest) as caught:
        playground.generate_text(project, "hello", options)
    assert list(caught.value.detail) == [field]


def test_playground_options_default_to_the_project(project):
    project.max_new_tokens, project.temperature = 20, 0.5
    assert playground.validate_options(project, {"seed": 3}) == {
        "max_new_tokens": 20, "temperature": 0.5, "top_p": project.top_p, "seed": 3}
