"""The playground shows a completion sampled by the generation task from the active model."""
import pytest
from django.urls import reverse


@pytest.fixture
def eager_tasks():
    """Run Celery tasks in this process: the real task code, without a worker."""
    from feedback.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


@pytest.mark.slow
def test_a_prompt_gets_a_completion_from_the_tiny_model(client_as, admin_user, project, eager_tasks):
    project.max_new_tokens = 12
    project.save()
    response = client_as(admin_user).post(
        reverse("project-playground", args=[project.pk]),
        {"prompt": "Tell me about the lake.", "chat": "1", "seed": "3", "temperature": "0.7"},
    )
    html = response.content.decode()
    assert response.status_code == 200, html
    assert "<h2>Completion</h2>" in html
    completion = html.split('<pre class="text completion">', 1)[1].split("</pre>", 1)[0]
    assert completion.strip()
    assert "Tell me about the lake." in html  # the prompt stays in the box for the next try


def test_options_out_of_range_are_named(client_as, admin_user, project):
    response = client_as(admin_user).post(
        reverse("project-playground", args=[project.pk]), {"prompt": "Hi", "max_new_tokens": "99999"}
    )
    assert response.status_code == 400
    assert "max_new_tokens: must be a whole number from 1 to 1024" in response.content.decode()


def test_an_empty_prompt_is_refused(client_as, admin_user, project):
    response = client_as(admin_user).post(reverse("project-playground", args=[project.pk]), {"prompt": "  "})
    assert response.status_code == 400
    assert "prompt: must not be empty" in response.content.decode()
