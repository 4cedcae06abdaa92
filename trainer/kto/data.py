"""Rows to token ids, mismatched KL pairs, length-grouped batches and padded tensors.

Tokenisation follows TRL 1.16's KTOTrainer so both compute the same sequences:
plain text: tokenize(prompt) and tokenize(prompt + completion + EOS), the completion starting
where the two diverge; chat messages: the chat template with the generation prompt for the
prompt alone, without it for prompt + completion. Truncation is ours and explicit: the prompt
keeps its last ``max_prompt_length`` tokens, then the completion is cut to fit ``max_length``.
"""
from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

Messages = list[dict]


@dataclass(frozen=True)
class Row:
    prompt: str | Messages
    completion: str | Messages
    desirable: bool


@dataclass(frozen=True)
class Example:
    prompt_ids: list[int]
    completion_ids: list[int]
    desirable: bool

    def __len__(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)


def parse_rows(rows: Iterable[Mapping]) -> list[Row]:
    """Validate rows; the ``label`` column name (TRL's) is accepted for ``desirable``."""
    parsed = []
    for index, row in enumerate(rows):
        parsed.append(parse_row(row, where=f"row {index}"))
    return parsed


def parse_row(row: Mapping, *, where: str) -> Row:
    if not isinstance(row, Mapping):
        raise ValueError(f"{where}: expected an object with prompt, completion and desirable, got {type(row).__name__}")
    missing = [key for key in ("prompt", "completion") if key not in row]
    if "desirable" not in row and "label" not in row:
        missing.append("desirable (or label)")
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    label = row["desirable"] if "desirable" in row else row["label"]
    if not isinstance(label, bool):
        raise ValueError(f"{where}: desirable/label must be true or false, got {label!r}")
    prompt, completion = row["prompt"], row["completion"]
    _check_text_or_messages(prompt, f"{where}: prompt")
    _check_text_or_messages(completion, f"{where}: completion")
    if isinstance(completion, list) and not isinstance(prompt, list):
        raise ValueError(f"{where}: a chat-message completion needs a chat-message prompt")
    return Row(prompt=prompt, completion=completion, desirable=label)


def _check_text_or_messages(value, where: str) -> None:
    if isinstance(value, str):
        return
    if isinstance(value, list) and value and all(
        isinstance(m, Mapping) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in value
    ):
        return
    raise ValueError(f"{where} must be a string or a non-empty list of {{role, content}} messages")


def is_conversational(row: Row) -> bool:
    return isinstance(row.prompt, list)


def tokenize_rows(rows: list[Row], tokenizer, *, max_length: int, max_prompt_length: int) -> list[Example]:
    """Token ids for each row, in order. Texts are rendered first, then tokenized in one batch call."""
    prompt_texts, full_texts, special = [], [], []
    eos = tokenizer.eos_token
    for row in rows:
        if is_conversational(row):
            completion = row.completion
            if isinstance(completion, str):
                completion = [{"role": "assistant", "content": completion}]
            prompt_texts.append(tokenizer.apply_chat_template(row.prompt, tokenize=False, add_generation_prompt=True))
            full_texts.append(tokenizer.apply_chat_template(row.prompt + completion, tokenize=False))
            special.append(False)  # the template already spells out any BOS
        else:
            completion = row.completion if eos is None or row.completion.endswith(eos) else row.completion + eos
            prompt_texts.append(row.prompt)
            full_texts.append(row.prompt + completion)
            special.append(True)
    prompt_ids = _batch_tokenize(tokenizer, prompt_texts, special)
    full_ids = _batch_tokenize(tokenizer, full_texts, special)

    examples = []
    for row, prompt, full in zip(rows, prompt_ids, full_ids):
        split = common_prefix_length(prompt, full)
        prompt, completion = full[:split], full[split:]
        prompt = prompt[-max_prompt_length:]
        completion = completion[: max_length - len(prompt)]
        examples.append(Example(prompt, completion, row.desirable))
    return examples


def _batch_tokenize(tokenizer, texts: list[str], add_special: list[bool]) -> list[list[int]]:
    ids: list[list[int] | None] = [None] * len(texts)
    for flag in (True, False):
        positions = [i for i, s in enumerate(add_special) if s is flag]
        if positions:
            encoded = tokenizer([texts[i] for i in positions], add_special_tokens=flag)["input_ids"]
            for i, tokens in zip(positions, encoded):
                ids[i] = list(tokens)
    return ids


def common_prefix_length(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def kl_pairs(examples: list[Example], batch: list[int], max_length: int) -> list[tuple[list[int], list[int]]]:
    """Mismatched (prompt, completion) pairs for one batch: example i gets example i-1's completion (wrapping)."""
    pairs = []
    for position, index in enumerate(batch):
        prompt = examples[index].prompt_ids
        completion = examples[batch[position - 1]].completion_ids
        pairs.append((prompt, completion[: max_length - len(prompt)]))
    return pairs


def plan_batches(lengths: list[int], batch_size: int, *, seed: int, shuffle: bool, group_by_length: bool,
                 min_size: int = 2) -> list[list[int]]:
    """Split example indices into batches of ``batch_size`` (the global batch under DDP).

    With grouping, indices are shuffled, cut into mega-batches of 32 batches, each sorted by length,
    so a batch holds similar lengths. A tail shorter than ``min_size`` (2 per process: the KL
    pairing needs two examples on every process) joins the previous batch. The plan is fixed for
    the whole run: KL pairs, and so the reference log-probs computed once, stay valid every epoch.
    """
    order = list(range(len(lengths)))
    rng = random.Random(seed)
    if shuffle:
        rng.shuffle(order)
    if group_by_length:
        mega = batch_size * 32
        order = [i for start in range(0, len(order), mega)
                 for i in sorted(order[start:start + mega], key=lambda i: -lengths[i])]
    batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    if len(batches) > 1 and len(batches[-1]) < min_size:
        batches[-2].extend(batches.pop())
    return batches


def epoch_order(num_batches: int, *, seed: int, epoch: int, shuffle: bool) -> list[int]:
    order = list(range(num_batches))
    if shuffle:
        random.Random(f"{seed}-epoch-{epoch}").shuffle(order)
    return order


def shard(batch: list, rank: int, world_size: int) -> list:
    """This process's contiguous slice of a global batch (sizes differ by at most one)."""
    base, extra = divmod(len(batch), world_size)
    start = rank * base + min(rank, extra)
    return batch[start:start + base + (1 if rank < extra else 0)]


@dataclass
class Padded:
    input_ids: torch.Tensor       # [B, T], right padded
    attention_mask: torch.Tensor  # [B, T]
    target_mask: torch.Tensor     # [B, T] bool, True on completion tokens (the ones whose log-prob is summed)

    @property
    def num_tokens(self) -> int:
        return int(self.attention_mask.sum())

    def to(self, device) -> "Padded":
        return Padded(self.input_ids.to(device), self.attention_mask.to(device), self.target_mask.to(device))


def collate(sequences: list[tuple[list[int], list[int]]], pad_id: int) -> Padded:
    width = max(len(p) + len(c) for p, c in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    target_mask = torch.zeros((len(sequences), width), dtype=torch.bool)
    for row, (prompt, completion) in enumerate(sequences):
        n_prompt, n = len(prompt), len(prompt) + len(completion)
        input_ids[row, :n] = torch.tensor(prompt + completion, dtype=torch.long)
        attention_mask[row, :n] = 1
        target_mask[row, n_prompt:n] = True
    return Padded(input_ids, attention_mask, target_mask)
