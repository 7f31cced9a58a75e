"""Dynamic Parameter Scaling: LoRA adapters added stage by stage as tasks get solved (algorithm.md 4).

Stage 0 trains the plain model. Each later stage adds one LoRA adapter (peft) to the transformer's
attention projections and expert (or dense feed-forward) layers, freezes the transformer's base weights and
the earlier adapters, and keeps training the new adapter, the earlier adapters' scales, the encoders,
embeddings and heads. Solved tasks stop collecting and training.

Native trainer::

    from scalezero_agents import MultiTaskTrainer, preset
    from scalezero_agents.dps import DPSCallback, DPSConfig
    from scalezero_adapters import make_suite

    dps = DPSCallback(DPSConfig(min_stage0_updates=2_000, max_stage_updates=1_000))
    trainer = MultiTaskTrainer(make_suite("classic"), config=preset("small", "scalezero"), callbacks=[dps])
    trainer.train(env_steps_per_task=20_000)
    dps.controller.stage, dps.controller.solved, dps.controller.num_parameters()

Stable-Baselines3 (:mod:`scalezero_agents.dps.sb3`) and Tianshou (:mod:`scalezero_agents.dps.tianshou`) glues
over the same controller; both stop training solved tasks and save the stage and adapters with the model::

    from scalezero_agents.dps.sb3 import SB3DPSCallback              # ScaleZero (SB3) callback
    model.learn(200_000, callback=SB3DPSCallback(DPSConfig(), eval_freq=10_000))

    from scalezero_agents.dps.tianshou import TianshouDPSHook         # ScaleZeroAlgorithm training_fn
    algorithm.run_training(OffPolicyTrainerParams(..., training_fn=TianshouDPSHook(algorithm, tasks=tasks)))

They are also importable from here (``SB3DPSCallback``, ``TianshouDPSHook``) on first access, so importing
this package needs neither SB3 nor Tianshou.

Any other loop drives :class:`DynamicParameterScaling` on an :class:`~scalezero_agents.agent.Agent`
(``report_eval``, ``step``, ``state_dict`` / ``load_state_dict``).
"""

from typing import TYPE_CHECKING, Any

from scalezero_agents.dps.callbacks import DPSCallback
from scalezero_agents.dps.config import TARGET_GROUPS, DPSConfig
from scalezero_agents.dps.controller import DynamicParameterScaling, ParamCount, tasks_per_stage
from scalezero_agents.dps.lora import (
    SCALE_SPAN,
    AdapterSpec,
    ScaledLoRAB,
    add_adapter,
    find_targets,
    set_stage_trainable,
)

if TYPE_CHECKING:
    from scalezero_agents.dps.sb3 import SB3DPSCallback
    from scalezero_agents.dps.tianshou import TianshouDPSHook

__all__ = [
    "SCALE_SPAN",
    "TARGET_GROUPS",
    "AdapterSpec",
    "DPSCallback",
    "DPSConfig",
    "DynamicParameterScaling",
    "ParamCount",
    "SB3DPSCallback",
    "ScaledLoRAB",
    "TianshouDPSHook",
    "add_adapter",
    "find_targets",
    "set_stage_trainable",
    "tasks_per_stage",
]


_LAZY = {"SB3DPSCallback": "scalezero_agents.dps.sb3", "TianshouDPSHook": "scalezero_agents.dps.tianshou"}


def __getattr__(name: str) -> Any:
    """The SB3 / Tianshou glues, imported on first access (they need stable-baselines3 / tianshou)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
