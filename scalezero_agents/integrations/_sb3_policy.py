"""The SB3 policy of :class:`~scalezero_agents.integrations.sb3.ScaleZero`: the agent behind ``BasePolicy``.

The policy owns the :class:`~scalezero_agents.agent.Agent` (world model, learner with its EMA target and
optimiser, per-task replay). Its ``state_dict`` holds the online model (``model.*``), the target model
(``target.*``) and the learner's counters (``_extra_state``); ``policy.optimizer`` *is* the learner's AdamW,
so SB3's zip (``policy.pth`` + ``policy.optimizer.pth``) restores the whole learner.

``predict`` is a pure function of the observation, the state it is given and the parameters: every call
searches with a fresh greedy actor (fixed seed), whose real recent context comes from ``state``. Pass the
returned state back with ``episode_start`` (as ``evaluate_policy`` does) to search from the episode's real
context; without it, each call searches from the current observation alone. The training actor of the
algorithm is never touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from scalezero_adapters import MultiTaskLayout, TaskSpec
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import is_image_space, maybe_transpose
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import is_vectorized_observation

from scalezero_agents.agent import Actor, Agent
from scalezero_agents.config import AgentConfig

__all__ = ["CnnPolicy", "MlpPolicy", "MultiInputPolicy", "PredictState", "ScaleZeroPolicy"]


class PredictState(NamedTuple):
    """What :meth:`ScaleZeroPolicy.predict` carries between calls, one row per env (SB3's ``state``)."""

    task_ids: np.ndarray
    """[n] int64 task of each row (a row whose task changes starts a new context)."""
    latents: np.ndarray
    """[n, C, D] float32 latents of the real recent observations."""
    actions: np.ndarray
    """[n, C, P] float32 actions taken between them."""
    steps: np.ndarray
    """[n] int64 context length of each row."""
    trees: dict[str, Any]
    """Random streams of the planner (its trees' and root sampler's; used by sampled and Gumbel search)."""

    def __repr__(self) -> str:
        return f"PredictState(task_ids={self.task_ids.tolist()}, steps={self.steps.tolist()})"


class ScaleZeroPolicy(BasePolicy):
    """Acting side of ScaleZero for SB3: MCTS over the learned world model.

    Args:
        observation_space: the (vectorised) env's observation space.
        action_space: the env's action space.
        lr_schedule: unused (the learner owns its learning rate); kept for SB3's constructor contract.
        specs: one :class:`TaskSpec` per task (task ids are their positions).
        config: the agent's configuration.
        num_envs: replay rings per task (an int for every task, or one per task).
        seed: seeds the model initialisation, the replay sampler and the greedy search streams.
        layout: the :class:`MultiTaskLayout` of a ``MultiTaskEnv`` (``MultiInputPolicy``); ``None`` for one task.
    """

    observation_kind: ClassVar[str] = "vector"
    """The observation space this alias accepts: ``vector``, ``image`` or ``multi``."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        *,
        specs: Sequence[TaskSpec],
        config: AgentConfig,
        num_envs: int | Sequence[int] = 1,
        seed: int = 0,
        layout: MultiTaskLayout | None = None,
    ) -> None:
        super().__init__(observation_space, action_space, normalize_images=False)
        self.check_observation_space(observation_space)
        if (layout is None) != (self.observation_kind != "multi"):
            raise ValueError(f"{type(self).__name__}: a MultiTaskLayout is needed exactly for MultiInputPolicy")
        self.specs, self.config, self.layout, self.seed = tuple(specs), config, layout, int(seed)
        self.num_envs = num_envs if isinstance(num_envs, int) else tuple(int(n) for n in num_envs)
        self.agent = Agent(self.specs, config, num_envs=self.num_envs, seed=self.seed)
        self.model = self.agent.model
        self.target = self.agent.learner.target
        self.optimizer = self.agent.learner.optimizer
        self._explore_rng = np.random.default_rng(self.seed + 1)

    # ------------------------------------------------------------------ spaces
    @classmethod
    def check_observation_space(cls, space: spaces.Space) -> None:
        """Raise ``ValueError`` unless this policy alias handles ``space``."""
        alias = cls.__name__
        if cls.observation_kind == "multi":
            if not (isinstance(space, spaces.Dict) and "task_id" in space.spaces):
                raise ValueError(f"{alias} needs the Dict observation of a scalezero_adapters.MultiTaskEnv (with "
                                 f"'task_id'), got {space}")
            return
        if isinstance(space, spaces.Dict):
            raise ValueError(f"{alias} cannot take a Dict observation space; use MultiInputPolicy with a "
                             f"scalezero_adapters.MultiTaskEnv")
        if not isinstance(space, spaces.Box):
            raise ValueError(f"unsupported observation space {space}: ScaleZero needs a 1-D Box (MlpPolicy), a "
                             f"(C, H, W) uint8 Box (CnnPolicy) or a MultiTaskEnv Dict (MultiInputPolicy)")
        image = len(space.shape) == 3 and is_image_space(space, check_channels=False)
        if cls.observation_kind == "image" and not image:
            raise ValueError(f"{alias} needs a (C, H, W) uint8 image observation space, got {space}")
        if cls.observation_kind == "vector" and len(space.shape) != 1:
            hint = "; use CnnPolicy for images" if image else ""
            raise ValueError(f"{alias} needs a 1-D Box observation space, got {space}{hint}")

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {"observation_space": self.observation_space, "action_space": self.action_space,
                "lr_schedule": self._dummy_schedule, "specs": self.specs, "config": self.config,
                "num_envs": self.num_envs, "seed": self.seed, "layout": self.layout}

    # ------------------------------------------------------------------ state
    def get_extra_state(self) -> dict[str, Any]:
        """Learner counter and replay-sampler stream (saved in ``state_dict`` under ``_extra_state``)."""
        return {"updates": int(self.agent.learner.updates), "rng": self.agent.rng.bit_generator.state}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`get_extra_state` returned."""
        self.agent.learner.updates = int(state["updates"])
        self.agent.rng.bit_generator.state = state["rng"]

    def set_training_mode(self, mode: bool) -> None:
        """Train/eval mode of the online model (the EMA target stays in eval mode)."""
        self.model.train(mode)
        self.training = mode

    # ------------------------------------------------------------------ conversions
    def task_views(self, obs: np.ndarray | dict[str, np.ndarray]) -> tuple[np.ndarray, list[Any]]:
        """A batch of env observations -> (task id of each row, each row's native observation)."""
        if self.layout is None:
            arr = np.asarray(obs)
            return np.zeros(len(arr), dtype=np.int64), list(arr)
        views = self.layout.task_views(obs)  # type: ignore[arg-type]
        return np.array([v.task_id for v in views], dtype=np.int64), [v.obs for v in views]

    def native_obs(self, obs: Any, task_id: int) -> Any:
        """One env observation (e.g. a ``terminal_observation``) as task ``task_id``'s native observation."""
        if self.layout is None:
            return np.asarray(obs)
        view = self.layout.task_view(obs)
        if view.task_id != task_id:
            raise ValueError(f"observation of task {view.task_id} where task {task_id} was expected")
        return view.obs

    def env_actions(self, task_ids: np.ndarray, actions: Sequence[Any]) -> np.ndarray:
        """The agent's native actions -> actions of the env's action space (one row per env)."""
        if self.layout is not None:
            encoded = [self.layout.encode_action(int(t), a) for t, a in zip(task_ids, actions, strict=True)]
            if isinstance(self.action_space, spaces.Discrete):
                return np.asarray(encoded, dtype=np.int64)
            return np.stack(encoded).astype(self.action_space.dtype)
        if isinstance(self.action_space, spaces.Discrete):
            return np.asarray(actions, dtype=np.int64)
        scaled = np.clip(np.stack([np.asarray(a, dtype=np.float64) for a in actions]), -1.0, 1.0)
        return self.unscale_action(scaled).astype(self.action_space.dtype)

    def _batch(self, observation: Any) -> tuple[Any, bool]:
        if isinstance(observation, tuple) and len(observation) == 2 and isinstance(observation[1], dict):
            raise ValueError("predict() got an (obs, info) tuple: pass the observation only (SB3 VecEnv API)")
        if self.layout is not None:
            if not isinstance(observation, dict):
                raise ValueError(f"{type(self).__name__} expects a dict observation, got {type(observation)}")
            vectorized = is_vectorized_observation(observation, self.observation_space)
            return ({k: np.asarray(v) if vectorized else np.asarray(v)[None] for k, v in observation.items()},
                    vectorized)
        arr = maybe_transpose(np.asarray(observation), self.observation_space)
        vectorized = is_vectorized_observation(arr, self.observation_space)
        return arr.reshape((-1, *self.observation_space.shape)), vectorized  # type: ignore[misc]

    # ------------------------------------------------------------------ acting
    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, PredictState]:
        """Search from ``observation`` (single or batched) and return ``(actions, state)``.

        ``deterministic=True``: greedy search (no root noise, ``eval_simulations``, most visited action) with a
        fixed seed, so equal inputs give equal actions. ``deterministic=False``: exploring search sampled at
        temperature 1. ``state`` (a :class:`PredictState` from the previous call) carries each env's real
        recent context; rows with ``episode_start`` set, or whose task changed, start afresh.
        """
        self.set_training_mode(False)
        obs, vectorized = self._batch(observation)
        task_ids, natives = self.task_views(obs)
        seed = self.seed if deterministic else int(self._explore_rng.integers(2**31 - 1))
        actor = self.agent.actor(task_ids, explore=not deterministic, seed=seed)
        if state is not None:
            self._restore(actor, state, task_ids, episode_start)
        out = actor.act(natives, temperature=0.0 if deterministic else 1.0)
        actions = self.env_actions(task_ids, out.actions)
        new_state = PredictState(task_ids, actor.latents.cpu().numpy(), actor.actions.cpu().numpy(),
                                 actor.steps.cpu().numpy(), actor.planner.rng_states())
        return (actions if vectorized else actions[0]), new_state

    @staticmethod
    def _restore(actor: Actor, state: tuple[np.ndarray, ...], task_ids: np.ndarray,
                 episode_start: np.ndarray | None) -> None:
        if not isinstance(state, PredictState):
            raise ValueError(f"state must be the PredictState returned by the previous predict(), got {type(state)}")
        if len(state.task_ids) != len(task_ids):
            raise ValueError(f"state has {len(state.task_ids)} rows for {len(task_ids)} observations")
        keep = state.task_ids == task_ids
        if episode_start is not None:
            keep &= ~np.asarray(episode_start, dtype=bool).reshape(-1)
        dev = actor.latents.device
        actor.load_state_dict({"latents": th.as_tensor(state.latents, device=dev),
                               "actions": th.as_tensor(state.actions, device=dev),
                               "steps": th.as_tensor(np.where(keep, state.steps, 0), device=dev),
                               "trees": state.trees})

    def _predict(self, observation: Any, deterministic: bool = False) -> th.Tensor:
        """Stateless search (SB3's abstract hook; :meth:`predict` is the full entry point)."""
        if isinstance(observation, dict):
            obs: Any = {k: v.cpu().numpy() for k, v in observation.items()}
        else:
            obs = observation.cpu().numpy()
        actions, _ = self.predict(obs, deterministic=deterministic)
        return th.as_tensor(actions)


class MlpPolicy(ScaleZeroPolicy):
    """ScaleZero on 1-D Box observations."""

    observation_kind: ClassVar[str] = "vector"


class CnnPolicy(ScaleZeroPolicy):
    """ScaleZero on ``(C, H, W)`` uint8 image observations (SB3 transposes ``(H, W, C)`` envs itself)."""

    observation_kind: ClassVar[str] = "image"


class MultiInputPolicy(ScaleZeroPolicy):
    """ScaleZero on a ``MultiTaskEnv``: each sub-env is routed to its task by ``obs["task_id"]``."""

    observation_kind: ClassVar[str] = "multi"
