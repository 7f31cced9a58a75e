"""Per-task prediction heads and action embeddings, stored as stacked per-task parameters.

Every head is ``Linear(D, hidden) -> GELU -> Linear(hidden, out)`` (the paper branch's head, without the
LayerNorms HEAD added), one independent copy per task (``share_head=False``):

* value and reward: ``2S + 1`` logits; next latent: ``D`` (the world model applies the latent norm after it);
* discrete policy: ``A_max`` logits per discrete task, entries at or beyond the task's ``A_k`` set to
  :data:`PAD_LOGIT`;
* continuous policy: ``mu`` and ``log_std`` of size ``d_max`` per continuous task, ``log_std`` clamped to
  [:data:`LOG_STD_MIN`, :data:`LOG_STD_MAX`], dimensions beyond ``d_k`` set to 0.

Initialisation (algorithm.md §1.5): first layers Xavier-uniform with zero bias; the last layer of value,
reward, latent and discrete policy heads zero; the last layer of **every** continuous task's policy head
U(±3e-3) (the reference only initialised the last task's, bug 9.i).

Action embeddings: discrete tasks look up ``Embedding(A_k, D)`` tables (tasks of one family with the same
``A_k`` share a table; all tables live in one ``nn.Embedding`` at per-task offsets); continuous task k uses
``Linear(d_k, D, bias=False) -> SimNorm(8)``.

Rows of a batch may belong to different tasks. The batch is sorted by (kind, task) (see
:mod:`scalezero_agents.model.routing`), so every task's rows are one contiguous slice: each task's
parameter slice runs on its rows (a view) and the results are concatenated; one task costs one ``F.linear``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from scalezero_adapters import TaskSpec
from torch import Tensor, nn

from scalezero_agents.model.config import ACTION_INIT_BOUND, ACTION_SIMNORM_GROUP, ModelConfig
from scalezero_agents.model.layers import SimNorm, xavier_stack_
from scalezero_agents.model.routing import KindRoute, Route, Segment, TaskTable

PAD_LOGIT = -1e9
"""Logit of discrete actions beyond a task's action count."""
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
"""Clamp range of the continuous policy's log standard deviation."""
CONTINUOUS_INIT = 3e-3
"""Bound of the uniform init of the continuous policy heads' last layer."""


def _per_segment(fn: Callable[[Tensor, int], Tensor], x: Tensor, segments: Sequence[Segment]) -> Tensor:
    """Apply ``fn(rows, task)`` to each task's block of rows of ``x`` and concatenate."""
    if len(segments) == 1:
        return fn(x, segments[0].task)
    return torch.cat([fn(x[seg.start : seg.stop], seg.task) for seg in segments])


def _place(n: int, kind: KindRoute, sub: Tensor, fill: float) -> Tensor:
    """Put a kind's result ``sub`` (its rows ``kind.start:kind.stop``) into ``n`` rows filled with ``fill``."""
    if kind.start == 0 and kind.stop == n:
        return sub
    parts = [sub]
    if kind.start:
        parts.insert(0, sub.new_full((kind.start, *sub.shape[1:]), fill))
    if kind.stop < n:
        parts.append(sub.new_full((n - kind.stop, *sub.shape[1:]), fill))
    return torch.cat(parts)


class StackedMLP(nn.Module):
    """K independent ``Linear(in, hidden) -> GELU -> Linear(hidden, out)`` MLPs in stacked parameters.

    ``w1 [K, hidden, in]``, ``b1 [K, hidden]``, ``w2 [K, out, hidden]``, ``b2 [K, out]`` (Linear layout).
    """

    def __init__(self, num: int, in_dim: int, hidden: int, out_dim: int, *, last_init: str = "zero") -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(num, hidden, in_dim))
        self.b1 = nn.Parameter(torch.zeros(num, hidden))
        self.w2 = nn.Parameter(torch.zeros(num, out_dim, hidden))
        self.b2 = nn.Parameter(torch.zeros(num, out_dim))
        xavier_stack_(self.w1, in_dim, hidden)
        if last_init == "uniform":
            nn.init.uniform_(self.w2, -CONTINUOUS_INIT, CONTINUOUS_INIT)
            nn.init.uniform_(self.b2, -CONTINUOUS_INIT, CONTINUOUS_INIT)
        elif last_init != "zero":
            raise ValueError(f"last_init must be 'zero' or 'uniform', got {last_init!r}")

    def one(self, x: Tensor, task: int) -> Tensor:
        """Task ``task``'s MLP on ``x [..., in]``."""
        return F.linear(F.gelu(F.linear(x, self.w1[task], self.b1[task])), self.w2[task], self.b2[task])

    def forward(self, x: Tensor, segments: Sequence[Segment]) -> Tensor:
        """``x [n, ..., in]`` whose rows are blocks of tasks ``segments`` -> ``[n, ..., out]``."""
        return _per_segment(self.one, x, segments)


