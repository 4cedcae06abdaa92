"""The Celery application.

Queues (routes in settings.CELERY_TASK_ROUTES): "training" (KTO runs), "generation" (round items
and playground completions), "default" (everything else). One worker may take all of them
(`celery -A feedback worker -Q default,generation,training`) or each its own, on any machine
that reaches the same database, broker and checkpoint storage (README "Workers").
"""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedback.settings")

app = Celery("prospect")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["feedback", "trainer"])
