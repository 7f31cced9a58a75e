"""UniZero losses for one task's windows: latent consistency, reward, value and policy.

Every term is computed per (window, step), masked by the steps that exist in the episode, weighted by
the importance weights of prioritised replay, summed and divided by the number of valid steps
(algorithm.md 1.7). The total for a task is the weighted sum of its terms; tasks are summed without
weights by the learner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

_LOG_2PIE = 0.5 * math.log(2.0 * math.pi * math.e)


@dataclass(frozen=True, kw_only=True)
class LossWeights:
    """Weights of the loss terms (discrete defaults: 10 / 1 / 1 / 0.5, entropy bonus 1e-4)."""

    latent: float = 10.0
    reward: float = 1.0
    policy: float = 1.0
    value: float = 0.5
    entropy: float = 1e-4

    def __post_init__(self) -> None:
        for name in ("latent", "reward", "policy", "value", "entropy"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"loss weight {name} must be a finite number >= 0, got {value!r}")


DISCRETE_WEIGHTS = LossWeights()
CONTINUOUS_WEIGHTS = LossWeights(latent=10.0, reward=0.1, policy=0.1, value=0.1, entropy=5e-2)


def masked_mean(per_step: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Sum of ``per_step * mask * weights[:, None]`` over (batch, time), divided by the valid count."""
    return (per_step * mask * weights[:, None]).sum() / mask.sum().clamp_min(1.0)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-sum(target * log_softmax(logits)) over the last axis."""
    return -(target * F.log_softmax(logits, dim=-1)).sum(-1)


def latent_loss(pred: torch.Tensor, target: torch.Tensor, norm: str, group: int) -> torch.Tensor:
    """Per-step latent consistency: MSE over features (LayerNorm) or summed per-group KL (SimNorm)."""
    if norm == "layernorm":
        return (pred - target).pow(2).mean(-1)
    shape = (*pred.shape[:-1], pred.shape[-1] // group, group)
    p, q = target.reshape(shape).clamp_min(1e-8), pred.reshape(shape).clamp_min(1e-8)
    return (p * (p.log() - q.log())).sum(-1).sum(-1)


def discrete_policy_loss(
    logits: torch.Tensor, target: torch.Tensor, legal: torch.Tensor | None, entropy_weight: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy to the search policy minus the entropy bonus; returns (per-step loss, entropy)."""
    if legal is not None:
        logits = logits.masked_fill(~legal, -1e9)
    logp = F.log_softmax(logits, dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return -(target * logp).sum(-1) - entropy_weight * entropy, entropy


def tanh_gaussian_log_prob(mu: torch.Tensor, log_std: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log p(a) of a = tanh(u), u ~ N(mu, exp(log_std)); ``actions`` [..., K, d], mu/log_std [..., d]."""
    a = actions.clamp(-0.999, 0.999)
    u = torch.atanh(a)
    mu, log_std = mu.unsqueeze(-2), log_std.unsqueeze(-2)
    normal = -0.5 * ((u - mu) / log_std.exp()).pow(2) - log_std - 0.5 * math.log(2.0 * math.pi)
    return (normal - torch.log1p(-a.pow(2) + 1e-6)).sum(-1)


def continuous_policy_loss(
    mu: torch.Tensor, log_std: torch.Tensor, actions: torch.Tensor, target: torch.Tensor, entropy_weight: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampled-MuZero policy loss -sum_k pi_k log p(a_k) minus the pre-tanh Gaussian entropy bonus."""
    logp = tanh_gaussian_log_prob(mu, log_std, actions)
    entropy = (log_std + _LOG_2PIE).sum(-1)
    return -(target * logp).sum(-1) - entropy_weight * entropy, entropy
