"""Celery tasks: thin wrappers over services (queues are set in settings.CELERY_TASK_ROUTES).

The two long tasks acknowledge late and are rejected (redelivered) when their worker process is
lost; both are idempotent: a training run is claimed with a conditional UPDATE, so a duplicate
delivery never trains twice, and a round resumes where its last written batch stopped.
"""
from celery import shared_task
from celery.signals import worker_ready

from trainer.services import playground, rounds, runs

LONG_TASK = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True}


@shared_task(bind=True, **LONG_TASK)
def train_run(self, run_id: int) -> None:
    runs.execute_run(run_id, worker=self.request.hostname or "")


@shared_task(**LONG_TASK)
def generate_round(round_id: int) -> None:
    rounds.generate_round_items(round_id)


@shared_task(ignore_result=False)
def playground_generate(project_id: int, prompt, sampling: dict) -> str:
    return playground.complete(project_id, prompt, sampling)


@worker_ready.connect
def fail_lost_runs(sender=None, **kwargs) -> None:
    """A worker that starts is running nothing: runs it held before a restart are dead."""
    runs.fail_runs_of_worker(getattr(sender, "hostname", "") or "")
    runs.fail_stale_runs()
