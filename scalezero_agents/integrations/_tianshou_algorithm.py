"""``ScaleZeroAlgorithm``: the Tianshou 2.x off-policy algorithm that trains the agent from the trainer's buffer."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tianshou.algorithm.algorithm_base import Algorithm, OffPolicyAlgorithm, TrainingStats
from tianshou.data import Batch, ReplayBuffer
from tianshou.data.collector import BaseCollector
from tianshou.utils.torch_utils import policy_within_training_step, torch_train_mode

from scalezero_agents.agent import Agent
from scalezero_agents.dps.config import DPSConfig
from scalezero_agents.integrations._hooks import UpdateHooksAndDPS, check_task_id
from scalezero_agents.integrations._tianshou_policy import ScaleZeroPolicy
from scalezero_agents.integrations._tianshou_windows import window_batches
from scalezero_agents.learning.replay import WindowBatch

_ACTIVE_SAMPLE_ROUNDS = 32
"""Draws of ``sample_size`` indices an update makes, at most, to fill its batch with active tasks' steps."""


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


class ScaleZeroAlgorithm(UpdateHooksAndDPS, OffPolicyAlgorithm[ScaleZeroPolicy]):
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
    no Tianshou LR scheduler to fight it, and param groups added later (DPS adapters) run at the learner's
    rate. The EMA target model is a submodule, saved too.

    **Stopped tasks** (:meth:`stop_task`, e.g. solved under Dynamic Parameter Scaling; ``task_active`` is a
    saved buffer): updates sample only steps of active tasks (rejection sampling from the buffer's own
    sampler, so prioritised sampling still applies among them). The Collector still steps, searches and
    stores every env (Tianshou has no way to leave a sub-env out of a collect), so a stopped task's data keeps
    arriving but is never trained on.

    **Dynamic Parameter Scaling**: :meth:`enable_dps` attaches a controller (driven by
    :class:`scalezero_agents.dps.tianshou.TianshouDPSHook`); :meth:`state_dict` holds its config and state as
    plain data under ``"_dps"``, and :meth:`load_state_dict` re-creates the adapters and their optimiser groups
    from it before loading the optimiser and the weights, so a fresh algorithm loads a DPS checkpoint.
    Per-update hooks (:meth:`add_update_hook`) run right after every learner update.

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
        self.register_buffer("task_active", torch.ones(len(agent.specs), dtype=torch.bool), persistent=True)
        self._windows: list[tuple[np.ndarray, WindowBatch]] | None = None
        self._init_hooks()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the update hooks (they belong to a training run, e.g. a hook holding eval envs)."""
        state = dict(super().__getstate__())
        state["_update_hooks"] = []
        return state

    # ------------------------------------------------------------------ tasks, hooks, DPS
    def stop_task(self, task_id: int) -> None:
        """Stop training on task ``task_id`` for good (e.g. solved under DPS); see the class docstring."""
        self.task_active[check_task_id(task_id, len(self.task_active))] = False

    @property
    def active_tasks(self) -> list[int]:
        """Ids of the tasks still trained."""
        return [int(t) for t in torch.nonzero(self.task_active).flatten().tolist()]

    def _dps_agent(self) -> Agent:
        return self.policy.agent

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

    def update(self, buffer: ReplayBuffer, sample_size: int | None) -> TrainingStats:
        """One learner update on a batch sampled from ``buffer``; with stopped tasks, only active tasks' steps."""
        if buffer is None or bool(self.task_active.all()):
            return super().update(buffer=buffer, sample_size=sample_size)
        # Algorithm._update's orchestration, with the sample restricted to the active tasks
        if not self.policy.is_within_training_step:
            raise RuntimeError("update() must run inside a training step (tianshou's policy_within_training_step)")
        start = time.time()
        indices = self._active_indices(buffer, sample_size)
        if indices.size == 0:  # every task stopped, or no stored step of an active task yet
            stats: TrainingStats = ScaleZeroTrainingStats(
                loss=0.0, latent_loss=0.0, reward_loss=0.0, value_loss=0.0, policy_loss=0.0, policy_entropy=0.0,
                target_value=0.0, grad_norm=0.0, lr=float(self.learner.optimizer.param_groups[0]["lr"]),
                num_tasks=0)
        else:
            batch = self._preprocess_batch(buffer[indices], buffer, indices)
            with torch_train_mode(self):
                stats = self._update_with_batch(batch)
            self._postprocess_batch(batch, buffer, indices)
        for scheduler in self.lr_schedulers:
            scheduler.step()
        stats.train_time = time.time() - start
        return stats

    def _active_indices(self, buffer: ReplayBuffer, sample_size: int | None) -> np.ndarray:
        """Buffer indices of ``sample_size`` steps of active tasks (fewer if they are rare in the buffer)."""
        active = self.task_active.cpu().numpy()
        codec = self.policy.codec
        if not sample_size:  # the whole buffer
            index = buffer.sample_indices(sample_size)
            return index[active[codec.task_ids(buffer.obs, index)]]
        picked: list[np.ndarray] = []
        have = 0
        for _ in range(_ACTIVE_SAMPLE_ROUNDS):
            index = buffer.sample_indices(sample_size)
            if index.size == 0:
                break
            index = index[active[codec.task_ids(buffer.obs, index)]]
            picked.append(index)
            have += index.size
            if have >= sample_size:
                break
        return np.concatenate(picked)[:sample_size] if picked else np.zeros(0, dtype=np.int64)

    def _update_with_batch(self, batch: Batch) -> ScaleZeroTrainingStats:
        if self._windows is None:
            raise RuntimeError("_update_with_batch needs _preprocess_batch first (use algorithm.update)")
        parts, self._windows = self._windows, None
        metrics, priorities = self.learner.update([wb for _, wb in parts])
        self.learner_updates.fill_(self.learner.updates)
        self._run_update_hooks(metrics)
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

    def state_dict(self, *args: Any, destination: Any = None, prefix: str = "", keep_vars: bool = False) -> Any:
        """Tianshou's state dict (weights, buffers, optimiser); with DPS, also ``"_dps"``: its config and
        state (stage, counters, solved tasks, adapter specs) as plain data."""
        state = super().state_dict(*args, destination=destination, prefix=prefix, keep_vars=keep_vars)
        if self._dps is not None:
            state[prefix + "_dps"] = {"config": dataclasses.asdict(self._dps.config),
                                      "state": self._dps.state_dict()}
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Restore weights, target, optimiser state and the learner's update count (its LR schedule).

        A DPS state (``"_dps"``) is restored first: the adapters and their optimiser groups are re-created
        (:meth:`enable_dps` with the saved config, unless this algorithm already has an equal one), so the
        optimiser and the weights load into the same structure.
        """
        state = dict(state_dict)
        dps = state.pop("_dps", None)
        if dps is not None:
            self.enable_dps(DPSConfig(**dps["config"])).load_state_dict(dps["state"])
        elif self._dps is not None and self._dps.stage > 0:
            raise ValueError("this algorithm has DPS adapters but the state dict has no DPS state ('_dps')")
        result = super().load_state_dict(state, strict=strict, assign=assign)
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
