"""Fixtures for the annotator-page tests: items in a project, and a logged-in test client."""
import pytest

from feedback.models import Generation, Label, Prompt, Round


@pytest.fixture
def round_one(project):
    return Round.objects.create(project=project, number=1)


@pytest.fixture
def make_item(round_one):
    def make(prompt="Say hi.", completion="Hi!", *, messages=None):
        prompt_row = Prompt.objects.create(
            project=round_one.project, text="" if messages else prompt, messages=messages
        )
        return Generation.objects.create(prompt=prompt_row, round=round_one, text=completion)

    return make


@pytest.fixture
def make_label():
    def make(generation, user, desirable=True, reason=""):
        return Label.objects.create(generation=generation, annotator=user, desirable=desirable, reason=reason)

    return make
