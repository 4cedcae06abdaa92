"""Command line: ``python -m trainer.kto train|tiny|generate``; works under ``torchrun`` for ``train``.

Exit codes: 0 done, 2 bad input (message names the file and line), 3 cancelled.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from .config import TrainConfig
from .data import parse_row

EXIT_BAD_INPUT, EXIT_CANCELLED = 2, 3


class BadInput(ValueError):
    pass


def read_jsonl(path: str | Path) -> list[dict]:
    """Rows from a JSONL file; any bad line raises BadInput naming ``file:line``."""
    rows = []
    try:
        handle = open(path, encoding="utf-8")
    except OSError as error:
        raise BadInput(f"{path}: cannot read: {error.strerror}") from error
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise BadInput(f"{path}:{number}: invalid JSON: {error.msg} (column {error.colno})") from error
            try:
                parse_row(row, where=f"{path}:{number}")
            except ValueError as error:
                raise BadInput(str(error)) from error
            rows.append(row)
    if not rows:
        raise BadInput(f"{path}: no rows")
    return rows


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    for field in dataclasses.fields(TrainConfig):
        if field.name in ("model", "out"):
            continue
        flag = "--" + field.name.replace("_", "-")
        hint = str(field.type)  # a string: config.py uses postponed annotations
        if hint == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            kind = int if "int" in hint else float if "float" in hint else str
            parser.add_argument(flag, type=kind, default=field.default, metavar=kind.__name__.upper())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer.kto", description="Prospect's KTO engine")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a policy with KTO on labelled rows (JSONL)")
    train.add_argument("--data", required=True, help="JSONL: {prompt, completion, desirable|label} per line")
    train.add_argument("--model", required=True, help="starting policy: model directory or hub name")
    train.add_argument("--out", required=True, help="checkpoint directory to create (must not exist)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_options(train)

    tiny = commands.add_parser("tiny", help="build the deterministic offline tiny model")
    tiny.add_argument("--out", required=True)

    sample = commands.add_parser("generate", help="sample completions for prompts (a text file, one per line)")
    sample.add_argument("--model", required=True)
    sample.add_argument("--prompts", required=True, help="text file, one prompt per line")
    sample.add_argument("-n", type=int, default=1)
    sample.add_argument("--max-new-tokens", type=int, default=48)
    sample.add_argument("--temperature", type=float, default=1.0)
    sample.add_argument("--top-p", type=float, default=1.0)
    sample.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "tiny":
            from .tiny import build_tiny_model

            print(build_tiny_model(args.out))
            return 0
        if args.command == "generate":
            return _generate(args)
        return _train(args)
    except BadInput as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _train(args) -> int:
    from .engine import TrainingCancelled, train

    rows = read_jsonl(args.data)
    options = {name: getattr(args, name) for name in TrainConfig.field_names() if name not in ("model", "out")}
    config = TrainConfig(model=args.model, out=args.out, **options)
    try:
        config.validate()
    except ValueError as error:
        raise BadInput(str(error)) from error
    is_main = int(os.environ.get("RANK", "0")) == 0
    reporter = _Reporter(enabled=is_main and not args.quiet)
    try:
        result = train(rows, config, progress=reporter)
    except TrainingCancelled:
        print("cancelled: no checkpoint written", file=sys.stderr)
        return EXIT_CANCELLED
    except ValueError as error:
        raise BadInput(str(error)) from error
    finally:
        reporter.close()
    if is_main:
        last = result.metrics[-1] if result.metrics else {}
        print(json.dumps({"out": str(result.out_dir), "steps": len(result.metrics), "loss": last.get("loss"),
                          "seconds": result.summary.get("seconds")}))
    return 0


class _Reporter:
    """tqdm bar over optimizer steps (and the reference pass), fed by the engine's progress events."""

    def __init__(self, enabled: bool):
        self.enabled, self.bar, self.phase = enabled, None, None

    def __call__(self, event: dict) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        phase = event.get("phase", "train")
        total = event.get("total_steps", event.get("total"))
        if phase != self.phase:
            self.close()
            self.phase = phase
            self.bar = tqdm(total=total, desc="reference log-probs" if phase == "reference" else "KTO", unit="step",
                            file=sys.stderr, dynamic_ncols=True)
        done = event.get("step", event.get("done", 0))
        self.bar.update(done - self.bar.n)
        metrics = event.get("metrics")
        if metrics:
            self.bar.set_postfix(loss=f"{metrics['loss']:.4f}", kl=f"{metrics['kl']:.3f}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _generate(args) -> int:
    from .generate import generate

    try:
        lines = Path(args.prompts).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise BadInput(f"{args.prompts}: cannot read: {error.strerror}") from error
    prompts = [line for line in lines if line.strip()]
    if not prompts:
        raise BadInput(f"{args.prompts}: no prompts")
    try:
        samples = generate(args.model, prompts, n=args.n, max_new_tokens=args.max_new_tokens,
                           temperature=args.temperature, top_p=args.top_p, seed=args.seed)
    except ValueError as error:
        raise BadInput(str(error)) from error
    for prompt, completions in zip(prompts, samples):
        print(json.dumps({"prompt": prompt, "completions": completions}))
    return 0
