"""Helpers shared by the orchestration tests (not fixtures)."""


def label_round(round_, user, rule=None) -> int:
    """Label every generation of the round; rule(text) -> bool, default: alternate up and down."""
    from feedback.models import Label

    labels = [
        Label(generation=generation, annotator=user,
              desirable=rule(generation.text) if rule else index % 2 == 0)
        for index, generation in enumerate(round_.generations.order_by("id"))
    ]
    Label.objects.bulk_create(labels)
    return len(labels)


def make_round(project, number=1, *, texts=("fine", "bad", "good", "poor")):
    """A round with one imported generation per text, on the project's first prompt (made if none)."""
    from feedback.models import Generation, Prompt, Round

    round_ = Round.objects.create(project=project, number=number)
    prompt = project.prompts.first() or Prompt.objects.create(project=project, text="Say hi")
    for text in texts:
        Generation.objects.create(prompt=prompt, round=round_, text=text)
    return round_
