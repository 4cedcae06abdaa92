"""Where models and checkpoints live, as seen from the machine that runs this code.

Checkpoint paths are stored relative to settings.CHECKPOINT_DIR, so a GPU box may mount the
shared checkpoint storage at a different place than the web server does.
"""
from pathlib import Path

from django.conf import settings

# A project whose base_model is "tiny" uses the deterministic demo model, built on first use.
TINY_MODEL_ALIAS = "tiny"


def tiny_model_dir() -> Path:
    """Where the demo model is built: the one place the app, the quickstart and the tests use."""
    return Path(settings.DATA_DIR) / "models" / "tiny"


def resolve_model(name_or_path: str) -> str:
    """A model name as stored (hub name, directory, "tiny") -> what the engine can load here."""
    if name_or_path == TINY_MODEL_ALIAS:
        from trainer.kto import build_tiny_model  # the engine (torch) is imported by workers only

        return str(build_tiny_model(tiny_model_dir()))
    return name_or_path


def run_dir_name(project_id: int, run_id: int) -> str:
    """Checkpoint directory of a run, relative to the checkpoint storage."""
    return f"{project_id}/run-{run_id}"


def absolute(path: str) -> Path:
    """A stored checkpoint path (relative to storage, or absolute) -> a path on this machine."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else Path(settings.CHECKPOINT_DIR) / candidate


def model_path(checkpoint, base_model: str) -> str:
    """What to load on this machine: the checkpoint's directory, else the (resolved) base model."""
    if checkpoint is not None:
        return str(absolute(checkpoint.path))
    return resolve_model(base_model)
