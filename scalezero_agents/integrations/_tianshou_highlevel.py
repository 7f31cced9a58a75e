"""ScaleZero in Tianshou's high-level API (``tianshou.highlevel``): an algorithm factory and an experiment builder.

Tianshou 2.0.1 has no algorithm registry; a custom algorithm plugs in through an ``OffPolicyAlgorithmFactory``
(this module, importable with plain ``tianshou``) and an ``OffPolicyExperimentBuilder`` whose
``_create_algorithm_factory`` returns it (``_tianshou_experiment.ScaleZeroExperimentBuilder``; importing
``tianshou.highlevel.experiment`` needs the ``tianshou[eval]`` extra: joblib, rliable, ...).

What the high-level API does not fit, and how it is handled:

* its ``OptimizerFactoryFactory`` is ignored: the agent's learner owns AdamW (``config.learner``);
* ``start_timesteps`` pre-fills with ``collect(n_step=...)`` outside a training step (greedy search) and the
  trainer then resets the collectors, interrupting episodes; the windows treat a broken link as the end of a
  segment, so nothing is spliced, but ``start_timesteps_random=True`` must stay off (no search statistics);
* the exploration temperature follows the native schedule through :class:`TemperatureCallback`, which the
  builder installs (total steps = ``max_epochs * epoch_num_steps``).

Everything here is module-level and picklable (``Experiment.save`` pickles factories and callbacks).
"""

from __future__ import annotations

from collections.abc import Sequence

from scalezero_adapters import Task, TaskSpec
from tianshou.highlevel.algorithm import OffPolicyAlgorithmFactory
from tianshou.highlevel.config import OffPolicyTrainingConfig
from tianshou.highlevel.env import Environments
from tianshou.highlevel.module.core import TDevice
from tianshou.highlevel.params.optim import OptimizerFactoryFactory
from tianshou.highlevel.trainer import EpochTrainCallback, TrainingContext

from scalezero_agents.config import AgentConfig
from scalezero_agents.integrations._tianshou_algorithm import ScaleZeroAlgorithm
from scalezero_agents.integrations._tianshou_policy import ScaleZeroPolicy


class ScaleZeroAlgorithmFactory(OffPolicyAlgorithmFactory):
    """Builds a :class:`ScaleZeroAlgorithm` for the experiment's envs.

    Args:
        training_config: Tianshou's off-policy training configuration.
        optim_factory: required by the base class; ignored (the learner owns its optimiser).
        tasks: the agent's tasks (``Task`` or ``TaskSpec``) matching the envs' spaces.
        config: the agent configuration; its ``device`` is replaced by the experiment's.
        seed: model initialisation and search seed.
    """

    def __init__(self, training_config: OffPolicyTrainingConfig, optim_factory: OptimizerFactoryFactory, *,
                 tasks: Sequence[Task | TaskSpec], config: AgentConfig, seed: int = 0) -> None:
        super().__init__(training_config, optim_factory)
        self.tasks, self.config, self.seed = list(tasks), config, seed

    def _create_algorithm(self, envs: Environments, device: TDevice) -> ScaleZeroAlgorithm:
        config = self.config if device is None else self.config.replace(device=str(device))
        policy = ScaleZeroPolicy(action_space=envs.get_action_space(), observation_space=envs.get_observation_space(),
                                 tasks=self.tasks, config=config, seed=self.seed)
        return ScaleZeroAlgorithm(policy=policy)


class TemperatureCallback(EpochTrainCallback):
    """Sets the policy's exploration temperature from ``env_step / total_env_steps`` (the native schedule)."""

    def __init__(self, total_env_steps: int) -> None:
        if total_env_steps < 1:
            raise ValueError(f"total_env_steps must be >= 1, got {total_env_steps}")
        self.total_env_steps = int(total_env_steps)

    def callback(self, epoch: int, env_step: int, context: TrainingContext) -> None:
        policy = context.algorithm.policy
        if not isinstance(policy, ScaleZeroPolicy):
            raise TypeError(f"TemperatureCallback needs a ScaleZeroPolicy, got {type(policy).__name__}")
        policy.set_progress(env_step / self.total_env_steps)
