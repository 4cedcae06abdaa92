"""A background thread that keeps a running run's heartbeat fresh while its process is alive.

Steps also beat, but loading a large model, the reference pass or saving can take longer than
the stale-run limit; this thread covers them. It dies with the process, which is the point:
a SIGKILLed worker stops beating and the stale-run sweep fails the run.
"""
import logging
import threading

from django.db import connection
from django.utils import timezone

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, run_id: int, *, interval: float):
        self.run_id = run_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-run-{run_id}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(timeout=max(self.interval, 1) + 5)
        return False

    def _beat(self) -> None:
        from trainer.models import TrainingRun

        try:
            while not self._stop.wait(self.interval):
                try:
                    TrainingRun.objects.filter(pk=self.run_id, status=TrainingRun.Status.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except Exception:  # a database blip must not kill the run; the next beat retries
                    log.warning("heartbeat of run %s failed", self.run_id, exc_info=True)
        finally:
            connection.close()  # this thread's own connection
