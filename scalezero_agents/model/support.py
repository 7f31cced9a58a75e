"""Categorical value/reward representation: the MuZero scaling transform and two-hot supports.

A scalar ``x`` is squashed with ``h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x`` (eps = 0.001), clipped to
``[-S, S]`` and spread over the two neighbouring integer atoms of the support ``-S..S`` (2S + 1 atoms).
A prediction is decoded by the expectation of ``softmax(logits)`` over the support, then ``h_inv``.
"""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 0.001
"""The ``eps`` of the scaling transform ``h``."""


def h(x: Tensor) -> Tensor:
    """The invertible scaling transform ``sign(x) (sqrt(|x| + 1) - 1) + eps x``."""
    return torch.sign(x) * (torch.sqrt(torch.abs(x) + 1.0) - 1.0) + EPS * x


def h_inv(y: Tensor) -> Tensor:
    """Closed-form inverse of :func:`h`.

    With ``u = |x|`` the equation ``sqrt(u + 1) - 1 + eps u = |y|`` is a quadratic in ``sqrt(u + 1)``, giving
    ``u = ((sqrt(1 + 4 eps (|y| + 1 + eps)) - 1) / (2 eps))^2 - 1``.
    """
    root = (torch.sqrt(1.0 + 4.0 * EPS * (torch.abs(y) + 1.0 + EPS)) - 1.0) / (2.0 * EPS)
    return torch.sign(y) * (root * root - 1.0)


def support(scale: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """The atoms ``-scale..scale`` as a float tensor of size ``2 * scale + 1``."""
    return torch.arange(-scale, scale + 1, dtype=dtype, device=device)


def two_hot(x: Tensor, scale: int) -> Tensor:
    """Two-hot targets of ``h(x)`` on the support ``-scale..scale``.

    Args:
        x: scalars of any shape ``[...]`` (float).
        scale: S; values with ``|h(x)| > S`` are clipped to the end atoms.

    Returns:
        ``[..., 2S + 1]`` probabilities: at most two non-zero neighbouring entries that sum to 1 and whose
        expectation over the support equals ``clip(h(x), -S, S)``.
    """
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    y = h(x).clamp(-scale, scale)
    low = torch.floor(y).clamp(max=scale - 1)  # y == S lands on (S-1, S) with weight 1 on S
    upper_weight = y - low
    index = (low + scale).long().unsqueeze(-1)
    out = torch.zeros(*x.shape, 2 * scale + 1, dtype=y.dtype, device=x.device)
    out.scatter_(-1, index, (1.0 - upper_weight).unsqueeze(-1))
    out.scatter_(-1, index + 1, upper_weight.unsqueeze(-1))
    return out


def decode(logits: Tensor, scale: int) -> Tensor:
    """Scalar prediction from logits ``[..., 2S + 1]``: ``h_inv(E_softmax[atom])``, shape ``[...]``."""
    if logits.shape[-1] != 2 * scale + 1:
        raise ValueError(f"expected {2 * scale + 1} logits in the last dimension, got shape {tuple(logits.shape)}")
    probs = torch.softmax(logits, dim=-1)
    return h_inv(probs @ support(scale, dtype=probs.dtype, device=probs.device))
