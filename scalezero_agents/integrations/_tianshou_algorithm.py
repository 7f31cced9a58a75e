"""``ScaleZeroAlgorithm``: the Tianshou 2.x off-policy algorithm that trains the agent from the trainer's buffer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tianshou.algorithm.algorithm_base import Algorithm, OffPolicyAlgorithm, TrainingStats
from tianshou.data import Batch, ReplayBuffer
from tianshou.data.collector import BaseCollector
from tianshou.utils.torch_utils import policy_within_training_step

from scalezero_agents.integrations._tianshou_policy import ScaleZeroPolicy
from scalezero_agents.integrations._tianshou_windows import window_batches
from scalezero_agents.learning.replay import WindowBatch


@dataclass(kw_only=True)
class ScaleZeroTrainingStats(TrainingStats):
    """One learner update (Tianshou logs every public field as ``update/<name>``).

    The term losses are means over the tasks in the batch; ``_metrics`` keeps the learner's per-task metrics.
    """

    loss: float
    latent_loss: float
    reward_loss: float
    value_loss: float
    policy_loss: float
    policy_entropy: float
    target_value: float
    grad_norm: float
    lr: float
    num_tasks: int
    _metrics: dict[str, float] = field(default_factory=dict)


class ScaleZeroAlgorithm(OffPolicyAlgorithm[ScaleZeroPolicy]):
    """Trains a :class:`ScaleZeroPolicy`'s agent from the Tianshou trainer's replay buffer.

    Each update turns the sampled buffer indices into the learner's training windows
    (``_preprocess_batch``: ``H = config.model.train_steps`` steps unrolled with ``buffer.next``, masks at
    terminations, truncations, the newest stored step and spliced episodes, n-step plans with
    ``n = config.replay.td_steps``), one :class:`WindowBatch` per task present, and runs one step of the
    agent's :class:`~scalezero_agents.learning.learner.Learner` on them (``_update_with_batch``: UniZero losses,
    AdamW, gradient clipping, EMA target). ``batch.weight`` carries the new priorities ``|V - z|`` back to a
    ``PrioritizedVectorReplayBuffer`` (whose importance weights the losses use); other buffers ignore it.

    The learner owns its optimiser (AdamW with its learning rate and schedule from ``config.learner``); it
    is registered with Tianshou only so that :meth:`state_dict` saves it: there is no ``OptimizerFactory`` and
    no Tianshou LR scheduler to fight it. The EMA target model is a submodule, saved too.

    Args:
        policy: the policy whose agent is trained.
    """

    def __init__(self, *, policy: ScaleZeroPolicy) -> None:
        super().__init__(policy=policy)
        agent = policy.agent
        self.learner = agent.learner
        self.target_model = agent.learner.target
        self.window = agent.config.model.train_steps
        self.td_steps = agent.config.replay.td_steps
        self._optimizers.append(Algorithm.Optimizer(agent.learner.optimizer, agent.model))
        self.register_buffer("learner_updates", torch.zeros((), dtype=torch.long), persistent=True)
        self._windows: list[tuple[np.ndarray, WindowBatch]] | None = None

    def train(self, mode: bool = True) -> ScaleZeroAlgorithm:
        """Switch the online model's mode; the EMA target stays in eval mode."""
        super().train(mode)
        self.target_model.eval()
        return self

    def _preprocess_batch(self, batch: Batch, buffer: ReplayBuffer, indices: np.ndarray) -> Batch:
        weights = np.asarray(batch.weight, np.float32) if "weight" in batch.get_keys() else None
        self._windows = window_batches(buffer, indices, codec=self.policy.codec, window=self.window,
                                       td_steps=self.td_steps, weights=weights)
        return batch

    def _update_with_batch(self, batch: Batch) -> ScaleZeroTrainingStats:
        if self._windows is None:
            raise RuntimeError("_update_with_batch needs _preprocess_batch first (use algorithm.update)")
        parts, self._windows = self._windows, None
        metrics, priorities = self.learner.update([wb for _, wb in parts])
        self.learner_updates.fill_(self.learner.updates)
        new_weight = np.zeros(len(batch), dtype=np.float64)
        for (rows, _), pr in zip(parts, priorities, strict=True):
            new_weight[rows] = pr
        batch.weight = new_weight
        return self._stats(metrics, [self.policy.codec.specs[wb.task_id].name for _, wb in parts])

    @staticmethod
    def _stats(metrics: Mapping[str, float], names: list[str]) -> ScaleZeroTrainingStats:
        def mean(term: str) -> float:
            return float(np.mean([metrics[f"{name}/{term}"] for name in names]))

        return ScaleZeroTrainingStats(
            loss=float(metrics["loss"]), latent_loss=mean("latent"), reward_loss=mean("reward"),
            value_loss=mean("value"), policy_loss=mean("policy"), policy_entropy=mean("entropy"),
            target_value=mean("target_value"), grad_norm=float(metrics["grad_norm"]), lr=float(metrics["lr"]),
            num_tasks=len(names), _metrics=dict(metrics))

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Restore weights, target, optimiser state and the learner's update count (its LR schedule)."""
        result = super().load_state_dict(dict(state_dict), strict=strict, assign=assign)
        self.learner.updates = int(self.learner_updates)
        return result


class TemperatureSchedule:
    """A ``training_fn`` that follows the native trainer's exploration temperature schedule.

    ``config.temperature`` maps training progress (env steps / ``total_env_steps``) to the visit-count
    temperature of exploring actions; ``offset`` adds env steps collected before the trainer started
    (e.g. by :func:`prefill`). Module-level and picklable (the high-level API pickles callbacks).
    """

    def __init__(self, policy: ScaleZeroPolicy, total_env_steps: int, *, offset: int = 0) -> None:
        if total_env_steps < 1:
            raise ValueError(f"total_env_steps must be >= 1, got {total_env_steps}")
        self.policy, self.total, self.offset = policy, int(total_env_steps), int(offset)

    def __call__(self, epoch: int, env_step: int) -> None:
        self.policy.set_progress((env_step + self.offset) / self.total)


def prefill(collector: BaseCollector, env_steps: int) -> int:
    """Collect whole episodes with the exploring policy until at least ``env_steps`` steps are stored.

    Tianshou has no ``learning_starts``; this is its counterpart that never leaves an interrupted episode
    behind (integration.md E4). The collector is reset first. Returns the number of env steps collected.
    """
    collector.reset(reset_buffer=False)
    done = 0
    with policy_within_training_step(collector.policy):
        while done < env_steps:
            done += collector.collect(n_episode=collector.env_num).n_collected_steps
    return done


def seed_buffer(buffer: ReplayBuffer, seed: int) -> None:
    """Seed a Tianshou buffer's sampling streams (integration.md E9: a vector buffer's manager is always
    seeded 42, whatever ``random_seed`` its sub-buffers got, so runs would share one sampling sequence).

    Prioritised buffers draw from NumPy's global stream; seed it with ``np.random.seed``.
    """
    buffer._random_state = np.random.RandomState(seed)
    for i, sub in enumerate(getattr(buffer, "buffers", ())):
        sub._random_state = np.random.RandomState(seed + 1 + i)
