"""Batched sampling from a checkpoint directory for the annotation rounds and the playground."""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from .modeling import load_causal_lm, load_tokenizer, resolve_device

_cache_lock = threading.Lock()
_cache: dict = {}  # one loaded model per process: {"key": (path, device, mtime), "model", "tokenizer"}


def generate(model_path: str | Path, prompts: Sequence[str | list[dict]], *, n: int = 1, max_new_tokens: int = 48,
             temperature: float = 1.0, top_p: float = 1.0, seed: int = 0, batch_size: int = 16,
             progress: Callable[[int, int], None] | None = None, device: str = "auto",
             cache: bool = True) -> list[list[str]]:
    """``n`` completions for each prompt, in prompt order.

    Prompts are plain strings or chat-message lists (rendered with the tokenizer's chat template).
    Completions are returned exactly as decoded, special tokens removed; a leading space is kept so
    that prompt + completion re-tokenizes to what was sampled. ``temperature=0`` means greedy.
    The last loaded model stays cached per process (keyed by path), as a worker keeps serving it.
    """
    if n < 1 or max_new_tokens < 1 or batch_size < 1:
        raise ValueError("n, max_new_tokens and batch_size must be at least 1")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError("temperature must be >= 0 and top_p in (0, 1]")
    model, tokenizer = _load(model_path, resolve_device(device), cache)
    texts = [_render(tokenizer, prompt) for prompt in prompts]
    encoded = [tokenizer(text, add_special_tokens=special)["input_ids"] for text, special in texts]
    jobs = sorted(((p, k) for p in range(len(prompts)) for k in range(n)), key=lambda job: len(encoded[job[0]]))
    results: list[list[str | None]] = [[None] * n for _ in prompts]
    total, done = len(jobs), 0
    generator_device = next(model.parameters()).device
    torch.manual_seed(seed)
    if generator_device.type == "cuda":
        torch.cuda.manual_seed_all(seed)
    sampling = ({"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0} if temperature > 0
                else {"do_sample": False, "top_k": None})
    for start in range(0, total, batch_size):
        chunk = jobs[start:start + batch_size]
        batch = tokenizer.pad({"input_ids": [encoded[p] for p, _ in chunk]}, padding=True, return_tensors="pt")
        batch = {key: value.to(generator_device) for key, value in batch.items()}
        with torch.no_grad():
            output = model.generate(**batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                    eos_token_id=tokenizer.eos_token_id, **sampling)
        new_tokens = output[:, batch["input_ids"].shape[1]:]
        for (p, k), tokens in zip(chunk, new_tokens):
            results[p][k] = tokenizer.decode(tokens, skip_special_tokens=True)
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    return results


def _render(tokenizer, prompt) -> tuple[str, bool]:
    """Text to tokenize and whether the tokenizer should add its special tokens (not after a template)."""
    if isinstance(prompt, str):
        return prompt, True
    if isinstance(prompt, list):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True), False
    raise ValueError(f"a prompt must be a string or a list of chat messages, got {type(prompt).__name__}")


def _load(model: str | Path, device: torch.device, use_cache: bool):
    path = Path(model).expanduser()
    if path.is_dir():
        path = path.resolve()
        key = (str(path), str(device), _stamp(path))  # the stamp reloads a rewritten checkpoint
    elif path.is_absolute() or str(model).startswith((".", "~")):
        raise ValueError(f"model directory {path} does not exist")
    else:
        path = str(model)  # a hub name: from_pretrained finds it in the local cache or the hub
        key = (path, str(device), 0.0)
    with _cache_lock:
        if use_cache and _cache.get("key") == key:
            return _cache["model"], _cache["tokenizer"]
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        model = load_causal_lm(path, device, dtype=dtype).eval()
        tokenizer = load_tokenizer(path, padding_side="left")
        if use_cache:
            _cache.clear()
            _cache.update(key=key, model=model, tokenizer=tokenizer)
        return model, tokenizer


def _stamp(path: Path) -> float:
    names = ("config.json", "adapter_config.json", "model.safetensors", "adapter_model.safetensors")
    files = [path / name for name in names if (path / name).exists()]
    return max((f.stat().st_mtime for f in files), default=0.0)
