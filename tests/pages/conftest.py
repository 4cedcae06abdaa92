"""Fixtures for the admin-page tests: logged-in clients, labelled items, checkpoints on disk."""
import pytest

from feedback.models import Generation, Label, Prompt, Round


@pytest.fixture
def checkpoint_storage(settings, tmp_path):
    settings.CHECKPOINT_DIR = tmp_path / "checkpoints"
    return settings.CHECKPOINT_DIR


@pytest.fixture
def make_checkpoint(project, checkpoint_storage):
    """A registered checkpoint whose directory exists (activation checks the files)."""
    from trainer.models import Checkpoint

    def make(parent=None, *, with_files=True):
        checkpoint = Checkpoint.objects.create(project=project, parent=parent, path="pending")
        checkpoint.path = f"{project.pk}/checkpoint-{checkpoint.pk}"
        checkpoint.save(update_fields=["path"])
        if with_files:
            (checkpoint_storage / checkpoint.path).mkdir(parents=True)
            (checkpoint_storage / checkpoint.path / "config.json").write_text("{}")
        return checkpoint

    return make


@pytest.fixture
def labelled_round(project, annotator):
    """Round 1 with 12 generations on 3 prompts, labelled by the annotator: 5 up, 7 down."""
    round_ = Round.objects.create(project=project, number=1)
    prompts = [Prompt.objects.create(project=project, text=f"Prompt {n}") for n in range(3)]
    for index in range(12):
        generation = Generation.objects.create(prompt=prompts[index % 3], round=round_, text=f"Completion {index}")
        Label.objects.create(generation=generation, annotator=annotator, desirable=index < 5)
    return round_
