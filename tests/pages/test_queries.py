"""Lists of runs cost the same number of queries however many runs there are (no query per row)."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from trainer.models import Checkpoint, TrainingRun

pytestmark = pytest.mark.django_db


def add_trained_runs(project, count: int) -> None:
    for _ in range(count):
        run = TrainingRun.objects.create(project=project, status="succeeded",
                                         examples=[{"generation": 1, "desirable": True, "labels": [1]}])
        Checkpoint.objects.create(project=project, run=run, path=f"{project.pk}/run-{run.pk}",
                                  metrics={"examples": 1, "desirable": 1, "undesirable": 0})


def queries_for(fetch) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = fetch()
    assert response.status_code == 200
    return len(captured)


def test_project_page_and_run_list_do_not_query_per_run(project, admin_user, client_as, api_client_for):
    page, api = client_as(admin_user), api_client_for(admin_user)
    page_url = reverse("project-page", args=[project.pk])
    api_url = f"/api/projects/{project.pk}/training-runs/"
    add_trained_runs(project, 1)
    one = queries_for(lambda: page.get(page_url)), queries_for(lambda: api.get(api_url))
    add_trained_runs(project, 4)
    five = queries_for(lambda: page.get(page_url)), queries_for(lambda: api.get(api_url))
    assert five == one
    assert api.get(api_url).json()["results"][0]["checkpoint"] == Checkpoint.objects.order_by("-id")[0].pk
