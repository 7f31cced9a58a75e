"""Agent configuration: one validated dataclass per component, composed, with named presets.

Presets (``tiny`` for tests, ``small`` for CPU benchmarks, ``paper`` for the paper's sizes on a GPU)
combine with a variant: ``unizero`` (dense feed-forward; the single-task agent) or ``scalezero``
(Mixture-of-Experts feed-forward with a trained router; the multi-task agent). Every value lives in one
place: the window length H is ``model.train_steps``, discounts come from the tasks' specs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from scalezero_agents.learning.learner import LearnerConfig
from scalezero_agents.learning.replay import ReplayConfig
from scalezero_agents.model.config import ModelConfig
from scalezero_agents.search import SearchConfig

PRESETS = ("tiny", "small", "paper")
ContinuousSearch = Literal["sampled", "gumbel"]
VARIANTS = ("unizero", "scalezero")


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    """Everything the agent needs: model, learner, replay, search and acting settings."""

    model: ModelConfig = field(default_factory=ModelConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    search: SearchConfig = field(default_factory=lambda: SearchConfig(num_simulations=25))
    """Collection search (``mode`` applies to discrete tasks; continuous tasks use sampled search;
    ``discount`` is ignored: each task's spec gives it)."""
    continuous_search: ContinuousSearch = "sampled"
    """How continuous tasks search: ``"sampled"`` (Sampled MuZero, the reference) or ``"gumbel"`` (Gumbel
    sequential halving over ``search.num_samples`` policy samples per node, completed-Q policy targets;
    see :mod:`scalezero_agents.planner`)."""
    eval_simulations: int = 50
    """Simulations per search when evaluating."""
    root_context: int = 4
    """Real steps of context (the current observation included) the roots are searched from. The
    search can then go ``model.context_steps - root_context`` steps deep before its window slides
    (sliding recomputes the window; it stays exact but costs a full forward)."""
    temperature: tuple[tuple[float, float], ...] = ((0.5, 1.0), (0.75, 0.5), (1.0, 0.25))
    """Collection visit-count temperature by training progress: ``(progress up to, T)`` pairs."""
    device: str = "cpu"
    """Torch device; ``"auto"`` picks CUDA when available."""

    def __post_init__(self) -> None:
        for name, kind in (("model", ModelConfig), ("learner", LearnerConfig), ("replay", ReplayConfig),
                           ("search", SearchConfig)):
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"{name} must be a {kind.__name__}, got {type(getattr(self, name)).__name__}")
        if self.continuous_search not in ("sampled", "gumbel"):
            raise ValueError(f"continuous_search must be 'sampled' or 'gumbel', got {self.continuous_search!r}")
        if not isinstance(self.eval_simulations, int) or self.eval_simulations < 1:
            raise ValueError(f"eval_simulations must be a positive int, got {self.eval_simulations!r}")
        if not isinstance(self.root_context, int) or not 1 <= self.root_context <= self.model.context_steps:
            raise ValueError(f"root_context must be an int in [1, model.context_steps={self.model.context_steps}], "
                             f"got {self.root_context!r}")
        if not self.temperature or any(len(p) != 2 for p in self.temperature):
            raise ValueError("temperature must be a non-empty tuple of (progress, T) pairs")
        bounds = [p for p, _ in self.temperature]
        if bounds != sorted(bounds) or not math.isclose(bounds[-1], 1.0) or any(t < 0 for _, t in self.temperature):
            raise ValueError(f"temperature progress bounds must increase to 1.0 and T >= 0, got {self.temperature}")

    def collect_temperature(self, progress: float) -> float:
        """The visit-count temperature at training progress in [0, 1]."""
        for bound, t in self.temperature:
            if progress < bound:
                return t
        return self.temperature[-1][1]

    def replace(self, **changes: Any) -> AgentConfig:
        """A copy with top-level fields or ``"component.field"`` keys replaced (unknown keys are errors)."""
        top: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        for key, value in changes.items():
            part, _, sub = key.partition(".")
            if part not in {f.name for f in dataclasses.fields(self)}:
                raise ValueError(f"unknown config key {key!r}")
            if sub:
                nested.setdefault(part, {})[sub] = value
            else:
                top[part] = value
        for part, subs in nested.items():
            component = top.get(part, getattr(self, part))
            names = {f.name for f in dataclasses.fields(component)}
            unknown = set(subs) - names
            if unknown:
                raise ValueError(f"unknown config key(s) {sorted(f'{part}.{u}' for u in unknown)}")
            top[part] = dataclasses.replace(component, **subs)
        return dataclasses.replace(self, **top)


def preset(name: str = "tiny", variant: str = "unizero", **overrides: Any) -> AgentConfig:
    """A named configuration, optionally changed by ``"component.field"`` overrides.

    Args:
        name: ``"tiny"`` (tests: seconds), ``"small"`` (CPU benchmarks: minutes) or ``"paper"`` (the
            paper's sizes: D 768, 4 layers, 24 heads; GPU).
        variant: ``"unizero"`` (dense FFN) or ``"scalezero"`` (MoE FFN: 8 experts top-1 plus a shared
            expert, trained router).
        overrides: e.g. ``{"learner.learning_rate": 3e-4, "search.num_simulations": 16}``.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {PRESETS}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")
    moe = {"ffn": "moe", "num_experts": 8, "experts_per_token": 1, "shared_expert": True}
    if name == "tiny":
        model = ModelConfig(embed_dim=64, num_layers=2, num_heads=2, context_steps=5, train_steps=5,
                            conv_channels=16, **({**moe, "num_experts": 4} if variant == "scalezero" else {}))
        cfg = AgentConfig(model=model, learner=LearnerConfig(batch_size=32, learning_rate=3e-4),
                          replay=ReplayConfig(capacity=20_000, td_steps=5),
                          search=SearchConfig(num_simulations=16), eval_simulations=16, root_context=2)
    elif name == "small":
        model = ModelConfig(embed_dim=64, num_layers=2, num_heads=2, context_steps=5, train_steps=5,
                            conv_channels=32, **(moe if variant == "scalezero" else {}))
        # lr 3e-4: on CartPole, Acrobot and DMC cartpole balance/swingup it reached every target sooner than
        # 1e-4 on every seed tried (README, "Learning benchmark"); 1e-4 left continuous control near random.
        cfg = AgentConfig(model=model, learner=LearnerConfig(batch_size=64, learning_rate=3e-4),
                          replay=ReplayConfig(capacity=100_000, td_steps=5),
                          search=SearchConfig(num_simulations=16), eval_simulations=16, root_context=2)
    else:
        model = ModelConfig(embed_dim=768, num_layers=4, num_heads=24, context_steps=10, train_steps=10,
                            conv_channels=64, support_scale=50, **moe)
        if variant == "unizero":
            model = dataclasses.replace(model, ffn="dense")
        cfg = AgentConfig(model=model, learner=LearnerConfig(batch_size=64, learning_rate=1e-4),
                          replay=ReplayConfig(capacity=500_000, td_steps=5),
                          search=SearchConfig(num_simulations=50), eval_simulations=50, device="auto")
    return cfg.replace(**overrides) if overrides else cfg
