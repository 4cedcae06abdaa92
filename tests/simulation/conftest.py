"""The simulation runs the loop on real Celery workers (fixtures from tests/celery_worker.py)."""
from celery_worker import real_worker, start_worker  # noqa: F401  (fixtures)
