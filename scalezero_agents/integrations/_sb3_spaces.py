"""Tasks of an SB3 env: the ``TaskSpec`` of a single-task env, the layout of a multi-task one."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from scalezero_adapters import MultiTaskLayout, TaskSpec
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.vec_env import VecEnv

__all__ = ["DEFAULT_DISCOUNT", "env_layout", "spec_from_env"]

DEFAULT_DISCOUNT = 0.997
"""Discount of a task built from an env's spaces (the Gymnasium adapter's default)."""
UNKNOWN_EPISODE_CAP = 1_000_000
"""``TaskSpec.max_episode_steps`` of an env without a registered cap (informational only)."""


def spec_from_env(env: gym.Env | VecEnv, *, discount: float = DEFAULT_DISCOUNT,
                  max_episode_steps: int | None = None) -> TaskSpec:
    """The :class:`TaskSpec` of a single-task env from its spaces (and its registered spec, if any).

    Observations: a 1-D ``Box`` (vector) or a channel-first ``(C, H, W)`` uint8 ``Box`` (image). Actions:
    ``Discrete(n)`` or a bounded 1-D ``Box`` (the agent acts in ``[-1, 1]``; the policy rescales). The episode
    cap comes from ``max_episode_steps`` or the env's registration (informational only).

    Raises:
        ValueError: for any other observation or action space.
    """
    obs_space, act_space = env.observation_space, env.action_space
    if isinstance(obs_space, spaces.Box) and len(obs_space.shape) == 1:
        modality, obs_dtype = "vector", "float32"
    elif (isinstance(obs_space, spaces.Box) and is_image_space(obs_space, check_channels=False)
          and is_image_space_channels_first(obs_space)):
        modality, obs_dtype = "image", "uint8"
    else:
        raise ValueError(f"unsupported observation space {obs_space}: ScaleZero needs a 1-D Box or a channel-first "
                         f"(C, H, W) uint8 Box for one task, or a scalezero_adapters.MultiTaskEnv (MultiInputPolicy)")
    if isinstance(act_space, spaces.Discrete) and int(act_space.start) == 0:
        action = {"action_kind": "discrete", "num_actions": int(act_space.n)}
    elif (isinstance(act_space, spaces.Box) and len(act_space.shape) == 1
          and np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
        action = {"action_kind": "continuous", "action_dim": int(act_space.shape[0]), "action_low": -1.0,
                  "action_high": 1.0}
    else:
        raise ValueError(f"unsupported action space {act_space}: ScaleZero needs Discrete(n) or a bounded 1-D Box")
    registered = env.get_attr("spec")[0] if isinstance(env, VecEnv) else env.spec
    env_id = registered.id if registered is not None else "env"
    cap = max_episode_steps or (registered.max_episode_steps if registered is not None else None)
    threshold = registered.reward_threshold if registered is not None else None
    return TaskSpec(
        name=f"gym/{env_id}", family="gym", modality=modality, obs_shape=tuple(int(s) for s in obs_space.shape),
        obs_dtype=obs_dtype, discount=float(discount), max_episode_steps=int(cap or UNKNOWN_EPISODE_CAP),
        target_return=None if threshold is None else float(threshold),
        eval_protocol=f"SB3 env {env_id}: undiscounted return of full episodes.", **action)


def env_layout(env: VecEnv) -> MultiTaskLayout:
    """The ``MultiTaskLayout`` of a vector env of ``MultiTaskEnv`` sub-envs (``ValueError`` for other envs)."""
    try:
        layout = env.get_attr("layout")[0]
    except AttributeError as exc:
        raise ValueError("MultiInputPolicy needs a VecEnv of scalezero_adapters.MultiTaskEnv "
                         "(see multitask_env_fns)") from exc
    if not isinstance(layout, MultiTaskLayout):
        raise ValueError(f"the env's 'layout' is a {type(layout).__name__}, not a MultiTaskLayout")
    return layout

