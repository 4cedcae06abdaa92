"""A real Celery worker for tests: a subprocess on the configured broker and the TEST database.

Usage (pytest_plugins only works in the root conftest, so the folder's conftest.py imports the
fixtures, and a test module imports only the helpers it calls):

    # conftest.py
    from celery_worker import real_worker, start_worker  # noqa: F401

    # test_something.py
    from celery_worker import wait_until

    @pytest.mark.worker
    @pytest.mark.django_db(transaction=True)
    def test_something(real_worker, project):
        ...  # call services; the worker runs their tasks
        wait_until(lambda: refreshed(run).status == "succeeded", timeout=60, worker=real_worker)

The broker is whatever settings say: Redis when CELERY_BROKER_URL is set (CI), kombu's filesystem
transport otherwise. Tests that use a worker need @pytest.mark.django_db(transaction=True): the
worker is another process and only sees committed rows. The queues are purged before a worker
starts, so messages left by an earlier test never reach it.
"""
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import suppress
from pathlib import Path
from urllib.parse import quote

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
ALL_QUEUES = ("default", "generation", "training")


def database_url_for_tests() -> str:
    """DATABASE_URL of the database this test session uses (test_<name> on PostgreSQL)."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    if db["ENGINE"].endswith("postgresql"):
        user = quote(db.get("USER") or "", safe="")
        password = quote(db.get("PASSWORD") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = quote(db.get("HOST") or "", safe="")
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgres://{auth}{host}{port}/{quote(db['NAME'], safe='')}"
    raise RuntimeError(f"no worker support for database engine {db['ENGINE']}")


def purge_queues(queues=ALL_QUEUES) -> None:
    """Drop every message waiting in the queues (left over by an earlier test or a killed worker)."""
    from feedback.celery import app

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in queues:
            with suppress(Exception):  # a queue that was never declared has nothing to purge
                channel.queue_purge(queue)


class WorkerProcess:
    """One `celery worker` subprocess; its log is kept in a file for failure messages."""

    def __init__(self, *, queues, pool, concurrency, env, log_path: Path):
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"
        self.log_path = log_path
        self.command = [
            sys.executable, "-m", "celery", "-A", "feedback", "worker",
            "-Q", ",".join(queues), "--pool", pool, "--concurrency", str(concurrency),
            "--loglevel", "INFO", "-n", self.name,
            # No broadcast chatter: faster start, and the filesystem transport has no fanout.
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]
        self._log = open(log_path, "wb")
        # Its own session, so stop() and kill() reach the pool children too.
        self.process = subprocess.Popen(
            self.command, cwd=REPO_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            if " ready." in self.log():
                return
            time.sleep(0.2)
        raise TimeoutError(f"celery worker not ready after {timeout}s:\n{self.log()[-4000:]}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool): a machine or OOM kill mid-task."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, grace: float = 10) -> None:
        """Warm shutdown, then SIGKILL whatever is left after `grace` seconds."""
        if self.alive():
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # pool children of a killed parent
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)
        self._log.close()


def worker_environment(**extra) -> dict:
    """The test process's environment, pointed at the test database and the same storage."""
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url_for_tests(),
        DJANGO_SETTINGS_MODULE="feedback.settings",
        PROSPECT_DATA_DIR=str(settings.DATA_DIR),
        PROSPECT_CHECKPOINT_DIR=str(settings.CHECKPOINT_DIR),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        CELERY_RESULT_BACKEND=settings.CELERY_RESULT_BACKEND,
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
        PYTHONUNBUFFERED="1",
    )
    env.update({key: str(value) for key, value in extra.items()})
    return env


@pytest.fixture
def start_worker(transactional_db, settings, tmp_path):
    """Factory: start_worker(queues=..., pool="solo", concurrency=1, **env) -> a ready WorkerProcess.

    Extra keyword arguments become environment variables of the worker (e.g.
    PROSPECT_STALE_RUN_SECONDS=5). Checkpoints go to a fresh tmp_path/checkpoints, for the test
    process (settings.CHECKPOINT_DIR) and the worker alike: database ids restart with every test
    session, so a shared folder would already hold "run-1". Every worker started here is stopped
    when the test ends, before the test database is flushed.
    """
    settings.CHECKPOINT_DIR = tmp_path / "checkpoints"
    workers: list[WorkerProcess] = []
    purge_queues()

    def start(queues=ALL_QUEUES, pool="solo", concurrency=1, ready_timeout=90, **env):
        worker = WorkerProcess(
            queues=queues, pool=pool, concurrency=concurrency, env=worker_environment(**env),
            log_path=tmp_path / f"worker-{len(workers)}.log",
        )
        workers.append(worker)
        worker.wait_ready(ready_timeout)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    purge_queues()


@pytest.fixture
def real_worker(start_worker):
    """One worker on all three queues, solo pool (the task runs in the worker's main process)."""
    return start_worker()


def wait_until(predicate, *, timeout: float = 60, interval: float = 0.25, worker: WorkerProcess | None = None,
               message: str = "condition"):
    """Poll predicate() until it returns something truthy; fail with the worker's log otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if worker is not None and not worker.alive():
            pytest.fail(f"worker died while waiting for {message}:\n{worker.log()[-4000:]}")
        if time.monotonic() > deadline:
            log = f"\nworker log:\n{worker.log()[-4000:]}" if worker is not None else ""
            pytest.fail(f"timed out after {timeout}s waiting for {message}{log}")
        time.sleep(interval)
