"""Prospect's KTO engine: plain rows and a config in, a Hugging Face checkpoint and metrics out.

Imports nothing from Django, so it runs (and is tested) on its own and under ``torchrun``.
"""
from .config import TrainConfig
from .engine import TrainingCancelled, TrainResult, train
from .generate import generate
from .loss import KTOLossOutput, kto_loss
from .tiny import build_tiny_model

__all__ = [
    "KTOLossOutput",
    "TrainConfig",
    "TrainResult",
    "TrainingCancelled",
    "build_tiny_model",
    "generate",
    "kto_loss",
    "train",
]
