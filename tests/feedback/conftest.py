"""Fixtures for the feedback service and API tests: items to label and extra annotators."""
import pytest

from feedback.models import Generation, Prompt, Round


@pytest.fixture
def make_items(project):
    """make_items(n) -> n generations, each with its own prompt, in round `number` of the project."""

    def make(count, *, number=1, status=Round.Status.OPEN, target=None, prefix="item"):
        target = target or project
        round_, _ = Round.objects.get_or_create(project=target, number=number, defaults={"status": status})
        generations = []
        for index in range(count):
            prompt, _ = Prompt.objects.get_or_create(
                project=target, text=f"{prefix} prompt {number}.{index}", defaults={"messages": None}
            )
            generations.append(Generation.objects.create(prompt=prompt, round=round_, text=f"{prefix} answer {number}.{index}"))
        return generations

    return make


@pytest.fixture
def annotators(make_user, project):
    """annotators(n) -> n annotator members of the project."""

    def make(count, prefix="ann"):
        return [make_user(f"{prefix}{index}", project=project, role="annotator") for index in range(count)]

    return make
