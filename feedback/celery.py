"""The Celery application. Workers: `celery -A feedback worker -Q default,generation,training`."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedback.settings")

app = Celery("prospect")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["feedback", "trainer"])
