"""Mixture-of-experts feed-forward (ScaleZero §3.3): SwiGLU experts, a shared expert and a top-k router.

Two routing rules:

* ``"trained"`` (default, a deliberate deviation from the reference): gates are the softmax over **all** E
  router logits, taken at the top-k experts, and a Switch-style load-balancing loss
  ``E * sum_e f_e * P_e`` (``f_e``: fraction of token assignments sent to expert e; ``P_e``: mean router
  probability of e) is returned, so the router learns.
* ``"faithful"``: the reference rule, a softmax over the **selected** top-k logits only. With k = 1 the gate is
  exactly 1 and the router receives exactly zero gradient; there is no auxiliary loss.

Routing is per token and never conditioned on the task. Tokens are dispatched by sorting the assignments by
expert, one batched matmul chain per expert that received tokens, and one ``index_add`` back.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scalezero_agents.model.config import Router


class SwiGLUExpert(nn.Module):
    """``w2(silu(w1 x) * w3 x)`` without biases."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """``[N, D] -> [N, D]``."""
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class DenseFeedForward(nn.Module):
    """``Linear(D, hidden) -> GELU -> Linear(hidden, D)`` (the dense FFN and the MoE shared expert)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        """``[..., D] -> [..., D]``."""
        return self.fc2(F.gelu(self.fc1(x)))


class MoEOutput(NamedTuple):
    """Result of one MoE forward."""

    out: Tensor
    """``[..., D]``, the input's shape."""
    aux_loss: Tensor | None
    """Scalar load-balancing loss (``router="trained"`` with ``stats=True``), else ``None``."""
    load: Tensor | None
    """``[E]`` fraction of token assignments per expert (``stats=True``), else ``None``."""
    router_prob: Tensor | None = None
    """``[E]`` mean router probability per expert, differentiable (``router="trained"`` with ``stats=True``), else
    ``None``. ``aux_loss == num_experts * (load * router_prob).sum()``; distributed training combines the two
    over processes to compute the balance loss of the global batch exactly."""


class MoEFeedForward(nn.Module):
    """E SwiGLU experts with top-k routing, plus an optional shared GELU expert applied to every token."""

    def __init__(
        self, dim: int, hidden: int, *, num_experts: int, experts_per_token: int, shared_expert: bool, router: Router
    ) -> None:
        super().__init__()
        if not 1 <= experts_per_token <= num_experts:
            raise ValueError(f"experts_per_token must be in [1, {num_experts}], got {experts_per_token}")
        if router not in ("trained", "faithful"):
            raise ValueError(f"router must be 'trained' or 'faithful', got {router!r}")
        self.num_experts = num_experts
        self.k = experts_per_token
        self.rule = router
        self.router = nn.Linear(dim, num_experts, bias=False)
        self.experts = nn.ModuleList(SwiGLUExpert(dim, hidden) for _ in range(num_experts))
        self.shared = DenseFeedForward(dim, hidden) if shared_expert else None

    def _gates(self, logits: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """Return ``(gates [N, k], experts [N, k], probs [N, E] or None)``."""
        if self.rule == "trained":
            probs = torch.softmax(logits, dim=-1)
            gates, experts = probs.topk(self.k, dim=-1)
            return gates, experts, probs
        top, experts = logits.topk(self.k, dim=-1)
        return torch.softmax(top, dim=-1), experts, None

    def forward(self, x: Tensor, *, stats: bool = False) -> MoEOutput:
        """Route every token of ``x [..., D]``; ``stats`` also computes the load and the auxiliary loss."""
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        num_tokens = flat.shape[0]
        gates, experts, probs = self._gates(self.router(flat))
        assignment = experts.reshape(-1)
        counts = torch.bincount(assignment, minlength=self.num_experts)
        order = torch.argsort(assignment, stable=True)
        token = order // self.k
        routed = flat.index_select(0, token)
        chunks = []
        start = 0
        for expert, size in zip(self.experts, counts.tolist(), strict=True):
            if size:
                chunks.append(expert(routed[start : start + size]))
                start += size
        expert_out = torch.cat(chunks) * gates.reshape(-1, 1).index_select(0, order)
        out = torch.zeros_like(flat).index_add(0, token, expert_out)
        if self.shared is not None:
            out = out + self.shared(flat)
        aux = load = mean_prob = None
        if stats:
            load = counts.to(flat.dtype) / (num_tokens * self.k)
            if probs is not None:
                mean_prob = probs.mean(dim=0)
                aux = self.num_experts * (load * mean_prob).sum()
        return MoEOutput(out.reshape(shape), aux, load, mean_prob)