class PredictionHeads(nn.Module):
    """Per-task value, reward, next-latent and policy heads."""

    def __init__(self, specs: Sequence[TaskSpec], config: ModelConfig, table: TaskTable) -> None:
        super().__init__()
        dim, hidden, atoms, num = config.embed_dim, config.head_width, config.num_atoms, len(specs)
        self.value = StackedMLP(num, dim, hidden, atoms)
        self.reward = StackedMLP(num, dim, hidden, atoms)
        self.latent = StackedMLP(num, dim, hidden, dim)
        discrete = [specs[k].action_size for k in table.discrete_tasks]
        continuous = [specs[k].action_size for k in table.continuous_tasks]
        self.num_actions = max(discrete, default=0)
        self.action_dim = max(continuous, default=0)
        self.policy = StackedMLP(len(discrete), dim, hidden, self.num_actions) if discrete else None
        self.gaussian = (
            StackedMLP(len(continuous), dim, hidden, 2 * self.action_dim, last_init="uniform") if continuous else None
        )
        self._actions = discrete
        self._dims = continuous

    def discrete_policy(self, h: Tensor, route: Route) -> Tensor | None:
        """``[n, t, A_max]`` logits (``None`` if the model has no discrete task); rows of continuous tasks
        are all :data:`PAD_LOGIT`."""
        if self.policy is None:
            return None
        kind = route.discrete
        if kind is None:
            return h.new_full((*h.shape[:2], self.num_actions), PAD_LOGIT)
        logits = _per_segment(self._logits, h[kind.start : kind.stop], kind.segments)
        return _place(h.shape[0], kind, logits, PAD_LOGIT)

    def _logits(self, h: Tensor, task: int) -> Tensor:
        logits = self.policy.one(h, task)  # type: ignore[union-attr]
        size = self._actions[task]
        if size < self.num_actions:
            logits = torch.cat(
                (logits[..., :size], logits.new_full((*logits.shape[:-1], self.num_actions - size), PAD_LOGIT)), -1
            )
        return logits

    def continuous_policy(self, h: Tensor, route: Route) -> tuple[Tensor | None, Tensor | None]:
        """``(mu, log_std)``, each ``[n, t, d_max]`` (``None`` if the model has no continuous task); padded
        dimensions and rows of discrete tasks are 0."""
        if self.gaussian is None:
            return None, None
        kind = route.continuous
        if kind is None:
            zeros = h.new_zeros((*h.shape[:2], self.action_dim))
            return zeros, zeros
        out = _per_segment(self._gaussian, h[kind.start : kind.stop], kind.segments)
        out = _place(h.shape[0], kind, out, 0.0)
        return out[..., : self.action_dim], out[..., self.action_dim :]

    def _gaussian(self, h: Tensor, task: int) -> Tensor:
        """``[mu | log_std]`` of one task, zero beyond its ``d_k``."""
        out = self.gaussian.one(h, task)  # type: ignore[union-attr]
        d, d_max = self._dims[task], self.action_dim
        mu, log_std = out[..., :d], out[..., d_max : d_max + d].clamp(LOG_STD_MIN, LOG_STD_MAX)
        if d == d_max:
            return torch.cat((mu, log_std), -1)
        pad = out.new_zeros((*out.shape[:-1], d_max - d))
        return torch.cat((mu, pad, log_std, pad), -1)


class ActionEmbedding(nn.Module):
    """Action tokens from the unified action tensor ``[n, t, P]`` (see :class:`WorldModel`)."""

    def __init__(self, specs: Sequence[TaskSpec], config: ModelConfig, table: TaskTable) -> None:
        super().__init__()
        dim = config.embed_dim
        offsets: dict[tuple[str, int], int] = {}
        self._offset, self._size = [], []
        for k in table.discrete_tasks:
            key = (specs[k].family, specs[k].action_size)
            if key not in offsets:
                offsets[key] = sum(size for _, size in offsets)
            self._offset.append(offsets[key])
            self._size.append(key[1])
        self.tables = nn.Embedding(sum(size for _, size in offsets), dim) if offsets else None
        if self.tables is not None:
            nn.init.normal_(self.tables.weight, std=0.02)
        self._dims = [specs[k].action_size for k in table.continuous_tasks]
        self.action_dim = max(self._dims, default=0)
        self.weight = nn.Parameter(torch.zeros(len(self._dims), dim, self.action_dim)) if self._dims else None
        if self.weight is not None:
            # U(+-ACTION_INIT_BOUND), not the reference's Xavier: Xavier's +-sqrt(6 / (D + d)) makes the SimNorm
            # logits so small that every action token is almost the uniform simplex point, and the model then
            # learns the action's effect very slowly (cartpole-balance probe, small preset, lr 1e-4: predicted
            # control-cost gap 0.05 of the true 0.20 after 2,500 updates; x10 the scale: 0.15).
            with torch.no_grad():
                for k, d in enumerate(self._dims):
                    nn.init.uniform_(self.weight[k, :, :d], -ACTION_INIT_BOUND, ACTION_INIT_BOUND)
        self.norm = SimNorm(ACTION_SIMNORM_GROUP)

    def forward(self, actions: Tensor, route: Route) -> Tensor:
        """``actions [n, t, P]`` -> tokens ``[n, t, D]``.

        Raises:
            ValueError: If a discrete action is outside ``0..A_k-1`` of its task.
        """
        parts = []
        if route.discrete is not None:
            kind = route.discrete
            parts.append(_per_segment(self._discrete, actions[kind.start : kind.stop], kind.segments))
        if route.continuous is not None:
            kind = route.continuous
            cont = _per_segment(self._continuous, actions[kind.start : kind.stop], kind.segments)
            parts.append(self.norm(cont))
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _discrete(self, actions: Tensor, task: int) -> Tensor:
        index, size = actions[..., 0], self._size[task]
        if index.numel():
            low, high = (float(v) for v in torch.aminmax(index))
            if low < 0 or high >= size:
                raise ValueError(f"discrete action index out of range 0..{size - 1}: {index.flatten().tolist()}")
        return self.tables(index.long() + self._offset[task])  # type: ignore[misc]

    def _continuous(self, actions: Tensor, task: int) -> Tensor:
        d = self._dims[task]
        return F.linear(actions[..., :d], self.weight[task, :, :d])  # type: ignore[index]
