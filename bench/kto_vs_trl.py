"""Prospect's KTO engine vs TRL's KTOTrainer: same CPU, model, rows, batch, steps, learning rate, reference.

    .venv/bin/python bench/kto_vs_trl.py [--rows 512] [--steps 64] [--batch-size 8] [--trl-precompute on|off]

The parent builds a randomly initialised Llama-style model (6 layers, 256 dims, 8192-token BPE
vocabulary trained on a generated corpus) and ``--rows`` labelled rows of mixed lengths, then runs
each trainer in its own child process (so peak RSS is each one's own): Prospect first, then TRL.
Wall time covers load -> tokenize -> reference pass -> train -> save; the step time is the median
optimizer step. Both use the starting model as the reference, AdamW, linear decay, float32, no
gradient checkpointing, dropout off. The last line is the one recorded in bench/RESULTS.md:

    ratio_wall=<prospect/trl> ratio_step=<prospect/trl> peak_rss_mb=<prospect>/<trl>
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ar", "en", "is", "ol", "um")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default: one epoch)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--trl-precompute", choices=("on", "off"), default="on",
                        help="TRL's precompute_ref_log_probs (on was the faster of the two on our CPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in both children")
    parser.add_argument("--child", choices=("prospect", "trl"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = run_prospect(args) if args.child == "prospect" else run_trl(args)
        print("RESULT " + json.dumps(result))
        return

    steps = args.steps or args.rows // args.batch_size
    with tempfile.TemporaryDirectory(prefix="kto-bench-") as workdir:
        work = Path(workdir)
        started = time.perf_counter()
        rows = prepare(work, args.rows)
        lengths = [len(r["prompt"].split()) + len(r["completion"].split()) for r in rows]
        print(f"prepared model and {len(rows)} rows (words per row {min(lengths)}-{max(lengths)}, "
              f"{sum(r['label'] for r in rows)} desirable) in {time.perf_counter() - started:.1f}s", flush=True)
        results = {}
        for name in ("prospect", "trl"):
            command = [sys.executable, __file__, "--child", name, "--workdir", workdir, "--rows", str(args.rows),
                       "--steps", str(steps), "--batch-size", str(args.batch_size),
                       "--learning-rate", str(args.learning_rate), "--trl-precompute", args.trl_precompute]
            if args.threads:
                command += ["--threads", str(args.threads)]
            env = dict(os.environ, TQDM_DISABLE="1", PYTHONPATH=str(REPO))
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
            if done.returncode != 0 or not lines:
                sys.exit(f"{name} failed:\n{done.stderr[-4000:]}")
            results[name] = json.loads(lines[-1][len("RESULT "):])
            r = results[name]
            print(f"{name:9s} wall {r['wall_s']:7.2f}s  median step {r['median_step_s'] * 1000:7.1f}ms  "
                  f"all steps {r['steps_total_s']:6.1f}s  "
                  f"steps {r['steps']}  final loss {r['final_loss']:.5f}  peak RSS {r['peak_rss_mb']:.0f} MB"
                  + (f"  ({r['note']})" if r.get("note") else ""), flush=True)
    p, t = results["prospect"], results["trl"]
    print(f"ratio_wall={p['wall_s'] / t['wall_s']:.3f} ratio_step={p['median_step_s'] / t['median_step_s']:.3f} "
          f"peak_rss_mb={p['peak_rss_mb']:.0f}/{t['peak_rss_mb']:.0f}")


# ---- shared inputs --------------------------------------------------------------------------
def words(rng: random.Random, count: int) -> str:
    return " ".join("".join(rng.choice(SYLLABLES) for _ in range(rng.choice((1, 1, 2, 2, 3)))) for _ in range(count))


def prepare(work: Path, n_rows: int) -> list[dict]:
    """Tokenizer (8192 BPE tokens), random-init model and rows, all saved under ``work``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    rng = random.Random(0)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=8192, special_tokens=["<|end|>", "<|pad|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator((words(rng, 40) for _ in range(20000)), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|end|>", pad_token="<|pad|>")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=8192, hidden_size=256, intermediate_size=688, num_hidden_layers=6,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024,
                         tie_word_embeddings=False, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    LlamaForCausalLM(config).save_pretrained(work / "model")
    tokenizer.save_pretrained(work / "model")

    rows = []
    for index in range(n_rows):
        # Mixed lengths: short chat-like turns and long ones, ~6..200 words in all.
        prompt = words(rng, rng.choice((4, 8, 16, 32, 48)) + rng.randrange(4))
        completion = words(rng, rng.choice((2, 8, 24, 64, 120)) + rng.randrange(8))
        rows.append({"prompt": prompt + ".", "completion": " " + completion + ".", "label": rng.random() < 0.45})
    (work / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return rows


def read_rows(work: Path) -> list[dict]:
    return [json.loads(line) for line in (work / "rows.jsonl").read_text().splitlines()]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def set_threads(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)


# ---- the two children -------------------------------------------------------------------------
def run_prospect(args) -> dict:
    from trainer.kto import TrainConfig, train

    set_threads(args)
    work = Path(args.workdir)
    started = time.perf_counter()
    rows = [{"prompt": r["prompt"], "completion": r["completion"], "desirable": r["label"]} for r in read_rows(work)]
    result = train(rows, TrainConfig(model=str(work / "model"), out=str(work / "prospect-out"),
                                     batch_size=args.batch_size, max_steps=args.steps,
                                     learning_rate=args.learning_rate, max_length=512, max_prompt_length=256))
    wall = time.perf_counter() - started
    step_times = [m["step_seconds"] for m in result.metrics]
    return {"wall_s": wall, "median_step_s": statistics.median(step_times), "steps_total_s": sum(step_times),
            "steps": len(result.metrics), "final_loss": result.metrics[-1]["loss"], "peak_rss_mb": peak_rss_mb(),
            "note": f"reference pass {result.summary['reference_seconds']:.1f}s, "
                    f"padding {result.summary['padding_ratio']:.0%}"}


def run_trl(args) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import KTOConfig, KTOTrainer

    set_threads(args)
    work = Path(args.workdir)
    step_times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, *_, **__):
            self.began = time.perf_counter()

        def on_step_end(self, *_, **__):
            step_times.append(time.perf_counter() - self.began)

    started = time.perf_counter()
    dataset = Dataset.from_list(read_rows(work))
    model = AutoModelForCausalLM.from_pretrained(work / "model")
    tokenizer = AutoTokenizer.from_pretrained(work / "model")
    config = KTOConfig(output_dir=str(work / "trl-run"), per_device_train_batch_size=args.batch_size,
                       max_steps=args.steps, learning_rate=args.learning_rate, warmup_steps=0.1, max_length=512,
                       precompute_ref_log_probs=args.trl_precompute == "on", bf16=False,
                       gradient_checkpointing=False, use_cpu=True, report_to=[], save_strategy="no",
                       logging_steps=1, disable_tqdm=True, seed=0)
    trainer = KTOTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                         callbacks=[StepTimer()])
    trainer.train()
    trainer.save_model(str(work / "trl-out"))
    wall = time.perf_counter() - started
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {"wall_s": wall, "median_step_s": statistics.median(step_times), "steps_total_s": sum(step_times),
            "steps": len(step_times),
            "final_loss": losses[-1], "peak_rss_mb": peak_rss_mb(),
            "note": f"precompute_ref_log_probs={args.trl_precompute}"}


if __name__ == "__main__":
    main()
