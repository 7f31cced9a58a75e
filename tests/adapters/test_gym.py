"""Gymnasium adapter: Box/Discrete conversions on real registered envs."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from scalezero_adapters import make_task

pytestmark = pytest.mark.filterwarnings("ignore:.*infinity")


def test_cartpole_spec_and_check_env() -> None:
    factory, spec = make_task("gym/CartPole-v1")
    assert (spec.modality, spec.obs_shape, spec.num_actions, spec.max_episode_steps) == ("vector", (4,), 2, 500)
    assert spec.target_return == 475.0 and spec.normalize(500.0) == pytest.approx(1.0)
    env = factory("train")
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32
    steps, done = 0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(steps % 2)
        done, steps = terminated or truncated, steps + 1
    assert 5 < steps < 500 and reward == 1.0


def test_continuous_actions_are_rescaled_to_the_env_bounds() -> None:
    factory, spec = make_task("gym/Pendulum-v1")
    assert spec.action_dim == 1 and (spec.action_low, spec.action_high) == (-1.0, 1.0)
    assert spec.random_score is None and spec.target_return is None
    env = factory()
    check_env(env, skip_render_check=True)
    env.reset(seed=0)
    env.step(np.array([1.0], np.float32))
    assert env.unwrapped._env.unwrapped.last_u == pytest.approx(2.0)  # Pendulum's max torque
    env.step(np.array([-3.0], np.float32))  # clipped, not an error
    assert env.unwrapped._env.unwrapped.last_u == pytest.approx(-2.0)


def test_discrete_observations_become_one_hot_vectors() -> None:
    factory, spec = make_task("gym/FrozenLake-v1")
    assert spec.obs_shape == (16,) and spec.num_actions == 4
    obs, _ = factory().reset(seed=0)
    assert obs.sum() == 1.0 and obs[0] == 1.0


def test_unsupported_spaces_and_options_raise() -> None:
    with pytest.raises(ValueError, match="unsupported observation space"):
        make_task("gym/Blackjack-v1")
    with pytest.raises(ValueError, match="max_episode_steps"):
        make_task("gym/CartPole-v1", max_episode_steps=0)
    _, spec = make_task("gym/CartPole-v1", max_episode_steps=50, discount=0.99)
    assert spec.max_episode_steps == 50 and spec.discount == 0.99
