"""The KTO training loop, top to bottom: data, reference pass, steps, atomic save.

One ``train`` call is one run. Under ``torchrun`` every process calls it with the same rows and
config; each takes its slice of every global batch (``batch_size`` per process) and the loss is
normalised by the global batch, so N processes follow the same trajectory as one process with
an N-times larger batch.
"""
from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import checkpoint, distributed
from .config import TrainConfig, balanced_weights
from .data import Example, collate, epoch_order, kl_pairs, parse_rows, plan_batches, shard, tokenize_rows
from .logprobs import SequenceLogProbs, check_supported
from .loss import kl_reference_point, kto_loss
from .modeling import disable_dropout, is_adapter_dir, load_causal_lm, load_tokenizer, resolve_device

METRIC_KEYS = ("loss", "kl", "rewards/chosen", "rewards/rejected", "rewards/margins",
               "logps/chosen", "logps/rejected", "lr", "tokens_per_s")


class TrainingCancelled(Exception):
    """Raised when ``should_cancel`` (or the cancel file) asks a run to stop; nothing is written."""


@dataclass
class TrainResult:
    out_dir: Path
    metrics: list[dict] = field(default_factory=list)  # one dict per optimizer step ({"step", **METRIC_KEYS})
    summary: dict = field(default_factory=dict)


Progress = Callable[[dict], None]


def train(rows: Iterable[Mapping], config: TrainConfig, *, progress: Progress | None = None,
          should_cancel: Callable[[], bool] | None = None) -> TrainResult:
    config.validate()
    parsed = parse_rows(rows)
    out = Path(config.out).resolve()
    checkpoint.check_out_free(out)
    device = resolve_device(config.device)  # fails early when CUDA is asked for and missing
    dist = distributed.setup(device.type)
    try:
        if len(parsed) < 2 * dist.world_size:
            raise ValueError(f"need at least {2 * dist.world_size} rows (2 per process for the KL estimate), "
                             f"got {len(parsed)}")
        run = _Run(config, dist, resolve_device(config.device, dist.local_rank), out, progress, should_cancel)
        return run.execute(parsed)
    finally:
        dist.close()


