"""Fixtures for the orchestration tests: the tiny model, a project on it, labelled rounds."""
import pytest
from celery_worker import real_worker, start_worker  # noqa: F401  (fixtures of the worker tests)


@pytest.fixture(scope="session")
def tiny_model(shared_tiny_model):
    return str(shared_tiny_model)


@pytest.fixture
def tiny_project(project, tiny_model):
    """The shared `project`, on the tiny model, with 6 prompts and small, fast settings."""
    from feedback.models import Prompt

    project.base_model = tiny_model
    project.samples_per_prompt = 2
    project.max_new_tokens = 8
    project.batch_size = 4
    project.learning_rate = 1e-4
    project.save()
    for text in ["Tell me about the lake.", "Write a short story.", "Describe a sunny day.",
                 "What did you see at the market?", "Tell me something nice.", "What happened yesterday?"]:
        Prompt.objects.create(project=project, text=text)
    return project


@pytest.fixture
def labeller(make_user, project):
    return make_user("labeller", project=project, role="annotator")
