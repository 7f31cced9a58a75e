"""Stable-Baselines3 integration: :class:`ScaleZero`, an ``OffPolicyAlgorithm`` over the framework-free agent.

>>> from scalezero_agents.integrations.sb3 import ScaleZero
>>> model = ScaleZero("MlpPolicy", "CartPole-v1", preset="tiny", seed=0)
>>> model.learn(5_000)  # doctest: +SKIP
>>> model.save("cartpole.zip"); model = ScaleZero.load("cartpole.zip")  # doctest: +SKIP

The glue is thin; what it does, and where SB3's defaults would go wrong for a planning agent:

* **Acting** goes through one persistent training :class:`~scalezero_agents.agent.Actor` (one row per
  (sub-env, task) pair, with its real recent context) under ``torch.no_grad``; the search is used from the
  first step (no random warm-up), at the collection temperature of the native trainer's schedule.
  ``predict`` (``evaluate_policy``, ``EvalCallback``) searches with fresh greedy actors and never touches it.
* **Storing**: each step goes to the agent's replay with its search statistics, taken when the action was
  chosen. SB3's same-step auto-reset is undone: an episode ends with ``infos[i]["terminal_observation"]``,
  terminal unless ``TimeLimit.truncated``. Whenever SB3 resets the env (a new ``learn`` with
  ``reset_num_timesteps=True``, after ``load``/``set_env``, after a callback stopped training between acting
  and storing) the unfinished episodes are closed as truncated, so no two episodes are ever spliced.
* **Learning** follows the native trainer's fixed replay ratio: after every vector step, the learner catches
  up to ``replay_ratio`` updates per env step per task, counted from ``learning_starts``.
* **Learning rate**: the learner owns its optimiser and schedule (``learner.lr_schedule``); SB3's
  ``_update_learning_rate``, which overwrites every param group, only logs it here, so param groups added
  later (DPS adapters) run at the learner's rate too.
* **Stopping a task** (:meth:`ScaleZero.stop_task`, e.g. solved under Dynamic Parameter Scaling): its steps
  are no longer searched, stored or trained on. SB3's ``VecEnv`` steps every sub-env at every vector step, so
  a sub-env running a stopped task keeps stepping, with uniformly random (legal) actions whose transitions are
  discarded; ``task_env_steps`` counts the steps stored per task.
* **Dynamic Parameter Scaling**: :meth:`ScaleZero.enable_dps` attaches a
  :class:`~scalezero_agents.dps.DynamicParameterScaling` controller (driven by
  :class:`scalezero_agents.dps.sb3.SB3DPSCallback`); ``save`` stores its stage, adapter specs and counters as
  plain data, and ``load`` re-creates the adapters (and their optimiser groups) before it loads the weights.
  Per-update hooks (:meth:`ScaleZero.add_update_hook`) run right after every learner update.
"""

from __future__ import annotations

import dataclasses
import io
import math
import pathlib
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch as th
from gymnasium import spaces
from scalezero_adapters import MultiTaskLayout, TaskSpec
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.save_util import load_from_pkl
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback
from stable_baselines3.common.vec_env import VecEnv

from scalezero_agents.agent import Actor, Agent
from scalezero_agents.config import AgentConfig
from scalezero_agents.config import preset as make_preset
from scalezero_agents.dps.config import DPSConfig
from scalezero_agents.dps.controller import DynamicParameterScaling
from scalezero_agents.integrations._hooks import UpdateHooksAndDPS, check_task_id
from scalezero_agents.integrations._sb3_buffer import ScaleZeroReplayBuffer
from scalezero_agents.integrations._sb3_policy import (
    CnnPolicy,
    MlpPolicy,
    MultiInputPolicy,
    PredictState,
    ScaleZeroPolicy,
)
from scalezero_agents.integrations._sb3_spaces import DEFAULT_DISCOUNT, env_layout, spec_from_env

__all__ = [
    "CnnPolicy",
    "MlpPolicy",
    "MultiInputPolicy",
    "PredictState",
    "ScaleZero",
    "ScaleZeroPolicy",
    "ScaleZeroReplayBuffer",
    "spec_from_env",
]

SelfScaleZero = TypeVar("SelfScaleZero", bound="ScaleZero")

