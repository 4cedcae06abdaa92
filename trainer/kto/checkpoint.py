"""Atomic checkpoint directories: everything is written to a hidden sibling, then renamed.

A reader never sees a half-written ``out``: it either does not exist or is complete. A crashed
run leaves only a hidden ``.<name>.partial-<pid>`` sibling, removed by the next run for ``out``.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch


def check_out_free(out: Path) -> None:
    if out.exists():
        raise ValueError(f"output directory {out} already exists; refusing to overwrite a checkpoint")


def staging_dir(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.partial-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if not (pid.isdigit() and _process_alive(int(pid))):
            shutil.rmtree(stale, ignore_errors=True)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    return staging


def publish(staging: Path, out: Path) -> Path:
    """Rename the finished staging directory to ``out`` (atomic on one filesystem)."""
    for path in staging.rglob("*"):
        if path.is_file():
            _fsync(path)
    # os.rename would silently replace an empty directory that appeared during training.
    check_out_free(out)
    os.rename(staging, out)  # fails rather than merging if a non-empty ``out`` appeared meanwhile
    _fsync(out.parent)
    return out


def discard(staging: Path | None) -> None:
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)


def save_model(staging: Path, model, tokenizer, *, merge_lora: bool) -> None:
    """``save_pretrained`` (safetensors) of the model or LoRA adapter, the tokenizer and generation config."""
    from .modeling import quiet_transformers

    if merge_lora:
        model = model.merge_and_unload()
    with quiet_transformers():
        model.save_pretrained(str(staging), safe_serialization=True)
    tokenizer.save_pretrained(str(staging))
    generation_config = getattr(model, "generation_config", None)
    if generation_config is not None and not (staging / "generation_config.json").exists():
        generation_config.save_pretrained(str(staging))


def write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
