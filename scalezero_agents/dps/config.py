"""Settings of Dynamic Parameter Scaling (algorithm.md 4.1).

The defaults suit the ``tiny`` / ``small`` presets on a CPU (D = 64, runs of 10^3-10^4 updates). The
paper's values are available as :meth:`DPSConfig.paper`:

=========================  ==================  ==================
key                        DMC18               Atari8 / Atari26
=========================  ==================  ==================
``num_stages``             5                   5
``min_stage0_updates``     10 000              50 000
``max_stage_updates``      5 000               20 000
``rank``                   64                  64
``alpha``                  1 (α/r = 1/64)      32 (α/r = 0.5)
``dropout``                0.0                 0.1
``scale_init``             1.0                 1.0
=========================  ==================  ==================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

TARGET_GROUPS = ("attention", "feed_forward")
"""``attention``: the q, k, v and o projections of every block. ``feed_forward``: w1, w2 and w3 of every
routed MoE expert, or fc1 and fc2 of a dense feed-forward. Never the router, the shared expert, the
encoders, the embeddings or the heads."""


@dataclass(frozen=True, kw_only=True)
class DPSConfig:
    """Stage schedule and LoRA settings of Dynamic Parameter Scaling.

    Stage 0 trains the plain backbone. Each later stage adds one LoRA adapter to every target layer; the
    last stage persists. Update counts are learner updates (``Learner.updates``).
    """

    num_stages: int = 5
    """Stage 0 plus ``num_stages - 1`` LoRA stages (1: never add adapters)."""
    min_stage0_updates: int = 2_000
    """Updates spent in stage 0 before any switch is considered (paper: DMC 10k, Atari 50k)."""
    max_stage_updates: int = 1_000
    """A stage ends after at most this many updates since the last switch (paper: DMC 5k, Atari 20k). As in
    the reference, the first switch counts from update 0, so with ``max_stage_updates <=
    min_stage0_updates`` it happens at the first check after ``min_stage0_updates``."""
    rank: int = 8
    """LoRA rank r of every adapter (paper: 64)."""
    alpha: float = 8.0
    """LoRA alpha; an adapter adds ``s_j * (alpha / r) * B A x`` (paper: DMC 1, Atari 32)."""
    dropout: float = 0.0
    """Dropout on the adapter input, in training forwards only (paper: DMC 0, Atari 0.1)."""
    target_groups: tuple[str, ...] = TARGET_GROUPS
    """Which layers get adapters, a subset of :data:`TARGET_GROUPS`."""
    scale_init: float = 1.0
    """Each adapter's learnable scale is ``s_j = scale_init + 0.2 * tanh(theta_j)``, theta_j = 0 at creation."""

    def __post_init__(self) -> None:
        for name, low in (("num_stages", 1), ("min_stage0_updates", 0), ("max_stage_updates", 1), ("rank", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if not _is_number(self.alpha) or not math.isfinite(self.alpha) or self.alpha <= 0:
            raise ValueError(f"alpha must be a finite number > 0, got {self.alpha!r}")
        if not _is_number(self.dropout) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not _is_number(self.scale_init) or not math.isfinite(self.scale_init):
            raise ValueError(f"scale_init must be a finite number, got {self.scale_init!r}")
        groups = self.target_groups
        if isinstance(groups, str) or not isinstance(groups, tuple | list):
            raise ValueError(f"target_groups must be a tuple of group names, got {groups!r}")
        unknown = [g for g in groups if g not in TARGET_GROUPS]
        if unknown:
            raise ValueError(f"unknown target group(s) {unknown}; choose from {TARGET_GROUPS}")
        if not groups or len(set(groups)) != len(groups):
            raise ValueError(f"target_groups must be non-empty without repeats, got {groups!r}")
        object.__setattr__(self, "target_groups", tuple(groups))

    @classmethod
    def paper(cls, benchmark: str, **overrides: Any) -> DPSConfig:
        """The released ScaleZero DPS settings for ``"dmc"`` or ``"atari"`` (algorithm.md 4.1)."""
        values: dict[str, Any]
        if benchmark == "dmc":
            values = {"min_stage0_updates": 10_000, "max_stage_updates": 5_000, "rank": 64, "alpha": 1.0}
        elif benchmark == "atari":
            values = {"min_stage0_updates": 50_000, "max_stage_updates": 20_000, "rank": 64, "alpha": 32.0,
                      "dropout": 0.1}
        else:
            raise ValueError(f"unknown benchmark {benchmark!r}; choose 'dmc' or 'atari'")
        return cls(num_stages=5, **{**values, **overrides})


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)
