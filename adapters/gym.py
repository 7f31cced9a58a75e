"""Adapter for any registered Gymnasium env with ``Box`` or ``Discrete`` spaces (``gym/<id>``).

Conversions (so every task follows the ``TaskSpec`` conventions):

* ``Box`` observation of rank 1 -> ``float32`` vector; rank 3 ``uint8`` ``(H, W, C)`` with ``C`` in {1, 3, 4}
  -> channel-first image ``(C, H, W)``; ``Discrete(n)`` observation -> one-hot ``float32`` vector.
* ``Discrete`` actions pass through; a bounded ``Box`` action becomes ``Box(-1, 1, float32)``, clipped and
  mapped affinely onto the env's bounds.
* Episodes are capped by the env's registered ``max_episode_steps`` (or the ``max_episode_steps`` option).
* Score normalisation and target return: ``reward_threshold`` is the target; random and reference scores
  are known for CartPole-v1 and Acrobot-v1 (``GYM_SCORES``), ``None`` otherwise.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from ._common import EnvFactory, Mode, Task, check_mode, check_options, rescale_to_bounds
from .spec import TaskSpec

__all__ = ["GYM_DEFAULTS", "GYM_SCORES", "GymEnv", "gym_task"]

GYM_DEFAULTS: dict[str, Any] = {"discount": 0.997, "max_episode_steps": None}

# (random, reference). Random: mean return of uniform random actions over 200 episodes (seeds 0-199),
# measured with gymnasium 1.4.0. Reference: the env's maximum return (CartPole) or its reward_threshold
# (Acrobot: "solved").
GYM_SCORES: dict[str, tuple[float, float]] = {
    "CartPole-v1": (22.7, 500.0),
    "Acrobot-v1": (-497.4, -100.0),
}


def _obs_kind(space: gym.Space) -> tuple[str, tuple[int, ...], str]:
    if isinstance(space, gym.spaces.Discrete):
        return "onehot", (int(space.n),), "vector"
    if isinstance(space, gym.spaces.Box):
        if len(space.shape) == 1:
            return "vector", space.shape, "vector"
        if len(space.shape) == 3 and space.dtype == np.uint8 and space.shape[2] in (1, 3, 4):
            h, w, c = space.shape
            return "hwc", (c, h, w), "image"
    raise ValueError(f"unsupported observation space {space}: need Discrete, 1-D Box or (H, W, C) uint8 Box")


def _action_kind(space: gym.Space) -> tuple[str, int]:
    if isinstance(space, gym.spaces.Discrete):
        return "discrete", int(space.n)
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise ValueError(f"unbounded action space {space} is not supported")
        return "continuous", int(space.shape[0])
    raise ValueError(f"unsupported action space {space}: need Discrete or a 1-D bounded Box")


def gym_task(env_id: str, **options: Any) -> Task:
    """Build the factory and ``TaskSpec`` for ``gym/<env_id>``.

    Args:
        env_id: A registered Gymnasium id, e.g. ``"CartPole-v1"``.
        **options: ``discount`` (default 0.997) and ``max_episode_steps`` (default: the registered one;
            required if the env has none).
    """
    name = f"gym/{env_id}"
    opts = check_options(name, options, GYM_DEFAULTS)
    cap = opts["max_episode_steps"]
    if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
        raise ValueError(f"max_episode_steps must be a positive int, got {cap!r}")
    probe = gym.make(env_id)
    try:
        _, obs_shape, modality = _obs_kind(probe.observation_space)
        action_kind, size = _action_kind(probe.action_space)
        env_spec = probe.spec
    finally:
        probe.close()
    max_steps = opts["max_episode_steps"] or (env_spec.max_episode_steps if env_spec else None)
    if not max_steps:
        raise ValueError(f"{env_id} has no registered max_episode_steps; pass max_episode_steps=...")
    scores = GYM_SCORES.get(env_id)
    threshold = env_spec.reward_threshold if env_spec else None
    continuous = action_kind == "continuous"
    spec = TaskSpec(
        name=name,
        family="gym",
        modality=modality,
        obs_shape=obs_shape,
        obs_dtype="uint8" if modality == "image" else "float32",
        action_kind=action_kind,
        num_actions=None if continuous else size,
        action_dim=size if continuous else None,
        action_low=-1.0 if continuous else None,
        action_high=1.0 if continuous else None,
        discount=opts["discount"],
        max_episode_steps=int(max_steps),
        random_score=scores[0] if scores else None,
        reference_score=scores[1] if scores else None,
        target_return=float(threshold) if threshold is not None else None,
        eval_protocol=f"Gymnasium {env_id}: undiscounted return of full episodes (<= {max_steps} steps).",
    )
    return Task(EnvFactory(name, _build_gym, {"env_id": env_id, "max_episode_steps": int(max_steps)}), spec)


def _build_gym(mode: Mode, **options: Any) -> GymEnv:
    return GymEnv(mode=mode, **options)


class GymEnv(gym.Env[np.ndarray, Any]):
    """A registered Gymnasium env converted to the adapter conventions (see the module docstring)."""

    def __init__(
        self,
        *,
        env_id: str,
        mode: Mode = "eval",
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        check_mode(mode)
        self.mode = mode
        self._env = gym.make(env_id, max_episode_steps=max_episode_steps, render_mode=render_mode)
        self.render_mode = render_mode
        self.metadata = self._env.metadata
        self._obs_kind, obs_shape, modality = _obs_kind(self._env.observation_space)
        action_kind, size = _action_kind(self._env.action_space)
        self._continuous = action_kind == "continuous"
        if modality == "image":
            self.observation_space = gym.spaces.Box(0, 255, obs_shape, np.uint8)
        else:
            inner = self._env.observation_space
            low = np.asarray(inner.low, np.float32) if isinstance(inner, gym.spaces.Box) else 0.0
            high = np.asarray(inner.high, np.float32) if isinstance(inner, gym.spaces.Box) else 1.0
            self.observation_space = gym.spaces.Box(low, high, obs_shape, np.float32)
        if self._continuous:
            self._low = np.asarray(self._env.action_space.low, np.float64)
            self._high = np.asarray(self._env.action_space.high, np.float64)
            self.action_space = gym.spaces.Box(-1.0, 1.0, (size,), np.float32)
        else:
            self.action_space = gym.spaces.Discrete(size)
        self._dtype = self._env.action_space.dtype

    def _convert(self, obs: Any) -> np.ndarray:
        if self._obs_kind == "vector":
            return np.asarray(obs, dtype=np.float32)
        if self._obs_kind == "onehot":
            out = np.zeros(self.observation_space.shape, np.float32)
            out[int(obs)] = 1.0
            return out
        return np.ascontiguousarray(np.asarray(obs).transpose(2, 0, 1))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Reset the inner env (seeded when ``seed`` is given)."""
        super().reset(seed=seed)
        obs, info = self._env.reset(seed=seed, options=options)
        return self._convert(obs), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Step the inner env (continuous actions are clipped to [-1, 1] and rescaled)."""
        if self._continuous:
            inner = rescale_to_bounds(np.asarray(action, np.float64), self._low, self._high).astype(self._dtype)
        else:
            inner = int(action)
            if not 0 <= inner < self.action_space.n:
                raise ValueError(f"action must be in [0, {self.action_space.n}), got {action!r}")
        obs, reward, terminated, truncated, info = self._env.step(inner)
        return self._convert(obs), float(reward), bool(terminated), bool(truncated), info

    def action_masks(self) -> np.ndarray:
        """All actions legal (discrete tasks only)."""
        return np.ones(self.action_space.n, dtype=bool)

    def render(self) -> Any:
        """Render the inner env."""
        return self._env.render()

    def close(self) -> None:
        """Close the inner env."""
        self._env.close()
