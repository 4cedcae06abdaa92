"""Builders for labelled data: rounds, prompts, generations and votes in a few lines."""
import pytest


@pytest.fixture
def annotators(make_user, project):
    """Three annotators of the project: ann1, ann2, ann3."""
    return [make_user(f"ann{i}", project=project, role="annotator") for i in (1, 2, 3)]


@pytest.fixture
def add_item(project):
    """add_item(votes, prompt=..., completion=..., round_number=1, reasons=None, at=None) -> Generation.

    votes maps user -> desirable; prompt is a string or a list of chat messages; `at` sets every
    label's created_at (a datetime) so date filters can be tested."""
    from feedback.models import Generation, Label, Prompt, prompt_hash

    counter = {"n": 0}

    def add(votes, *, prompt=None, completion=None, round_number=1, reasons=None, at=None, checkpoint=None):
        counter["n"] += 1
        round_, _ = project.rounds.get_or_create(number=round_number)
        content = prompt if prompt is not None else f"Prompt {counter['n']}"
        prompt_row = Prompt.objects.filter(project=project, content_hash=prompt_hash(content)).first()
        if prompt_row is None and isinstance(content, list):
            prompt_row = Prompt.objects.create(project=project, messages=content)
        elif prompt_row is None:
            prompt_row = Prompt.objects.create(project=project, text=content)
        text = completion if completion is not None else f"Completion {counter['n']}"
        generation = Generation.objects.create(prompt=prompt_row, round=round_, text=text, checkpoint=checkpoint)
        for user, desirable in votes.items():
            label = Label.objects.create(
                generation=generation, annotator=user, desirable=desirable, reason=(reasons or {}).get(user, "")
            )
            if at is not None:
                Label.objects.filter(pk=label.pk).update(created_at=at)
        return generation

    return add