class ScaleZero(UpdateHooksAndDPS, OffPolicyAlgorithm):
    """ScaleZero / UniZero (MCTS over a transformer world model) as a Stable-Baselines3 algorithm.

    Args:
        policy: ``"MlpPolicy"`` (1-D Box observations), ``"CnnPolicy"`` (images) or ``"MultiInputPolicy"``
            (a vector env of ``scalezero_adapters.MultiTaskEnv``: each sub-env routed to its task by
            ``obs["task_id"]``), or a :class:`ScaleZeroPolicy` subclass.
        env: the env, its registered id, or a ``VecEnv`` (several sub-envs are acted on in one batched search).
        preset: ``"tiny"``, ``"small"`` or ``"paper"`` (see :func:`scalezero_agents.config.preset`).
        variant: ``"unizero"`` (dense) or ``"scalezero"`` (MoE); default: ``scalezero`` for several tasks.
        config: a full :class:`AgentConfig` instead of ``preset``/``variant``.
        config_overrides: ``{"component.field": value}`` applied on top, e.g. ``{"search.num_simulations": 8}``.
        learning_starts: env steps (summed over sub-envs) before the first update.
        replay_ratio: learner updates per env step per task (each update trains on one batch of every task).
        train_freq: vector steps between two learning phases (each catches up with ``replay_ratio``).
        learning_rate: shortcut for ``learner.learning_rate`` (a float; schedules are ``learner.lr_schedule``).
        buffer_size: shortcut for ``replay.capacity`` (transitions kept **per task**).
        batch_size: shortcut for ``learner.batch_size`` (windows per task per update).
        gamma: discount of every task (default: 0.997, or each ``MultiTaskEnv`` task's own).
        reanalyze_interval: learner updates between reanalysis passes (0: off).
        reanalyze_steps: stored steps per task each reanalysis pass refreshes.
        policy_kwargs: extra keyword arguments of a custom policy class.
        stats_window_size: episodes averaged in the rollout logs.
        tensorboard_log: TensorBoard log directory (None: none).
        verbose: 0 silent, 1 info, 2 debug.
        seed: seeds SB3 (python, NumPy, torch, env) and the agent (model initialisation, replay sampling,
            search streams).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MlpPolicy, "CnnPolicy": CnnPolicy, "MultiInputPolicy": MultiInputPolicy}
    policy: ScaleZeroPolicy
    replay_buffer: ScaleZeroReplayBuffer

    def __init__(
        self,
        policy: str | type[ScaleZeroPolicy],
        env: GymEnv | str | None,
        *,
        preset: str = "small",
        variant: str | None = None,
        config: AgentConfig | None = None,
        config_overrides: dict[str, Any] | None = None,
        learning_starts: int = 1_000,
        replay_ratio: float = 0.25,
        train_freq: int = 1,
        learning_rate: float | None = None,
        buffer_size: int | None = None,
        batch_size: int | None = None,
        gamma: float | None = None,
        reanalyze_interval: int = 0,
        reanalyze_steps: int = 160,
        policy_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        if learning_rate is not None and (callable(learning_rate) or not isinstance(learning_rate, int | float)):
            raise ValueError("learning_rate must be a float; schedules are config_overrides "
                             "{'learner.lr_schedule': 'cosine'}")
        if not isinstance(replay_ratio, int | float) or not 0 < replay_ratio <= 64:
            raise ValueError(f"replay_ratio must be in (0, 64], got {replay_ratio!r}")
        for name, value, minimum in (("train_freq", train_freq, 1), ("learning_starts", learning_starts, 0),
                                     ("reanalyze_interval", reanalyze_interval, 0),
                                     ("reanalyze_steps", reanalyze_steps, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
        super().__init__(
            policy, env, learning_rate=learning_rate or 0.0, buffer_size=buffer_size or 0,
            learning_starts=learning_starts, batch_size=batch_size or 0, tau=1.0, gamma=gamma or DEFAULT_DISCOUNT,
            train_freq=(train_freq, "step"), gradient_steps=-1, replay_buffer_class=ScaleZeroReplayBuffer,
            policy_kwargs=policy_kwargs, stats_window_size=stats_window_size, tensorboard_log=tensorboard_log,
            verbose=verbose, device=device, support_multi_env=True, seed=seed, sde_support=False,
            supported_action_spaces=(spaces.Discrete, spaces.Box))
        self.preset, self.variant = preset, variant
        self.config_overrides = dict(config_overrides or {})
        self.replay_ratio = float(replay_ratio)
        self.reanalyze_interval, self.reanalyze_steps = reanalyze_interval, reanalyze_steps
        self.agent_config: AgentConfig | None = None
        self.task_specs: tuple[TaskSpec, ...] = ()
        self.layout: MultiTaskLayout | None = None
        self.agent_seed: int | None = None
        self._rings: np.ndarray | None = None
        self._update_base = 0
        self._actor: Actor | None = None
        self._pending: tuple[np.ndarray, Any, np.ndarray] | None = None
        self.task_active: np.ndarray | None = None
        """[T] bool: the tasks still collected and trained (see :meth:`stop_task`)."""
        self.task_env_steps: np.ndarray | None = None
        """[T] int64: env steps stored per task (a stopped task's counter freezes)."""
        self._dps_data: dict[str, Any] | None = None  # DPS config + state as plain data, written by save()
        self._init_hooks()
        self._idle_rng = np.random.default_rng(0)
        if _init_setup_model:
            self._configure(config, learning_rate, buffer_size, batch_size, gamma)
            self._setup_model()

    # ------------------------------------------------------------------ setup
    def _configure(self, config: AgentConfig | None, learning_rate: float | None, buffer_size: int | None,
                   batch_size: int | None, gamma: float | None) -> None:
        """Resolve the tasks (from the env's spaces) and the agent configuration."""
        if self.env is None:
            raise ValueError("ScaleZero needs an env to be built (use ScaleZero.load for a saved model)")
        if not (isinstance(self.policy_class, type) and issubclass(self.policy_class, ScaleZeroPolicy)):
            raise ValueError(f"ScaleZero needs a ScaleZeroPolicy (or one of {sorted(self.policy_aliases)}), "
                             f"got {self.policy_class}")
        self.policy_class.check_observation_space(self.observation_space)
        if isinstance(self.observation_space, spaces.Dict):
            self.layout = env_layout(self.env)
            specs = self.layout.specs
            if gamma is not None:
                specs = tuple(dataclasses.replace(s, discount=float(gamma)) for s in specs)
        else:
            specs = (spec_from_env(self.env, discount=gamma or DEFAULT_DISCOUNT),)
        self.task_specs = tuple(specs)
        overrides = dict(self.config_overrides)
        for key, value in (("learner.learning_rate", learning_rate), ("replay.capacity", buffer_size),
                           ("learner.batch_size", batch_size)):
            if value is not None:
                if key in overrides and overrides[key] != value:
                    raise ValueError(f"{key} given twice: {value!r} and config_overrides[{key!r}]={overrides[key]!r}")
                overrides[key] = value
        if config is None:
            config = make_preset(self.preset, self.variant or ("scalezero" if len(specs) > 1 else "unizero"))
        self.agent_config = config.replace(**overrides) if overrides else config
        cfg = self.agent_config
        self.learning_rate, self.batch_size = cfg.learner.learning_rate, cfg.learner.batch_size
        self.buffer_size, self.gamma = cfg.replay.capacity, self.task_specs[0].discount
        self.agent_seed = int(self.seed) if self.seed is not None else int(np.random.SeedSequence().entropy % 2**31)

    def _setup_model(self) -> None:
        """Build the policy (which owns the agent) and the replay view; called again by ``load``."""
        if self.agent_config is None or self.agent_seed is None:
            raise RuntimeError("ScaleZero is not configured (build it with an env, or use ScaleZero.load)")
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        if self.env is not None:
            self._rings = self._rings_for(self.env)
        assert self._rings is not None
        rings = (self._rings.max(axis=0) + 1).tolist()
        config = self.agent_config.replace(device=str(self.device))
        self.policy = self.policy_class(  # type: ignore[assignment]
            self.observation_space, self.action_space, self.lr_schedule, specs=self.task_specs, config=config,
            num_envs=rings, seed=self.agent_seed, layout=self.layout, **self.policy_kwargs)
        self.replay_buffer = ScaleZeroReplayBuffer(self.agent.replays, self.observation_space, self.action_space,
                                                   device=self.device, n_envs=self.n_envs)
        self._convert_train_freq()
        self._actor, self._pending = None, None
        num_tasks = len(self.task_specs)
        if self.task_active is None or len(self.task_active) != num_tasks:  # a new model, or a zip without them
            self.task_active = np.ones(num_tasks, dtype=bool)
        if self.task_env_steps is None or len(self.task_env_steps) != num_tasks:
            self.task_env_steps = np.zeros(num_tasks, dtype=np.int64)
        self._idle_rng = np.random.default_rng(self.agent_seed + 2)
        self._dps = None
        if self._dps_data is not None:  # load(): adapters and their optimiser groups before set_parameters
            self._dps = DynamicParameterScaling(self.agent, DPSConfig(**self._dps_data["config"]))
            self._dps.load_state_dict(self._dps_data["state"])

    def _rings_for(self, env: VecEnv) -> np.ndarray:
        """``[n_envs, T]`` replay ring of each (sub-env, task) pair (-1: the sub-env never runs the task).

        Sub-envs of a ``MultiTaskEnv`` pinned to one task (``multitask_env_fns``) get a ring in that task only.
        """
        n, num_tasks = env.num_envs, len(self.task_specs)
        if self.layout is None:
            return np.arange(n, dtype=np.int64)[:, None]
        if env_layout(env) != self.layout:
            raise ValueError("the env's MultiTaskLayout differs from this model's tasks")
        pinned = env.get_attr("pinned_task")
        rings = np.full((n, num_tasks), -1, dtype=np.int64)
        counts = np.zeros(num_tasks, dtype=np.int64)
        for i, task in enumerate(pinned):
            for t in range(num_tasks) if task is None else [int(task)]:
                rings[i, t], counts[t] = counts[t], counts[t] + 1
        idle = [self.task_specs[t].name for t in np.nonzero(counts == 0)[0]]
        if idle:
            raise ValueError(f"no sub-env runs task(s) {idle}; every task needs at least one sub-env")
        return rings

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        """Use a new env (same spaces; for a model with replay, the same sub-envs per task)."""
        env = self._wrap_env(env, self.verbose)
        if getattr(self, "policy", None) is not None and self.agent_config is not None:
            rings = self._rings_for(env)
            have = [r.num_envs for r in self.agent.replays]
            if (rings.max(axis=0) + 1).tolist() != have:
                raise ValueError(f"this env gives {(rings.max(axis=0) + 1).tolist()} replay rings per task, the "
                                 f"model has {have}: save it and ScaleZero.load(path, env=...) instead")
            self._rings, self._actor = rings, None
        super().set_env(env, force_reset=force_reset)

    @property
    def agent(self) -> Agent:
        """The framework-free agent (model, learner, replay) behind this algorithm."""
        return self.policy.agent

    @property
    def training_actor(self) -> Actor | None:
        """The collection actor (``None`` before the first ``learn``)."""
        return self._actor

    # ------------------------------------------------------------------ tasks, hooks, DPS
    def stop_task(self, task_id: int) -> None:
        """Stop collecting and training task ``task_id`` for good (e.g. solved under DPS).

        Its running episodes are closed as truncated at their last stored step; from now on its steps are not
        searched (random legal actions keep its sub-envs going, since SB3 steps every sub-env), not stored and
        not trained on. ``task_active`` and ``task_env_steps`` are saved with the model.
        """
        assert self.task_active is not None
        task_id = check_task_id(task_id, len(self.task_specs))
        if not self.task_active[task_id]:
            return
        self.task_active[task_id] = False
        replay = self.agent.replays[int(task_id)]
        for ring in range(replay.num_envs):
            replay.truncate_running(ring)

    @property
    def active_tasks(self) -> list[int]:
        """Ids of the tasks still collected and trained."""
        assert self.task_active is not None
        return [int(t) for t in np.nonzero(self.task_active)[0]]

    def _dps_agent(self) -> Agent:
        return self.agent

    # ------------------------------------------------------------------ collection
    def _setup_learn(self, total_timesteps: int, callback: MaybeCallback = None, reset_num_timesteps: bool = True,
                     tb_log_name: str = "ScaleZero", progress_bar: bool = False) -> tuple[int, Any]:
        if self._pending is not None:  # a callback stopped training between acting and storing: restart episodes
            self._last_obs, self._pending = None, None
        restart = reset_num_timesteps or self._last_obs is None
        total, callback = super()._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name,
                                               progress_bar)
        assert self.env is not None and self._rings is not None
        if self._actor is None:
            num_tasks = len(self.task_specs)
            self._actor = self.agent.actor([t for _ in range(self.env.num_envs) for t in range(num_tasks)],
                                           explore=True, seed=self.agent_seed or 0)
            restart = True
        if restart:
            self.replay_buffer.truncate_running_episodes()
            self._actor.reset()
        if reset_num_timesteps:
            self._update_base = self.agent.learner.updates
        return total, callback

    def _sample_action(self, learning_starts: int, action_noise: Any = None,
                       n_envs: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Search in every sub-env of an active task at the collection temperature (no random warm-up); a
        sub-env of a stopped task gets a uniformly random legal action (its step is not stored)."""
        assert self._actor is not None and self._last_obs is not None and self.task_active is not None
        task_ids, natives = self.policy.task_views(self._last_obs)
        rows = np.arange(len(task_ids)) * len(self.task_specs) + task_ids
        assert self.agent_config is not None
        temperature = self.agent_config.collect_temperature(1.0 - self._current_progress_remaining)
        live = np.nonzero(self.task_active[task_ids])[0]
        native_actions: list[Any] = [None] * len(task_ids)
        out = None
        if live.size:
            out = self._actor.act([natives[i] for i in live], rows[live], temperature=temperature)
            for k, i in enumerate(live.tolist()):
                native_actions[i] = out.actions[k]
        for i in np.nonzero(~self.task_active[task_ids])[0].tolist():
            native_actions[i] = self._idle_action(int(task_ids[i]), natives[i])
        self._pending = (task_ids, out, live)  # now: an EvalCallback's predict runs before _store_transition
        actions = self.policy.env_actions(task_ids, native_actions)
        return actions, actions

    def _idle_action(self, task_id: int, native_obs: Any) -> Any:
        """A uniformly random legal native action of task ``task_id`` (for sub-envs of stopped tasks)."""
        spec, rng = self.task_specs[task_id], self._idle_rng
        if not spec.is_discrete:
            return rng.uniform(-1.0, 1.0, spec.action_dim).astype(np.float32)
        _, legal = self.agent.prepare_obs(task_id, native_obs)
        if legal is not None and legal.any():
            return int(rng.choice(np.nonzero(legal)[0]))
        return int(rng.integers(spec.num_actions))

    def _store_transition(self, replay_buffer: Any, buffer_action: np.ndarray, new_obs: Any, reward: np.ndarray,
                          dones: np.ndarray, infos: list[dict[str, Any]]) -> None:
        """Store each sub-env's step with its search statistics; close finished episodes with their real last
        observation (terminal unless ``TimeLimit.truncated``)."""
        assert self._pending is not None and self._actor is not None and self._rings is not None
        assert self.task_active is not None and self.task_env_steps is not None
        task_ids, out, live = self._pending
        self._pending = None
        position = {i: k for k, i in enumerate(live.tolist())}
        num_tasks, ended = len(self.task_specs), []
        for i, t in enumerate(task_ids.tolist()):
            k = position.get(i)
            if k is None or not self.task_active[t]:  # a stopped task (stop_task closed its episodes)
                continue
            ring = int(self._rings[i, t])
            self.agent.observe(t, ring, out, k, float(reward[i]))
            self.task_env_steps[t] += 1
            if dones[i]:
                final = infos[i].get("terminal_observation")
                if final is None:
                    raise RuntimeError(f"sub-env {i} finished without infos['terminal_observation'] (SB3 VecEnv API)")
                truncated = bool(infos[i].get("TimeLimit.truncated", False))
                self.agent.end_episode(t, ring, self.policy.native_obs(final, t), terminated=not truncated)
                ended.append(i * num_tasks + t)
        if ended:
            self._actor.reset(ended)
        self._last_obs = new_obs
        if self._vec_normalize_env is not None:
            self._last_original_obs = self._vec_normalize_env.get_original_obs()

    # ------------------------------------------------------------------ learning
    def train(self, gradient_steps: int, batch_size: int) -> None:
        """Catch up to ``replay_ratio`` learner updates per env step per task (``gradient_steps`` is ignored)."""
        learner = self.agent.learner
        steps_per_task = (self.num_timesteps - self.learning_starts) / len(self.task_specs)
        owed = math.floor(steps_per_task * self.replay_ratio) - (learner.updates - self._update_base)
        if owed <= 0 or not self._ready(self.active_tasks):
            return
        self.policy.set_training_mode(True)
        sums: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        done = 0
        for _ in range(owed):
            active = self.active_tasks  # a hook may stop tasks
            if not self._ready(active):
                break
            metrics = self.agent.update(active)
            done += 1
            self._run_update_hooks(metrics)
            for key, value in metrics.items():
                sums[key] += value
                counts[key] += 1
            if self.reanalyze_interval and learner.updates % self.reanalyze_interval == 0:
                for task in active:
                    self.agent.reanalyze(task, self.reanalyze_steps)
        self.policy.set_training_mode(False)
        self._n_updates += done
        for key, total in sums.items():
            self.logger.record(f"train/{key}", total / counts[key])
        self.logger.record("train/n_updates", learner.updates, exclude="tensorboard")

    def _ready(self, tasks: Iterable[int]) -> bool:
        """Whether there is at least one task to train and every one of ``tasks`` has windows to sample."""
        tasks = list(tasks)
        return bool(tasks) and all(self.agent.replays[t].num_ready() > 0 for t in tasks)

    def _update_learning_rate(self, optimizers: list[th.optim.Optimizer] | th.optim.Optimizer) -> None:
        """Log the learner's learning rate; never overwrite it (SB3 would set every param group to one value)."""
        self.logger.record("train/learning_rate", self.agent.learner.optimizer.param_groups[0]["lr"])

    def learn(self: SelfScaleZero, total_timesteps: int, callback: MaybeCallback = None, log_interval: int = 4,
              tb_log_name: str = "ScaleZero", reset_num_timesteps: bool = True,
              progress_bar: bool = False) -> SelfScaleZero:
        """Collect ``total_timesteps`` env steps (summed over sub-envs) and learn; see SB3's ``learn``."""
        return super().learn(total_timesteps=total_timesteps, callback=callback, log_interval=log_interval,
                             tb_log_name=tb_log_name, reset_num_timesteps=reset_num_timesteps,
                             progress_bar=progress_bar)

    # ------------------------------------------------------------------ persistence
    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_actor", "_pending", "_dps", "_update_hooks", "_idle_rng"]

    def save(self, path: str | pathlib.Path | io.BufferedIOBase, exclude: Iterable[str] | None = None,
             include: Iterable[str] | None = None) -> None:
        """Save the model as SB3's zip; with DPS, its config, stage, counters, solved tasks and adapter specs go
        into the zip's data as plain values, so :meth:`load` re-creates the adapters before the weights."""
        self._dps_data = None if self._dps is None else {
            "config": dataclasses.asdict(self._dps.config), "state": self._dps.state_dict()}
        super().save(path, exclude=exclude, include=include)

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []

    def load_replay_buffer(self, path: str | pathlib.Path | Any, truncate_last_traj: bool = True) -> None:
        """Load the per-task replay saved by ``save_replay_buffer`` into this model's replay.

        With ``truncate_last_traj`` (default) the saved unfinished episodes are closed as truncated and the env
        restarts at the next ``learn``; pass ``False`` only to continue the very episodes that were running.
        """
        loaded = load_from_pkl(path, self.verbose)
        if not isinstance(loaded, ScaleZeroReplayBuffer):
            raise TypeError(f"expected a ScaleZero replay buffer, got {type(loaded).__name__}")
        self.replay_buffer.copy_from(loaded)
        if truncate_last_traj:
            self.replay_buffer.truncate_running_episodes()
            self._last_obs, self._pending = None, None
