"""Search configuration: one frozen, validated dataclass shared by the C core and the reference."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

SearchMode = Literal["puct", "sampled", "gumbel"]
InteriorSelection = Literal["puct", "deterministic"]
UnvisitedValue = Literal["parent", "zero"]


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """Parameters of one batched MCTS.

    Defaults follow MuZero / UniZero (``c1=1.25``, ``c2=19652``, Dirichlet 0.3 x 0.25, min-max floor
    0.01), Sampled MuZero (``num_samples=20``) and Gumbel MuZero (16 considered actions,
    ``c_visit=50``, ``c_scale=0.1``).
    """

    mode: SearchMode = "puct"
    """``"puct"`` (MuZero, discrete), ``"sampled"`` (Sampled MuZero, continuous) or ``"gumbel"``
    (Gumbel MuZero root search, discrete)."""
    num_simulations: int = 50
    """Simulations per search; each creates exactly one node, so a tree holds this + 1 nodes."""
    c1: float = 1.25
    """pUCT exploration constant added to the log term."""
    c2: float = 19652.0
    """pUCT base of the visit-dependent log term."""
    discount: float = 0.997
    """Discount applied to rewards and values inside the search."""
    value_floor: float = 0.01
    """Floor of the min-max normaliser's denominator."""
    unvisited_value: UnvisitedValue = "parent"
    """Normalised Q of unvisited children in pUCT: ``"parent"`` (the parent's mean value; default,
    measured to explore far better, see ``csrc/mcts.c``) or ``"zero"`` (the MuZero pseudocode)."""
    dirichlet_alpha: float = 0.3
    """Concentration of the root Dirichlet noise (pUCT and sampled modes, when ``noise=True``)."""
    dirichlet_fraction: float = 0.25
    """Weight of the Dirichlet noise mixed into the root priors."""
    num_samples: int = 20
    """Sampled mode: actions K sampled at every expanded node."""
    max_considered: int = 16
    """Gumbel mode: root actions considered by Gumbel-top-k before sequential halving."""
    c_visit: float = 50.0
    """Gumbel mode: sigma(q) = (c_visit + max visits) * c_scale * q."""
    c_scale: float = 0.1
    """Gumbel mode: see ``c_visit``."""
    interior: InteriorSelection = "deterministic"
    """Gumbel mode: selection below the root (the paper's deterministic rule, or pUCT)."""

    def __post_init__(self) -> None:
        if self.mode not in ("puct", "sampled", "gumbel"):
            raise ValueError(f"mode must be 'puct', 'sampled' or 'gumbel', got {self.mode!r}")
        if self.unvisited_value not in ("parent", "zero"):
            raise ValueError(f"unvisited_value must be 'parent' or 'zero', got {self.unvisited_value!r}")
        if self.interior not in ("puct", "deterministic"):
            raise ValueError(f"interior must be 'puct' or 'deterministic', got {self.interior!r}")
        for name in ("num_simulations", "num_samples", "max_considered"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        checks = {
            "c1": lambda v: v >= 0.0,
            "c2": lambda v: v > 0.0,
            "discount": lambda v: 0.0 <= v <= 1.0,
            "value_floor": lambda v: v > 0.0,
            "dirichlet_alpha": lambda v: v > 0.0,
            "dirichlet_fraction": lambda v: 0.0 <= v <= 1.0,
            "c_visit": lambda v: v >= 0.0,
            "c_scale": lambda v: v >= 0.0,
        }
        for name, ok in checks.items():
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or not ok(value):
                raise ValueError(f"{name}={value!r} is out of range")
