"""The rows a training run learns from: labels aggregated per generation by majority."""
from itertools import groupby

from feedback.models import Generation, Label


def aggregate_examples(project, round_numbers: list[int] | None = None) -> list[dict]:
    """One example per labelled generation: {"generation", "desirable", "labels"}.

    The majority of the generation's labels decides; a tie is left out, because the annotators
    did not agree on what the completion is worth. The label ids are kept so that the run can be
    reproduced and audited later.
    """
    labels = Label.objects.filter(generation__round__project=project)
    if round_numbers is not None:
        labels = labels.filter(generation__round__number__in=round_numbers)
    rows = labels.order_by("generation_id", "id").values_list("generation_id", "id", "desirable")
    examples = []
    for generation_id, group in groupby(rows.iterator(), key=lambda row: row[0]):
        group = list(group)
        up = sum(1 for _, _, desirable in group if desirable)
        down = len(group) - up
        if up == down:
            continue
        examples.append({
            "generation": generation_id,
            "desirable": up > down,
            "labels": [label_id for _, label_id, _ in group],
        })
    return examples


def training_rows(examples: list[dict]) -> list[dict]:
    """Snapshot examples -> the engine's rows {"prompt", "completion", "desirable"}, in snapshot order.

    A generation deleted since the snapshot (its prompt was removed) is skipped.
    """
    ids = [example["generation"] for example in examples]
    generations = Generation.objects.select_related("prompt").in_bulk(ids)
    rows = []
    for example in examples:
        generation = generations.get(example["generation"])
        if generation is None:
            continue
        rows.append({
            "prompt": generation.prompt.content,
            "completion": generation.text,
            "desirable": bool(example["desirable"]),
        })
    return rows
