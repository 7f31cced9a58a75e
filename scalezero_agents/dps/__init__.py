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

Any other loop drives :class:`DynamicParameterScaling` on an :class:`~scalezero_agents.agent.Agent`
(``report_eval``, ``step``, ``state_dict`` / ``load_state_dict``).
"""

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

__all__ = [
    "SCALE_SPAN",
    "TARGET_GROUPS",
    "AdapterSpec",
    "DPSCallback",
    "DPSConfig",
    "DynamicParameterScaling",
    "ParamCount",
    "ScaledLoRAB",
    "add_adapter",
    "find_targets",
    "set_stage_trainable",
    "tasks_per_stage",
]
