"""Sequence log-probabilities of completions without materialising [batch, length, vocab] logits.

The backbone's hidden states are gathered at the positions that predict a completion token
(prompt and padding positions never meet the vocabulary projection). The projection then runs in
row chunks through a custom autograd function that keeps one chunk of logits alive at a time and
recomputes it in backward. Besides bounding memory this is faster on CPU: a chunk stays in cache
and reuses one buffer, where a full [tokens, vocab] float32 tensor is page-faulted in on every
allocation. Log-softmax is always taken in float32.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Logit elements per chunk: cache-sized on CPU, large enough for efficient GEMMs on GPU.
CHUNK_ELEMENTS = {"cpu": 1 << 21, "cuda": 1 << 25}


def unwrap_causal_lm(model: nn.Module) -> nn.Module:
    """The transformers CausalLM inside a peft wrapper (LoRA layers stay injected)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def check_supported(model: nn.Module) -> None:
    config = unwrap_causal_lm(model).config.get_text_config()
    for name in ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier"):
        if getattr(config, name, None) not in (None, 1, 1.0):
            raise ValueError(f"models whose config sets {name} (logit scaling/soft-capping) are not supported")


class SequenceLogProbs(nn.Module):
    """Wraps a causal LM so one ``forward`` returns per-sequence completion log-prob sums.

    Being an ``nn.Module`` lets DDP wrap it: DDP's gradient hooks need the forward to go through it.
    """

    def __init__(self, model: nn.Module, chunk_elements: int | None = None):
        super().__init__()
        self.model = model
        self.chunk_elements = chunk_elements

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
        causal_lm = unwrap_causal_lm(self.model)
        hidden = causal_lm.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        head = causal_lm.get_output_embeddings()
        return completion_logps(hidden, input_ids, target_mask, head.weight, head.bias,
                                chunk_elements=self.chunk_elements)


def completion_logps(hidden: torch.Tensor, input_ids: torch.Tensor, target_mask: torch.Tensor,
                     weight: torch.Tensor, bias: torch.Tensor | None, *, chunk_elements: int | None = None) -> torch.Tensor:
    """Sum over completion tokens of log p(token | prefix), one value per sequence (float32)."""
    predicts = target_mask[:, 1:]                      # position j-1 predicts token j
    rows = predicts.nonzero(as_tuple=True)[0]
    states = hidden[:, :-1][predicts]                  # [N, H]
    targets = input_ids[:, 1:][predicts]               # [N]
    token_logps = token_log_probs(states, weight, bias, targets, chunk_elements=chunk_elements)
    return torch.zeros(input_ids.shape[0], dtype=torch.float32, device=hidden.device).index_add(0, rows, token_logps)


def token_log_probs(states: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                    *, chunk_elements: int | None = None) -> torch.Tensor:
    """log_softmax(states @ weight.T + bias)[targets] in float32, one value per row of ``states``."""
    if chunk_elements is None:
        chunk_elements = CHUNK_ELEMENTS.get(states.device.type, CHUNK_ELEMENTS["cuda"])
    rows_per_chunk = max(1, chunk_elements // weight.shape[0])
    return _ChunkedTokenLogProbs.apply(states, weight, bias, targets, rows_per_chunk)


def _compute_dtype(tensor: torch.Tensor) -> torch.dtype:
    device_type = tensor.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return tensor.dtype


def _projection(weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype, rows: int):
    """Head weight and bias in the compute dtype, plus the reused float32 logits buffer (None unless float32)."""
    w, b = weight.to(dtype), None if bias is None else bias.to(dtype)
    buffer = (torch.empty(rows, w.shape[0], dtype=torch.float32, device=weight.device)
              if dtype == torch.float32 else None)
    return w, b, buffer


def _chunk_logits(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, buffer: torch.Tensor | None) -> torch.Tensor:
    """float32 logits of one chunk, written into ``buffer`` when the compute dtype is float32."""
    if buffer is not None:
        logits = torch.mm(x, w.T, out=buffer[: x.shape[0]])
        return logits if b is None else logits.add_(b)
    return F.linear(x, w, b).float()


class _ChunkedTokenLogProbs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, states, weight, bias, targets, rows_per_chunk):
        dtype = _compute_dtype(states)
        count = states.shape[0]
        out = torch.empty(count, dtype=torch.float32, device=states.device)
        lse = torch.empty_like(out)
        with torch.autocast(states.device.type, enabled=False):
            w, b, buffer = _projection(weight, bias, dtype, min(rows_per_chunk, count))
            for start in range(0, count, rows_per_chunk):
                stop = min(start + rows_per_chunk, count)
                logits = _chunk_logits(states[start:stop].to(dtype), w, b, buffer)
                torch.logsumexp(logits, dim=-1, out=lse[start:stop])
                out[start:stop] = logits.gather(1, targets[start:stop, None]).squeeze(1) - lse[start:stop]
        ctx.save_for_backward(states, weight, bias, targets, lse)
        ctx.rows_per_chunk, ctx.dtype = rows_per_chunk, dtype
        return out

    @staticmethod
    def backward(ctx, grad_out):
        states, weight, bias, targets, lse = ctx.saved_tensors
        dtype, step, count = ctx.dtype, ctx.rows_per_chunk, states.shape[0]
        need_states, need_weight, need_bias = ctx.needs_input_grad[:3]
        grad_states = torch.empty_like(states) if need_states else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if need_weight else None
        grad_bias = torch.zeros_like(bias, dtype=torch.float32) if bias is not None and need_bias else None
        with torch.autocast(states.device.type, enabled=False):
            w, b, buffer = _projection(weight, bias, dtype, min(step, count))
            for start in range(0, count, step):
                stop = min(start + step, count)
                chunk = states[start:stop].to(dtype)
                g = grad_out[start:stop, None].float()
                # d logp[target] / d logits = onehot(target) - softmax(logits), built in place
                grad_logits = _chunk_logits(chunk, w, b, buffer)
                grad_logits.sub_(lse[start:stop, None]).exp_().mul_(-g)
                grad_logits.scatter_add_(1, targets[start:stop, None], g)
                grad_logits = grad_logits.to(dtype)
                if grad_states is not None:
                    grad_states[start:stop] = torch.mm(grad_logits, w).to(states.dtype)
                if grad_weight is not None:
                    grad_weight.addmm_(grad_logits.T.float(), chunk.float())
                if grad_bias is not None:
                    grad_bias += grad_logits.float().sum(0)
        if grad_weight is not None:
            grad_weight = grad_weight.to(weight.dtype)
        if grad_bias is not None:
            grad_bias = grad_bias.to(bias.dtype)
        return grad_states, grad_weight, grad_bias, None, None
