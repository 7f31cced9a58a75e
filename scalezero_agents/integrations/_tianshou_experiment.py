"""``ScaleZeroExperimentBuilder``: ScaleZero in ``tianshou.highlevel.experiment`` (needs ``tianshou[eval]``)."""

from __future__ import annotations

from collections.abc import Sequence

from scalezero_adapters import Task, TaskSpec
from tianshou.highlevel.config import OffPolicyTrainingConfig
from tianshou.highlevel.env import EnvFactory
from tianshou.highlevel.experiment import ExperimentConfig, OffPolicyExperimentBuilder

from scalezero_agents.config import AgentConfig
from scalezero_agents.integrations._tianshou_highlevel import ScaleZeroAlgorithmFactory, TemperatureCallback


class ScaleZeroExperimentBuilder(OffPolicyExperimentBuilder):
    """Tianshou experiment builder for ScaleZero (installs :class:`TemperatureCallback`).

    Args:
        env_factory: Tianshou ``EnvFactory``; its envs must match ``tasks``.
        tasks: the agent's tasks (``Task`` or ``TaskSpec``).
        config: the agent configuration (``scalezero_agents.preset(...)``).
        seed: agent seed (model initialisation, search).
        experiment_config, training_config: as for any ``OffPolicyExperimentBuilder``.
    """

    def __init__(self, env_factory: EnvFactory, *, tasks: Sequence[Task | TaskSpec], config: AgentConfig,
                 seed: int = 0, experiment_config: ExperimentConfig | None = None,
                 training_config: OffPolicyTrainingConfig | None = None) -> None:
        super().__init__(env_factory, experiment_config, training_config)
        self._tasks, self._agent_config, self._agent_seed = list(tasks), config, seed
        tc = self._training_config
        self.with_epoch_train_callback(TemperatureCallback(tc.max_epochs * tc.epoch_num_steps))

    def _create_algorithm_factory(self) -> ScaleZeroAlgorithmFactory:
        return ScaleZeroAlgorithmFactory(self._training_config, self._get_optim_factory(), tasks=self._tasks,
                                         config=self._agent_config, seed=self._agent_seed)
