"""The loop on a REAL Celery worker (subprocess) and the configured broker: Redis in CI, kombu's
filesystem transport locally. The worker reads and writes the test database."""
import pytest
from celery_worker import wait_until
from orchestration_helpers import label_round

from feedback.models import Generation, Round
from trainer.models import Checkpoint, TrainingRun
from trainer.services import playground, rounds, runs, storage

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def fresh(obj):
    obj.refresh_from_db()
    return obj


def wait_round_open(round_, worker, timeout=90):
    wait_until(lambda: fresh(round_).status != Round.Status.GENERATING, timeout=timeout, worker=worker,
               message=f"round {round_.number} to finish generating")
    assert round_.status == Round.Status.OPEN, round_.error
    return round_


def wait_run_finished(run, worker, timeout=120):
    wait_until(lambda: fresh(run).status in runs.FINISHED, timeout=timeout, worker=worker,
               message=f"run {run.pk} to finish")
    return run


def leftovers(project_id, run_id):
    out = storage.absolute(storage.run_dir_name(project_id, run_id))
    return [p.name for p in out.parent.glob(f"{out.name}*")] + [p.name for p in out.parent.glob(f".{out.name}.*")]


def test_round_train_activate_round_playground(real_worker, tiny_project, labeller, admin_user):
    """Round 1 from the base model -> labels -> a run -> its checkpoint, auto-activated -> round 2
    generated from that checkpoint; the playground answers from it too."""
    project = tiny_project
    project.auto_activate = True
    project.save()

    first = rounds.open_round(project, user=admin_user)
    wait_round_open(first, real_worker)
    assert first.checkpoint is None
    assert first.progress_done == first.progress_total == 6 * 2
    items = list(Generation.objects.filter(round=first))
    assert len(items) == 12
    assert {g.source for g in items} == {Generation.Source.CHECKPOINT}
    assert all(g.checkpoint_id is None for g in items)  # round 1 samples the base model

    label_round(first, labeller)
    run = runs.start_training_run(project, user=admin_user, overrides={"max_steps": 3, "batch_size": 4})
    assert fresh(run).status in (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)
    wait_run_finished(run, real_worker)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.step == run.total_steps == 3
    assert [entry["step"] for entry in run.metrics] == [1, 2, 3]
    assert {"loss", "kl", "rewards/chosen", "rewards/rejected"} <= set(run.metrics[-1])

    checkpoint = Checkpoint.objects.get(run=run)
    assert checkpoint.parent is None and checkpoint.project_id == project.pk
    path = storage.absolute(checkpoint.path)
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(path) is not None  # a loadable HF directory
    assert fresh(project).active_checkpoint_id == checkpoint.pk  # auto_activate

    # auto_activate also opened round 2, which must sample the new checkpoint.
    second = wait_until(lambda: project.rounds.filter(number=2).first(), timeout=30, worker=real_worker,
                        message="round 2 to be opened")
    wait_round_open(second, real_worker)
    assert second.checkpoint_id == checkpoint.pk
    assert set(second.generations.values_list("checkpoint_id", flat=True)) == {checkpoint.pk}

    text = playground.generate_text(project, "Tell me about the lake.", {"max_new_tokens": 6, "seed": 1})
    assert isinstance(text, str)


def test_cancel_stops_within_a_step_and_keeps_the_active_checkpoint(start_worker, tiny_project, labeller,
                                                                     admin_user):
    project = tiny_project
    worker = start_worker(PROSPECT_PROGRESS_SECONDS=0)  # every step reaches the database
    first = rounds.open_round(project, user=admin_user)
    wait_round_open(first, worker)
    label_round(first, labeller)
    active = Checkpoint.objects.create(project=project, path=project.base_model)
    project.active_checkpoint = active
    project.save()

    run = runs.start_training_run(project, user=admin_user, overrides={"max_steps": 100000, "batch_size": 4})
    wait_until(lambda: fresh(run).step >= 2, timeout=90, worker=worker, message="the run to take 2 steps")
    runs.cancel_run(run)
    step_at_cancel = fresh(run).step
    wait_run_finished(run, worker, timeout=30)
    assert run.status == TrainingRun.Status.CANCELLED
    # At most the step that was under way when the flag was set, plus the one the row lagged by.
    assert step_at_cancel <= run.step == len(run.metrics) <= step_at_cancel + 2
    assert fresh(project).active_checkpoint_id == active.pk
    assert not Checkpoint.objects.filter(run=run).exists()
    assert leftovers(project.pk, run.pk) == []


def test_engine_failure_fails_the_run_and_keeps_the_active_checkpoint(real_worker, tiny_project, labeller,
                                                                      admin_user):
    project = tiny_project
    first = rounds.open_round(project, user=admin_user)
    wait_round_open(first, real_worker)
    label_round(first, labeller)
    active = Checkpoint.objects.create(project=project, path=project.base_model)
    project.active_checkpoint = active
    project.base_model = str(storage.absolute("no-such-model"))  # the "base" reference cannot load
    project.save()

    run = runs.start_training_run(project, user=admin_user, overrides={"max_steps": 2, "reference": "base"})
    wait_run_finished(run, real_worker)
    assert run.status == TrainingRun.Status.FAILED
    assert run.error
    assert fresh(project).active_checkpoint_id == active.pk
    assert not Checkpoint.objects.filter(run=run).exists()
    assert leftovers(project.pk, run.pk) == []


def test_duplicate_delivery_trains_once(real_worker, tiny_project, labeller, admin_user):
    from trainer.tasks import train_run

    project = tiny_project
    first = rounds.open_round(project, user=admin_user)
    wait_round_open(first, real_worker)
    label_round(first, labeller)
    run = runs.start_training_run(project, user=admin_user, overrides={"max_steps": 2})
    train_run.apply_async(args=[run.pk])  # the broker delivers the same run a second time
    wait_run_finished(run, real_worker)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    wait_until(lambda: "not claimed" in real_worker.log(), timeout=30, worker=real_worker,
               message="the duplicate delivery to be refused")
    assert len(run.metrics) == 2
    assert Checkpoint.objects.filter(run=run).count() == 1


def test_sigkilled_worker_leaves_the_run_failed_not_running(start_worker, tiny_project, labeller, admin_user,
                                                            api_client_for, settings):
    settings.PROSPECT_STALE_RUN_SECONDS = 3
    project = tiny_project
    worker = start_worker(PROSPECT_HEARTBEAT_SECONDS=0.5, PROSPECT_STALE_RUN_SECONDS=3)
    first = rounds.open_round(project, user=admin_user)
    wait_round_open(first, worker)
    label_round(first, labeller)
    run = runs.start_training_run(project, user=admin_user, overrides={"max_steps": 100000})
    wait_until(lambda: fresh(run).step >= 1, timeout=90, worker=worker, message="the run to start stepping")

    worker.kill()
    assert fresh(run).status == TrainingRun.Status.RUNNING  # nobody has looked yet
    client = api_client_for(admin_user)

    def reported_failed():
        body = client.get(f"/api/training-runs/{run.pk}/").json()
        return body["status"] == "failed" and body

    body = wait_until(reported_failed, timeout=20, interval=0.5, message="the run to be reported failed")
    assert "worker lost" in body["error"]
    assert leftovers(project.pk, run.pk) == []
    # A new delivery of the same run (Redis redelivers after the visibility timeout) trains nothing.
    assert runs.execute_run(run.pk) is None
    assert fresh(run).status == TrainingRun.Status.FAILED
