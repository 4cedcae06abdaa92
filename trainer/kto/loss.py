"""The KTO loss (Ethayarajh et al. 2024, eq. 7) as TRL 1.16 computes it for ``loss_type="kto"``.

A pure function of per-example sequence log-probabilities: no model, no data, no state.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class KTOLossOutput:
    loss: torch.Tensor     # scalar: mean of ``losses`` over the batch (NaNs ignored, as TRL's nanmean)
    kl: torch.Tensor       # scalar: the reference point z0, clamped at 0 and detached
    rewards: torch.Tensor  # [B]: beta * (policy - reference) log-ratio, detached
    losses: torch.Tensor   # [B]: weighted per-example losses (what ``loss`` averages)


def kl_reference_point(policy_kl_logps: torch.Tensor, reference_kl_logps: torch.Tensor,
                       all_sum: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """z0: mean log-ratio over the mismatched pairs, clamped at 0, without gradient.

    With ``all_sum`` (a sum across processes) the mean runs over every process's pairs, so uneven
    shards weigh each pair equally and every rank gets the same z0.
    """
    log_ratio = policy_kl_logps.detach() - reference_kl_logps.detach()
    if all_sum is None:
        return log_ratio.mean().clamp(min=0)
    total, count = all_sum(torch.stack([log_ratio.sum(), log_ratio.new_tensor(log_ratio.numel())]))
    return (total / count).clamp(min=0)


def kto_loss(
    policy_logps: torch.Tensor,
    reference_logps: torch.Tensor,
    policy_kl_logps: torch.Tensor | None,
    reference_kl_logps: torch.Tensor | None,
    desirable: torch.Tensor,
    *,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
    kl: torch.Tensor | None = None,
) -> KTOLossOutput:
    """KTO loss for one batch.

    ``kl`` lets a caller pass a reference point it already reduced across processes (the engine
    does under DDP); the KL log-prob arguments are then not used and may be None.
    """
    if policy_logps.dim() != 1:
        raise ValueError(f"policy_logps must be 1-D (one log-prob per example), got shape {tuple(policy_logps.shape)}")
    size = policy_logps.shape[0]
    if size < 2:
        raise ValueError(
            "KTO needs at least 2 examples per batch: the KL reference point pairs each prompt with "
            "another example's completion, so a batch of 1 has nothing to compare against."
        )
    named = {"reference_logps": reference_logps, "desirable": desirable}
    if kl is None:
        if policy_kl_logps is None or reference_kl_logps is None:
            raise ValueError("policy_kl_logps and reference_kl_logps are required unless kl is given")
        named.update(policy_kl_logps=policy_kl_logps, reference_kl_logps=reference_kl_logps)
    for name, tensor in named.items():
        if tuple(tensor.shape) != (size,):
            raise ValueError(f"{name} must have shape ({size},) like policy_logps, got {tuple(tensor.shape)}")
    if desirable.dtype != torch.bool:
        raise ValueError(f"desirable must be a bool tensor, got {desirable.dtype}")
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")

    z0 = kl_reference_point(policy_kl_logps, reference_kl_logps) if kl is None else kl.detach()
    log_ratio = policy_logps - reference_logps
    # Each half sees the same formula TRL uses; torch.where keeps the batch order and handles empty halves.
    desirable_losses = desirable_weight * (1 - torch.sigmoid(beta * (log_ratio - z0)))
    undesirable_losses = undesirable_weight * (1 - torch.sigmoid(beta * (z0 - log_ratio)))
    losses = torch.where(desirable, desirable_losses, undesirable_losses)
    return KTOLossOutput(loss=losses.nanmean(), kl=z0, rewards=beta * log_ratio.detach(), losses=losses)
