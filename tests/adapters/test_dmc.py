"""DMC adapter through shimmy on the real physics: dims, key order, actions, repeat, pixels, seeding."""

from __future__ import annotations

import os
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from scalezero_adapters import DMC18, make_suite, make_task
from scalezero_adapters._common import rescale_to_bounds

# Measured through shimmy 2.0.1 (docs/environments.md, section 2): flattened obs dim, action dim.
MEASURED_DIMS = {
    "acrobot-swingup": (6, 1),
    "cartpole-balance": (5, 1),
    "cartpole-balance_sparse": (5, 1),
    "cartpole-swingup": (5, 1),
    "cartpole-swingup_sparse": (5, 1),
    "cheetah-run": (17, 6),
    "ball_in_cup-catch": (8, 2),
    "finger-spin": (9, 2),
    "finger-turn_easy": (12, 2),
    "finger-turn_hard": (12, 2),
    "hopper-hop": (15, 4),
    "hopper-stand": (15, 4),
    "pendulum-swingup": (3, 1),
    "reacher-easy": (6, 2),
    "reacher-hard": (6, 2),
    "walker-run": (24, 6),
    "walker-stand": (24, 6),
    "walker-walk": (24, 6),
}
DMC18_TASKS = {task.spec.task: task for task in make_suite("dmc18")}


def test_dmc18_specs_have_the_measured_dims() -> None:
    assert set(DMC18) == set(MEASURED_DIMS)
    for name, (obs_dim, act_dim) in MEASURED_DIMS.items():
        spec = DMC18_TASKS[name].spec
        assert (spec.obs_shape, spec.action_dim) == ((obs_dim,), act_dim), name
        assert spec.modality == "vector" and spec.obs_dtype == "float32" and not spec.is_discrete
        assert (spec.action_low, spec.action_high) == (-1.0, 1.0)
        assert spec.target_return is not None and spec.normalize(1000.0) == 1.0


@pytest.mark.parametrize("name", DMC18)
def test_dmc18_builds_resets_steps_and_passes_check_env(name: str) -> None:
    factory, spec = DMC18_TASKS[name]
    env = factory("train")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*infinity")  # unbounded state Boxes are correct
            check_env(env, skip_render_check=True)
        obs, _ = env.reset(seed=0)
        assert obs.shape == spec.obs_shape and obs.dtype == np.float32
        assert env.action_space == gym.spaces.Box(-1.0, 1.0, (spec.action_dim,), np.float32)
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and 0.0 <= reward <= spec.action_repeat
        assert not terminated and not truncated
    finally:
        env.close()


def test_flat_observation_uses_dm_control_native_key_order() -> None:
    factory, spec = make_task("dmc/finger-turn_easy")
    assert [key for key, _ in spec.obs_layout] == [
        "position",
        "velocity",
        "touch",
        "target_position",
        "dist_to_target",
    ]
    env = factory()
    obs, _ = env.reset(seed=3)
    raw = gym.make("dm_control/finger-turn_easy-v0", disable_env_checker=True)
    raw_obs, _ = raw.reset(seed=3)
    expected = np.concatenate([np.ravel(raw_obs[key]) for key, _ in spec.obs_layout]).astype(np.float32)
    np.testing.assert_array_equal(obs, expected)
    alphabetical = np.concatenate([np.ravel(raw_obs[key]) for key in sorted(raw_obs)]).astype(np.float32)
    assert not np.array_equal(obs, alphabetical)


def test_actions_are_clipped_and_rescaled_to_the_task_bounds() -> None:
    low, high = np.array([-1.0, -1.0, -0.8]), np.array([1.0, 1.1, 0.8])  # quadruped's per-leg bounds
    np.testing.assert_allclose(rescale_to_bounds(np.array([-1.0, 1.0, 0.0]), low, high), [-1.0, 1.1, 0.0])
    np.testing.assert_allclose(rescale_to_bounds(np.array([5.0, -5.0, 1.0]), low, high), [1.0, -1.0, 0.8])
    factory, spec = make_task("dmc/quadruped-walk")
    assert spec.obs_shape == (78,) and spec.action_dim == 12 and spec.target_return is None
    env = factory()
    env.reset(seed=0)
    obs, *_ = env.step(np.full(12, 7.0, np.float32))  # out of range: clipped, never an error
    assert np.all(np.isfinite(obs))
    clipped_env = factory()
    clipped_env.reset(seed=0)
    clipped_obs, *_ = clipped_env.step(np.ones(12, np.float32))
    np.testing.assert_array_equal(obs, clipped_obs)


def test_action_repeat_sums_rewards_and_shortens_episodes() -> None:
    factory, spec = make_task("dmc/pendulum-swingup", action_repeat=8)
    assert spec.max_episode_steps == 125 and spec.action_repeat == 8
    env = factory()
    env.reset(seed=0)
    steps, truncated, terminated = 0, False, False
    while not (terminated or truncated):
        _, reward, terminated, truncated, _ = env.step(np.zeros(1, np.float32))
        assert 0.0 <= reward <= 8.0
        steps += 1
    assert steps == 125 and truncated and not terminated


def test_seeded_resets_are_reproducible() -> None:
    factory, _ = make_task("dmc/walker-walk", action_repeat=2)
    actions = np.random.default_rng(0).uniform(-1, 1, (30, 6)).astype(np.float32)

    def rollout(seed: int) -> np.ndarray:
        env = factory()
        frames = [env.reset(seed=seed)[0]]
        frames += [env.step(a)[0] for a in actions]
        return np.stack(frames)

    np.testing.assert_array_equal(rollout(5), rollout(5))
    assert not np.array_equal(rollout(5), rollout(6))


def test_pixels_render_headless() -> None:
    factory, spec = make_task("dmc/cheetah-run", pixels=True, action_repeat=4)
    assert spec.modality == "image" and spec.obs_shape == (3, 64, 64)
    env = factory()
    check_env(env, skip_render_check=True)
    assert os.environ.get("MUJOCO_GL") in ("egl", "osmesa")
    first, _ = env.reset(seed=0)
    assert first.dtype == np.uint8 and first.shape == (3, 64, 64) and first.std() > 5.0
    frames = [env.step(np.ones(6, np.float32))[0] for _ in range(5)]
    assert not np.array_equal(frames[-1], first)  # the body moved
    again, _ = factory().reset(seed=0)
    np.testing.assert_array_equal(again, first)
