"""One dataclass holds every knob of a training run (nanoGPT style); ``validate`` refuses bad ones early."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields


@dataclass
class TrainConfig:
    model: str                      # HF directory or hub name of the starting policy
    out: str                        # final checkpoint directory (written to a temp dir, then renamed)
    reference: str | None = None    # reference model path; None = the starting model itself
    beta: float = 0.1
    desirable_weight: float = 1.0
    undesirable_weight: float = 1.0
    auto_weights: bool = False      # pick weights so w_D*n_D / (w_U*n_U) lands in [1, 4/3]
    learning_rate: float = 5e-6
    epochs: int = 1
    max_steps: int | None = None    # optimizer steps; overrides epochs when set
    batch_size: int = 8             # examples per process per micro-batch
    grad_accum: int = 1
    warmup_ratio: float = 0.1
    scheduler: str = "linear"       # or "cosine"
    max_grad_norm: float = 1.0      # 0 turns clipping off
    max_length: int = 512           # prompt + completion tokens
    max_prompt_length: int = 256    # the prompt is cut from the left beyond this
    seed: int = 0
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    merge_lora: bool = False
    gradient_checkpointing: bool = False
    device: str = "auto"            # "cpu", "cuda", "cuda:N" or "auto"
    # Additions beyond the shared API (all optional):
    weight_decay: float = 0.0
    lora_dropout: float = 0.0
    shuffle: bool = True            # shuffle batch order each epoch (seeded)
    group_by_length: bool = True    # batch similar lengths together so padding stays small
    reference_batch_size: int | None = None  # batch size of the one-off reference pass (default 2 x batch_size)
    live_metrics: str | None = None  # also append each step's event to this JSONL file as it happens
    cancel_file: str | None = None   # the run cancels itself when this file appears (for supervisors)

    def validate(self) -> None:
        """Raise ValueError naming the first bad field; called before any work is done."""
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(message)

        need(bool(self.model), "model is required (a model directory or hub name)")
        need(bool(self.out), "out is required (the checkpoint directory to write)")
        need(isinstance(self.batch_size, int) and self.batch_size >= 2,
             f"batch_size must be at least 2 (KTO's KL estimate pairs examples within a batch), got {self.batch_size}")
        need(_is_positive(self.beta), f"beta must be a positive number, got {self.beta}")
        need(_is_positive(self.desirable_weight), f"desirable_weight must be positive, got {self.desirable_weight}")
        need(_is_positive(self.undesirable_weight), f"undesirable_weight must be positive, got {self.undesirable_weight}")
        need(_is_positive(self.learning_rate), f"learning_rate must be positive, got {self.learning_rate}")
        need(isinstance(self.epochs, int) and self.epochs >= 1, f"epochs must be an integer >= 1, got {self.epochs}")
        need(self.max_steps is None or (isinstance(self.max_steps, int) and self.max_steps >= 1),
             f"max_steps must be an integer >= 1 or None, got {self.max_steps}")
        need(isinstance(self.grad_accum, int) and self.grad_accum >= 1, f"grad_accum must be >= 1, got {self.grad_accum}")
        need(_is_number(self.warmup_ratio) and 0 <= self.warmup_ratio < 1,
             f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        need(self.scheduler in ("linear", "cosine"), f"scheduler must be 'linear' or 'cosine', got {self.scheduler!r}")
        need(_is_number(self.max_grad_norm) and self.max_grad_norm >= 0,
             f"max_grad_norm must be >= 0, got {self.max_grad_norm}")
        need(isinstance(self.max_length, int) and self.max_length >= 2, f"max_length must be >= 2, got {self.max_length}")
        need(isinstance(self.max_prompt_length, int) and 1 <= self.max_prompt_length < self.max_length,
             f"max_prompt_length must be >= 1 and below max_length ({self.max_length}), got {self.max_prompt_length}")
        need(isinstance(self.seed, int), f"seed must be an integer, got {self.seed!r}")
        need(isinstance(self.lora_r, int) and self.lora_r >= 1, f"lora_r must be >= 1, got {self.lora_r}")
        need(_is_positive(self.lora_alpha), f"lora_alpha must be positive, got {self.lora_alpha}")
        need(_is_number(self.lora_dropout) and 0 <= self.lora_dropout < 1, "lora_dropout must be in [0, 1)")
        need(not self.merge_lora or self.lora, "merge_lora only makes sense with lora=True")
        need(_is_number(self.weight_decay) and self.weight_decay >= 0, "weight_decay must be >= 0")
        need(self.device == "auto" or self.device == "cpu" or str(self.device).startswith("cuda"),
             f"device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")
        need(self.reference_batch_size is None or self.reference_batch_size >= 1, "reference_batch_size must be >= 1")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_positive(value) -> bool:
    return _is_number(value) and value > 0


def balanced_weights(n_desirable: int, n_undesirable: int, desirable_weight: float,
                     undesirable_weight: float) -> tuple[float, float]:
    """Weights whose ratio w_D*n_D / (w_U*n_U) lies in the KTO paper's [1, 4/3] (eq. 8).

    Only the under-represented side is scaled up, and only as far as the nearest end of the range,
    so data that is already balanced enough keeps the weights it was given.
    """
    if n_desirable == 0 or n_undesirable == 0:
        return desirable_weight, undesirable_weight
    ratio = desirable_weight * n_desirable / (undesirable_weight * n_undesirable)
    if ratio < 1:
        return desirable_weight / ratio, undesirable_weight
    if ratio > 4 / 3:
        return desirable_weight, undesirable_weight * ratio / (4 / 3)
    return desirable_weight, undesirable_weight
