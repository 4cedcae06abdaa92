"""Training runs: start (web), execute (worker), cancel, report, and fail the ones whose worker died.

A run moves queued -> running -> succeeded | failed | cancelled, and every move is a conditional
UPDATE on the current status, so two deliveries of the same task, a cancel racing a claim, or the
stale-run sweep racing a finishing worker can never both win.
"""
import logging
import shutil
import time
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from trainer.models import Checkpoint, TrainingRun

from . import storage
from .errors import Conflict, InvalidRequest, WorkerUnavailable
from .heartbeat import Heartbeat
from .run_options import resolve_options
from .training_data import aggregate_examples, training_rows

log = logging.getLogger(__name__)
Status = TrainingRun.Status
FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)


# --- web side -----------------------------------------------------------------------------------

def start_training_run(project, *, user, overrides: dict | None = None) -> TrainingRun:
    """Validate, snapshot the aggregated labels, create the run and enqueue it on "training".

    Raises InvalidRequest ({field: [message]} or a message) when the overrides or the data do not
    allow a run, and WorkerUnavailable when the broker cannot be reached (the run is then failed).
    """
    options = resolve_options(project, overrides)
    examples = aggregate_examples(project, options["rounds"])
    check_examples(examples, batch_size=options["batch_size"])
    start = project.active_checkpoint
    train = {
        key: options[key]
        for key in ("beta", "desirable_weight", "undesirable_weight", "learning_rate", "epochs",
                    "batch_size", "max_steps", "seed", "lora")
    }
    # Merged weights keep every checkpoint a plain model directory the next round can sample from.
    train["merge_lora"] = options["lora"]
    run = TrainingRun.objects.create(
        project=project,
        created_by=user if user is not None and user.is_authenticated else None,
        start_checkpoint=start,
        examples=examples,
        total_steps=0,
        task_id=str(uuid.uuid4()),
        config={
            "train": train,
            "reference": options["reference"],
            "rounds": options["rounds"],
            "base_model": project.base_model,
        },
    )
    transaction.on_commit(lambda: _enqueue(run))
    return run


def check_examples(examples: list[dict], *, batch_size: int) -> None:
    needed = max(batch_size, settings.PROSPECT_MIN_TRAINING_EXAMPLES)
    desirable = sum(1 for example in examples if example["desirable"])
    undesirable = len(examples) - desirable
    if len(examples) < needed:
        raise InvalidRequest(
            f"Not enough labelled examples: {len(examples)} after majority aggregation (ties left out); "
            f"a run needs at least {needed}."
        )
    if desirable == 0 or undesirable == 0:
        missing = "desirable (thumbs-up)" if desirable == 0 else "undesirable (thumbs-down)"
        raise InvalidRequest(
            f"All {len(examples)} examples have the same label; KTO needs at least one {missing} example."
        )


def _enqueue(run: TrainingRun) -> None:
    from trainer.tasks import train_run  # tasks import services, not the other way round at load time

    try:
        train_run.apply_async(args=[run.pk], task_id=run.task_id)
    except Exception as exc:  # broker down: the run must not wait in "queued" for a message that never came
        log.exception("could not enqueue training run %s", run.pk)
        _finish(run.pk, Status.FAILED, expected=(Status.QUEUED,), error=f"could not reach the task broker: {exc}")
        raise WorkerUnavailable("The task broker cannot be reached; the run was not queued.") from exc


def cancel_run(run: TrainingRun) -> TrainingRun:
    """A queued run is cancelled at once; a running one stops at its next step (the worker checks)."""
    if _finish(run.pk, Status.CANCELLED, expected=(Status.QUEUED,)):
        run.refresh_from_db()
        return run
    if TrainingRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(cancel_requested=True):
        run.refresh_from_db()
        return run
    run.refresh_from_db()
    raise Conflict(f"Run {run.pk} has already finished ({run.status}); there is nothing to cancel.")


def run_status(run: TrainingRun, *, history: bool = False) -> dict:
    """What a client shows: status, step/total, ETA, the latest metrics, the error if any."""
    latest = run.metrics[-1] if run.metrics else None
    checkpoint = checkpoint_of(run)
    status = {
        "id": run.pk,
        "project": run.project_id,
        "status": run.status,
        "phase": run.phase,
        "step": run.step,
        "total_steps": run.total_steps,
        "eta_seconds": eta_seconds(run),
        "latest_metrics": latest,
        "error": run.error,
        "cancel_requested": run.cancel_requested,
        "start_checkpoint": run.start_checkpoint_id,
        "checkpoint": checkpoint.pk if checkpoint is not None else None,
        "config": run.config,
        "examples": example_counts(run.examples),
        "created_by": run.created_by.get_username() if run.created_by_id else None,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "heartbeat_at": run.heartbeat_at,
    }
    if history:
        status["metrics"] = run.metrics
    return status


