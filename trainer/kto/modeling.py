"""Loading models and tokenizers (full checkpoints or LoRA adapter directories) onto a device."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch
from torch import nn


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{local_rank}"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but CUDA is not available on this machine")
    return device


def is_adapter_dir(path: str | Path) -> bool:
    return (Path(path) / "adapter_config.json").is_file()


def load_tokenizer(path: str | Path, *, padding_side: str = "right"):
    from transformers import AutoTokenizer

    has_own_tokenizer = (Path(path) / "tokenizer_config.json").exists()
    source = _adapter_base(path) if is_adapter_dir(path) and not has_own_tokenizer else path
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.pad_token is None:
        raise ValueError(f"the tokenizer of {path} has neither a pad nor an EOS token")
    tokenizer.padding_side = padding_side
    return tokenizer


def load_causal_lm(path: str | Path, device: torch.device, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A plain transformers model; an adapter directory is loaded onto its base and merged."""
    from transformers import AutoModelForCausalLM

    with quiet_transformers():
        if is_adapter_dir(path):
            from peft import PeftModel

            base = AutoModelForCausalLM.from_pretrained(str(_adapter_base(path)), dtype=dtype)
            model = PeftModel.from_pretrained(base, str(path)).merge_and_unload()
        else:
            model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
    return model.to(device)


@contextlib.contextmanager
def quiet_transformers():
    """No per-file progress bars from transformers while loading or saving (they flood worker logs)."""
    from transformers.utils import logging

    was_enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            logging.enable_progress_bar()


def _adapter_base(path: str | Path) -> str:
    config = json.loads((Path(path) / "adapter_config.json").read_text())
    base = config.get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{path}/adapter_config.json does not name its base model")
    return base


def disable_dropout(model: nn.Module) -> None:
    """KTO trains with dropout off (as TRL does); the model stays in train mode for checkpointing."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "attention_dropout", None), float):
            module.attention_dropout = 0.0
