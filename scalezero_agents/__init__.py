"""scalezero-agents: the ScaleZero multi-task planning agent (arXiv 2509.07945).

One UniZero-style transformer world model, planned with a batched C MCTS core, for many
heterogeneous tasks (Atari, DeepMind Control, Jericho, Gymnasium), usable from
Stable-Baselines3, Tianshou 2.x or the native multi-task trainer.

The heavy names (torch-based) are imported lazily, so ``import scalezero_agents`` stays cheap::

    from scalezero_agents import MultiTaskTrainer, preset
    from scalezero_adapters import make_suite
    MultiTaskTrainer(make_suite("classic"), config=preset("small", "scalezero")).train(50_000)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0.dev0"

_LAZY = {
    "Agent": "scalezero_agents.agent",
    "Actor": "scalezero_agents.agent",
    "AgentConfig": "scalezero_agents.config",
    "preset": "scalezero_agents.config",
    "MultiTaskTrainer": "scalezero_agents.training",
    "TrainerConfig": "scalezero_agents.training",
    "Callback": "scalezero_agents.training",
    "WorldModel": "scalezero_agents.model",
    "ModelConfig": "scalezero_agents.model",
    "Planner": "scalezero_agents.planner",
    "ScaleZero": "scalezero_agents.integrations.sb3",
    "DynamicParameterScaling": "scalezero_agents.dps",
    "DPSCallback": "scalezero_agents.dps",
    "DPSConfig": "scalezero_agents.dps",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'scalezero_agents' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