def checkpoint_of(run: TrainingRun) -> Checkpoint | None:
    """The checkpoint the run produced, if any. Lists select_related("checkpoint") so that this
    costs no query per run; otherwise it is one query, cached on the run."""
    try:
        return run.checkpoint
    except Checkpoint.DoesNotExist:
        return None


def example_counts(examples: list[dict]) -> dict:
    desirable = sum(1 for example in examples if example.get("desirable"))
    return {"total": len(examples), "desirable": desirable, "undesirable": len(examples) - desirable}


def eta_seconds(run: TrainingRun) -> float | None:
    """Seconds left, from the pace of the steps so far (loading and the reference pass excluded)."""
    if run.status != Status.RUNNING or len(run.metrics) < 2 or not run.total_steps:
        return None
    first, last = run.metrics[0], run.metrics[-1]
    steps = last.get("step", 0) - first.get("step", 0)
    if steps <= 0 or "elapsed" not in first or "elapsed" not in last:
        return None
    per_step = (last["elapsed"] - first["elapsed"]) / steps
    return round(max(run.total_steps - last["step"], 0) * per_step, 1)


def fail_stale_runs() -> int:
    """Fail running runs whose worker stopped beating (killed, machine lost). Returns how many.

    Called when runs are listed or read and when a worker starts, so a dead run is reported as
    soon as anyone looks, without a scheduler.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.PROSPECT_STALE_RUN_SECONDS)
    stale = TrainingRun.objects.filter(status=Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    message = f"worker lost: no heartbeat for more than {settings.PROSPECT_STALE_RUN_SECONDS} s"
    return _fail_runs(stale, message)


def fail_runs_of_worker(worker: str) -> int:
    """At worker start: whatever this worker was running before it restarted is dead."""
    if not worker:
        return 0
    stale = TrainingRun.objects.filter(status=Status.RUNNING, worker=worker)
    return _fail_runs(stale, f"worker lost: {worker} restarted while the run was in progress")


def _fail_runs(queryset, message: str) -> int:
    failed = 0
    for run in queryset.only("pk", "project_id"):
        if _finish(run.pk, Status.FAILED, expected=(Status.RUNNING,), error=message):
            remove_run_files(run.project_id, run.pk)
            failed += 1
    return failed


# --- worker side --------------------------------------------------------------------------------

def execute_run(run_id: int, *, worker: str = "") -> TrainingRun | None:
    """What the training task calls. Claims the run (a duplicate delivery gets None), trains,
    registers the checkpoint atomically, and auto-activates when the project asks for it.
    A failed or cancelled run leaves the active checkpoint alone and no directory behind."""
    if not claim_run(run_id, worker=worker):
        log.info("training run %s not claimed (already taken, cancelled or finished)", run_id)
        return None
    run = TrainingRun.objects.select_related("project", "start_checkpoint").get(pk=run_id)
    out = storage.absolute(storage.run_dir_name(run.project_id, run.pk))
    reporter = ProgressReporter(run.pk, min_interval=settings.PROSPECT_PROGRESS_SECONDS)
    try:
        with Heartbeat(run.pk, interval=settings.PROSPECT_HEARTBEAT_SECONDS):
            result = _train(run, out, reporter)
    except Exception as exc:
        from trainer.kto import TrainingCancelled

        reporter.flush()  # the steps it did take stay visible
        remove_run_files(run.project_id, run.pk)
        if isinstance(exc, TrainingCancelled):
            _finish(run.pk, Status.CANCELLED, expected=(Status.RUNNING,))
        else:
            log.exception("training run %s failed", run.pk)
            _finish(run.pk, Status.FAILED, expected=(Status.RUNNING,), error=f"{type(exc).__name__}: {exc}")
        run.refresh_from_db()
        return run
    checkpoint = _register(run, out, result, reporter.metrics)
    run.refresh_from_db()
    if checkpoint is not None and run.project.auto_activate:
        _auto_activate(run, checkpoint)
    return run


def claim_run(run_id: int, *, worker: str = "") -> bool:
    now = timezone.now()
    return bool(
        TrainingRun.objects.filter(pk=run_id, status=Status.QUEUED).update(
            status=Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker, phase="loading"
        )
    )


def _train(run: TrainingRun, out: Path, reporter: "ProgressReporter"):
    from trainer.kto import TrainConfig

    from .engine_runner import run_engine

    rows = training_rows(run.examples)
    base_model = run.config.get("base_model", run.project.base_model)
    model = storage.model_path(run.start_checkpoint, base_model)
    reference = None
    if run.config.get("reference") == "base" and run.start_checkpoint is not None:
        reference = storage.resolve_model(base_model)
    config = TrainConfig(model=model, out=str(out), reference=reference, device=settings.PROSPECT_DEVICE,
                         **run.config["train"])
    return run_engine(
        rows, config, progress=reporter, should_cancel=lambda: cancel_requested(run.pk),
        processes=settings.PROSPECT_TRAIN_PROCESSES,
    )


def cancel_requested(run_id: int) -> bool:
    return TrainingRun.objects.filter(pk=run_id, cancel_requested=True).exists()


class ProgressReporter:
    """The engine's progress callback: step, total, metrics and heartbeat onto the run row.

    Writes at most every `min_interval` seconds (and on the last step), because a tiny model
    steps faster than it is worth rewriting the metrics column."""

    def __init__(self, run_id: int, min_interval: float):
        self.run_id = run_id
        self.min_interval = min_interval
        self.started = time.monotonic()
        self.last_write = 0.0
        self.metrics: list[dict] = []
        self.step = 0
        self.total = 0

    def __call__(self, event: dict) -> None:
        now = time.monotonic()
        if "step" in event:
            self.step, self.total = int(event["step"]), int(event.get("total_steps") or self.total)
            entry = {"step": self.step, "elapsed": round(now - self.started, 3)}
            entry.update({key: value for key, value in (event.get("metrics") or {}).items() if _is_plain(value)})
            self.metrics.append(entry)
            final = self.total and self.step >= self.total
            if final or now - self.last_write >= self.min_interval:
                self._write(phase="saving" if final else "training")
        elif "phase" in event and now - self.last_write >= self.min_interval:
            self._write(phase=str(event["phase"])[:32])

    def flush(self) -> None:
        if self.metrics:
            self._write(phase="stopping")

    def _write(self, *, phase: str) -> None:
        self.last_write = time.monotonic()
        TrainingRun.objects.filter(pk=self.run_id, status=Status.RUNNING).update(
            step=self.step, total_steps=self.total, metrics=self.metrics, phase=phase, heartbeat_at=timezone.now()
        )


def _is_plain(value) -> bool:
    return isinstance(value, (int, float, str, bool)) or value is None


def _register(run: TrainingRun, out: Path, result, metrics: list[dict]) -> Checkpoint | None:
    """Succeed the run and register its checkpoint in one transaction, or discard the directory
    when the run was failed meanwhile (the stale sweep decided its worker was gone)."""
    with transaction.atomic():
        finished = TrainingRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(
            status=Status.SUCCEEDED, finished_at=timezone.now(), phase="", metrics=metrics,
            step=metrics[-1]["step"] if metrics else run.step,
            total_steps=max(run.total_steps, metrics[-1]["step"] if metrics else 0),
        )
        if not finished:
            checkpoint = None
        else:
            checkpoint = Checkpoint.objects.create(
                project=run.project, parent=run.start_checkpoint, run=run,
                path=storage.run_dir_name(run.project_id, run.pk), metrics=_summary(result),
            )
    if checkpoint is None:
        shutil.rmtree(out, ignore_errors=True)
    return checkpoint


def _summary(result) -> dict:
    summary = getattr(result, "summary", None) or {}
    return {key: value for key, value in summary.items() if _is_plain(value) or isinstance(value, (dict, list))}


def _auto_activate(run: TrainingRun, checkpoint: Checkpoint) -> None:
    from . import checkpoints, rounds

    checkpoints.activate(checkpoint, user=run.created_by)
    try:
        rounds.open_round(run.project, user=run.created_by)
    except (Conflict, InvalidRequest, WorkerUnavailable) as exc:
        log.warning("run %s: checkpoint activated but the next round was not opened: %s", run.pk, exc)


def _finish(run_id: int, status: str, *, expected: tuple, error: str = "") -> bool:
    return bool(
        TrainingRun.objects.filter(pk=run_id, status__in=expected).update(
            status=status, finished_at=timezone.now(), phase="", error=error[:10000]
        )
    )


def remove_run_files(project_id: int, run_id: int) -> None:
    """Remove a run's output and any half-written staging sibling the engine left when killed."""
    out = storage.absolute(storage.run_dir_name(project_id, run_id))
    if Checkpoint.objects.filter(run_id=run_id).exists():
        return  # a registered checkpoint is never deleted here
    shutil.rmtree(out, ignore_errors=True)
    if out.parent.is_dir():
        for leftover in out.parent.glob(f".{out.name}.*"):
            shutil.rmtree(leftover, ignore_errors=True)