class _Run:
    """State shared by the phases of one run; ``execute`` reads top to bottom."""

    def __init__(self, config: TrainConfig, dist: distributed.Dist, device: torch.device, out: Path,
                 progress: Progress | None, should_cancel: Callable[[], bool] | None):
        self.config, self.dist, self.device, self.out = config, dist, device, out
        self.progress, self.should_cancel = progress, should_cancel
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                         else contextlib.nullcontext())
        self.model_path = _local_or_hub(config.model)
        self.staging: Path | None = None

    # ---- the run -------------------------------------------------------------------------
    def execute(self, rows) -> TrainResult:
        config = self.config
        torch.manual_seed(config.seed)
        started = time.perf_counter()
        self.tokenizer = load_tokenizer(self.model_path)
        self.examples = tokenize_rows(rows, self.tokenizer, max_length=config.max_length,
                                      max_prompt_length=config.max_prompt_length)
        self.weights = self._loss_weights()
        self.plan = plan_batches([len(e) for e in self.examples], config.batch_size * self.dist.world_size,
                                 seed=config.seed, shuffle=config.shuffle, group_by_length=config.group_by_length,
                                 min_size=2 * self.dist.world_size)
        self.kl_sequences = self._kl_sequences()
        steps_per_epoch = math.ceil(len(self.plan) / config.grad_accum)
        self.total_steps = config.max_steps or config.epochs * steps_per_epoch

        if self.dist.is_main:
            self.staging = checkpoint.staging_dir(self.out)
        try:
            if config.reference:  # a separate reference is scored and freed before the policy loads
                self.ref_logps, self.ref_kl_logps = self._reference_logps()
                self.policy = self._load_policy()
            else:
                self.policy = self._load_policy()
                self.ref_logps, self.ref_kl_logps = self._reference_logps()
            metrics = self._train_loop()
            self._check_cancel()
            summary = self._summary(metrics, time.perf_counter() - started)
            if self.dist.is_main:
                self._save(summary)
            self.dist.barrier()
        except BaseException:
            checkpoint.discard(self.staging)
            raise
        return TrainResult(out_dir=self.out, metrics=metrics, summary=summary)

    # ---- data ----------------------------------------------------------------------------
    def _loss_weights(self) -> tuple[float, float]:
        config = self.config
        n_desirable = sum(e.desirable for e in self.examples)
        if not config.auto_weights:
            return config.desirable_weight, config.undesirable_weight
        return balanced_weights(n_desirable, len(self.examples) - n_desirable,
                                config.desirable_weight, config.undesirable_weight)

    def _kl_sequences(self) -> list[tuple[list[int], list[int]]]:
        """Each example's mismatched (own prompt, neighbour's completion) pair within its global batch."""
        pairs: list = [None] * len(self.examples)
        for batch in self.plan:
            for index, pair in zip(batch, kl_pairs(self.examples, batch, self.config.max_length)):
                pairs[index] = pair
        return pairs

    # ---- models --------------------------------------------------------------------------
    def _load_policy(self):
        config = self.config
        policy = load_causal_lm(self.model_path, self.device)
        check_supported(policy)
        disable_dropout(policy)
        if config.gradient_checkpointing:
            policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if config.lora:
            try:
                from peft import LoraConfig, get_peft_model
            except ImportError as error:  # pragma: no cover - depends on the install
                raise ValueError("lora=True needs peft: pip install 'prospect[lora]'") from error
            torch.manual_seed(config.seed)  # LoRA's A matrices are random: seed them
            lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                              target_modules="all-linear", task_type="CAUSAL_LM")
            policy = get_peft_model(policy, lora)
        policy.train()
        return policy

    def _reference_logps(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference log-probs of every matched and mismatched sequence, computed once, before training."""
        config, started = self.config, time.perf_counter()
        if config.reference:
            model = load_causal_lm(_local_or_hub(config.reference), self.device)
            disable_dropout(model)
            scope = contextlib.nullcontext()
        else:
            # The starting policy; with LoRA that is the model with its adapters switched off.
            model = self.policy
            scope = self.policy.disable_adapter() if config.lora else contextlib.nullcontext()
        sequences = [(e.prompt_ids, e.completion_ids) for e in self.examples] + self.kl_sequences
        mine = sorted(range(self.dist.rank, len(sequences), self.dist.world_size),
                      key=lambda i: len(sequences[i][0]) + len(sequences[i][1]))  # little padding
        size = config.reference_batch_size or 2 * config.batch_size
        batches = [mine[start:start + size] for start in range(0, len(mine), size)]
        total = self.dist.max_int(len(batches), self.device)  # every rank runs as many cancel checks
        values = torch.zeros(len(sequences), dtype=torch.float32, device=self.device)
        scorer = SequenceLogProbs(model)
        was_training = model.training
        model.eval()
        with scope, torch.no_grad(), self.autocast:
            for number in range(total):
                self._check_cancel()
                if number < len(batches):
                    batch = batches[number]
                    padded = collate([sequences[i] for i in batch], self.tokenizer.pad_token_id).to(self.device)
                    values[batch] = scorer(padded.input_ids, padded.attention_mask, padded.target_mask)
                self._emit({"phase": "reference", "done": number + 1, "total": total})
        model.train(was_training)
        if config.reference:
            del model, scorer
            _free_memory(self.device)
        values = self.dist.all_sum(values)
        count = len(self.examples)
        self.reference_seconds = time.perf_counter() - started
        return values[:count], values[count:]

    # ---- training ------------------------------------------------------------------------
    def _train_loop(self) -> list[dict]:
        config = self.config
        params = [p for p in self.policy.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        scorer = SequenceLogProbs(self.policy)
        module = scorer
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            module = DistributedDataParallel(scorer, device_ids=device_ids)
        metrics: list[dict] = []
        step, epoch = 0, 0
        while step < self.total_steps:
            order = epoch_order(len(self.plan), seed=config.seed, epoch=epoch, shuffle=config.shuffle)
            for start in range(0, len(order), config.grad_accum):
                if step >= self.total_steps:
                    break
                self._check_cancel()
                step += 1
                lr = config.learning_rate * lr_factor(step, self.total_steps, config.warmup_ratio, config.scheduler)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                micro_batches = [self.plan[i] for i in order[start:start + config.grad_accum]]
                began = time.perf_counter()
                stats = self._accumulate(module, scorer, micro_batches)
                if config.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                record = {"step": step, "epoch": epoch + 1, **_step_metrics(stats, lr, time.perf_counter() - began)}
                metrics.append(record)
                self._log_step(record)
            epoch += 1
        return metrics

    def _accumulate(self, module, scorer: SequenceLogProbs, micro_batches: list[list[int]]) -> torch.Tensor:
        """Forward/backward over one optimizer step's micro-batches; returns summed statistics (all processes)."""
        config, dist, pad_id = self.config, self.dist, self.tokenizer.pad_token_id
        beta, (w_desirable, w_undesirable) = config.beta, self.weights
        stats = torch.zeros(len(_STATS), dtype=torch.float64, device=self.device)
        for number, batch in enumerate(micro_batches):
            local = shard(batch, dist.rank, dist.world_size)
            matched = collate([(self.examples[i].prompt_ids, self.examples[i].completion_ids) for i in local],
                              pad_id).to(self.device)
            mismatched = collate([self.kl_sequences[i] for i in local], pad_id).to(self.device)
            index = torch.tensor(local, device=self.device)
            desirable = torch.tensor([self.examples[i].desirable for i in local], device=self.device)

            with torch.no_grad(), self.autocast:
                policy_kl = scorer(mismatched.input_ids, mismatched.attention_mask, mismatched.target_mask)
            z0 = kl_reference_point(policy_kl, self.ref_kl_logps[index], all_sum=dist.all_sum)  # global batch

            last = number == len(micro_batches) - 1
            sync = contextlib.nullcontext() if last or not dist.enabled else module.no_sync()
            with sync:
                with self.autocast:
                    policy_logps = module(matched.input_ids, matched.attention_mask, matched.target_mask)
                out = kto_loss(policy_logps, self.ref_logps[index], None, None, desirable, beta=beta,
                               desirable_weight=w_desirable, undesirable_weight=w_undesirable, kl=z0)
                # DDP averages gradients over processes: scale so the result is the global-batch mean.
                scale = dist.world_size / (len(batch) * len(micro_batches))
                (out.losses.sum() * scale).backward()

            logps = policy_logps.detach()
            chosen, rejected = desirable, ~desirable
            stats += torch.stack([
                out.losses.detach().sum() / len(batch) / len(micro_batches),
                z0 / len(micro_batches) / dist.world_size,  # z0 is already global: undo the sum below
                out.rewards[chosen].sum(), chosen.sum(), out.rewards[rejected].sum(), rejected.sum(),
                logps[chosen].sum(), logps[rejected].sum(),
                torch.tensor(matched.num_tokens + mismatched.num_tokens, device=self.device),
            ]).to(torch.float64)
        return dist.all_sum(stats)

    def _log_step(self, record: dict) -> None:
        if not self.dist.is_main:
            return
        checkpoint.append_jsonl(self.staging / "metrics.jsonl", record)
        metrics = {key: record[key] for key in METRIC_KEYS}
        self._emit({"step": record["step"], "total_steps": self.total_steps, "metrics": metrics})

    def _emit(self, event: dict) -> None:
        if not self.dist.is_main:
            return
        if self.config.live_metrics:
            checkpoint.append_jsonl(Path(self.config.live_metrics), event)
        if self.progress is not None:
            self.progress(event)

    def _check_cancel(self) -> None:
        wanted = bool(self.should_cancel()) if self.should_cancel is not None else False
        if self.config.cancel_file and Path(self.config.cancel_file).exists():
            wanted = True
        if self.dist.any(wanted, self.device):
            raise TrainingCancelled("training run cancelled")

    # ---- output --------------------------------------------------------------------------
    def _summary(self, metrics: list[dict], seconds: float) -> dict:
        n_desirable = sum(e.desirable for e in self.examples)
        speeds = [m["tokens_per_s"] for m in metrics]
        return {
            "steps": len(metrics),
            "total_steps": self.total_steps,
            "epochs": metrics[-1]["epoch"] if metrics else 0,
            "examples": len(self.examples),
            "desirable": n_desirable,
            "undesirable": len(self.examples) - n_desirable,
            "desirable_weight": self.weights[0],
            "undesirable_weight": self.weights[1],
            "batches_per_epoch": len(self.plan),
            "padding_ratio": _padding_ratio(self.examples, self.plan),
            "world_size": self.dist.world_size,
            "device": str(self.device),
            "reference": self.config.reference or "start",
            "reference_seconds": round(self.reference_seconds, 3),
            "seconds": round(seconds, 3),
            "tokens_per_s": sum(speeds) / len(speeds) if speeds else 0.0,
            "first": metrics[0] if metrics else None,
            "last": metrics[-1] if metrics else None,
        }

    def _save(self, summary: dict) -> None:
        config, staging = self.config, self.staging
        # An adapter trained on top of a merged adapter checkpoint only makes sense merged.
        merge = config.merge_lora or (config.lora and is_adapter_dir(self.model_path))
        checkpoint.save_model(staging, self.policy, self.tokenizer, merge_lora=config.lora and merge)
        checkpoint.write_json(staging / "summary.json", summary)
        checkpoint.write_json(staging / "training_config.json", config.to_dict())
        checkpoint.publish(staging, self.out)
        self.staging = None


_STATS = ("loss", "kl", "chosen_rewards", "n_chosen", "rejected_rewards", "n_rejected",
          "chosen_logps", "rejected_logps", "tokens")


def _step_metrics(stats: torch.Tensor, lr: float, seconds: float) -> dict:
    s = dict(zip(_STATS, stats.tolist()))
    chosen = s["chosen_rewards"] / s["n_chosen"] if s["n_chosen"] else None
    rejected = s["rejected_rewards"] / s["n_rejected"] if s["n_rejected"] else None
    return {
        "loss": s["loss"],
        "kl": s["kl"],
        "rewards/chosen": chosen,
        "rewards/rejected": rejected,
        "rewards/margins": chosen - rejected if chosen is not None and rejected is not None else None,
        "logps/chosen": s["chosen_logps"] / s["n_chosen"] if s["n_chosen"] else None,
        "logps/rejected": s["rejected_logps"] / s["n_rejected"] if s["n_rejected"] else None,
        "lr": lr,
        "tokens_per_s": s["tokens"] / seconds if seconds > 0 else 0.0,
        "step_seconds": seconds,
    }


def lr_factor(step: int, total: int, warmup_ratio: float, scheduler: str) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (1-based).

    Warm-up climbs to 1 over the first ceil(ratio * total) steps, then decay (linear or cosine)
    runs towards 0; unlike the usual 0-based schedule no step is spent at a learning rate of 0.
    """
    warmup = math.ceil(warmup_ratio * total)
    if step <= warmup:
        return step / warmup
    progress = (step - warmup - 1) / (total - warmup)
    if scheduler == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    return 1 - progress


def _padding_ratio(examples: list[Example], plan: list[list[int]]) -> float:
    real = sum(len(e) for e in examples)
    padded = sum(len(batch) * max(len(examples[i]) for i in batch) for batch in plan)
    return round(1 - real / padded, 4) if padded else 0.0


def _local_or_hub(name: str) -> str:
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def _free_memory(device: torch.device) -> None:
    import gc

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
