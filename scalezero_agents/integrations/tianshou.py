"""ScaleZero / UniZero for Tianshou 2.0.x: a ``Policy`` that searches and an ``OffPolicyAlgorithm`` that learns.

The stock ``Collector``, ``VectorReplayBuffer`` (or ``PrioritizedVectorReplayBuffer``) and ``OffPolicyTrainer``
drive everything; the agent (world model, planner, learner) does the work::

    import gymnasium as gym
    from scalezero_adapters import make_task
    from tianshou.data import Collector, VectorReplayBuffer
    from tianshou.env import DummyVectorEnv
    from tianshou.trainer import OffPolicyTrainerParams

    from scalezero_agents import preset
    from scalezero_agents.integrations.tianshou import (
        ScaleZeroAlgorithm, ScaleZeroPolicy, TemperatureSchedule, prefill)

    task = make_task("gym/CartPole-v1")
    train_envs = DummyVectorEnv([lambda: task.factory("train") for _ in range(8)])
    test_envs = DummyVectorEnv([lambda: task.factory("eval") for _ in range(10)])
    policy = ScaleZeroPolicy(tasks=[task], config=preset("small"), seed=0,
                             action_space=train_envs.action_space[0],
                             observation_space=train_envs.observation_space[0])
    algorithm = ScaleZeroAlgorithm(policy=policy)
    train = Collector(algorithm, train_envs, VectorReplayBuffer(100_000, 8))
    steps = prefill(train, 1_000)                  # Tianshou's learning_starts, by whole episodes
    algorithm.run_training(OffPolicyTrainerParams(
        training_collector=train, test_collector=Collector(algorithm, test_envs),
        max_epochs=12, epoch_num_steps=2_500, collection_step_num_env_steps=8,
        update_step_num_gradient_steps_per_sample=0.25,   # the native replay ratio
        batch_size=64, test_step_num_episodes=10,
        training_fn=TemperatureSchedule(policy, 30_000, offset=steps)))

Several tasks: one ``DummyVectorEnv(multitask_env_fns(tasks))`` of ``MultiTaskEnv`` sub-envs (Dict observations
with ``task_id``); each row is routed to its task, each update trains on one window batch per task present
(use ``batch_size = T * config.learner.batch_size`` to match the native trainer's per-task batches).

Dynamic Parameter Scaling: pass :class:`scalezero_agents.dps.tianshou.TianshouDPSHook` as ``training_fn``
(it chains another one, e.g. the ``TemperatureSchedule``); it evaluates each task, stops training solved ones
(``ScaleZeroAlgorithm.stop_task``: updates then sample only active tasks' steps) and grows the model right
after the update that ends a stage. ``algorithm.state_dict()`` holds the DPS state as plain data and
``load_state_dict`` re-creates the adapters before the weights, so a fresh algorithm loads a DPS checkpoint.

High-level API: :class:`ScaleZeroAlgorithmFactory` (plain tianshou) and ``ScaleZeroExperimentBuilder``
(imported on first access; needs ``tianshou[eval]``).

Not supported: ``collect(random=True)`` data (no search statistics), buffers without ``obs_next`` or with frame
stacks, text observations outside ``MultiTaskEnv``, action spaces other than ``Discrete`` / 1-D bounded ``Box``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scalezero_agents.integrations._tianshou_algorithm import (
    ScaleZeroAlgorithm,
    ScaleZeroTrainingStats,
    TemperatureSchedule,
    prefill,
    seed_buffer,
)
from scalezero_agents.integrations._tianshou_highlevel import ScaleZeroAlgorithmFactory, TemperatureCallback
from scalezero_agents.integrations._tianshou_policy import ScaleZeroPolicy, make_agent
from scalezero_agents.integrations._tianshou_windows import window_batches

if TYPE_CHECKING:
    from scalezero_agents.integrations._tianshou_experiment import ScaleZeroExperimentBuilder

__all__ = [
    "ScaleZeroAlgorithm",
    "ScaleZeroAlgorithmFactory",
    "ScaleZeroExperimentBuilder",
    "ScaleZeroPolicy",
    "ScaleZeroTrainingStats",
    "TemperatureCallback",
    "TemperatureSchedule",
    "make_agent",
    "prefill",
    "seed_buffer",
    "window_batches",
]


def __getattr__(name: str) -> Any:
    if name == "ScaleZeroExperimentBuilder":
        try:
            from scalezero_agents.integrations._tianshou_experiment import ScaleZeroExperimentBuilder
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(f"ScaleZeroExperimentBuilder needs tianshou.highlevel.experiment, which needs "
                                      f"the tianshou[eval] extra (missing: {exc.name})") from exc
        return ScaleZeroExperimentBuilder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
