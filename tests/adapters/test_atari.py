"""Atari adapter on the real ALE: every atari26 game, protocol details, the native vector env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from scalezero_adapters import ATARI26, make_atari_vector_env, make_suite, make_task

ATARI26_TASKS = {task.spec.task: task for task in make_suite("atari26")}


@pytest.mark.parametrize("game", ATARI26)
def test_atari26_builds_resets_steps_and_passes_check_env(game: str) -> None:
    factory, spec = ATARI26_TASKS[game]
    env = factory("eval")
    try:
        check_env(env, skip_render_check=True)
        obs, info = env.reset()  # seeded by check_env; an unseeded reset avoids another ROM reload
        assert obs.shape == spec.obs_shape == (3, 64, 64) and obs.dtype == np.uint8
        assert env.action_space.n == spec.num_actions == 18
        assert "lives" in info
        for action in (0, 1, 17):
            obs, reward, terminated, truncated, info = env.step(action)
            assert env.observation_space.contains(obs) and isinstance(reward, float)
            assert isinstance(terminated, bool) and isinstance(truncated, bool)
            assert info["raw_reward"] == reward  # eval mode: raw game score
        assert spec.normalize(spec.random_score) == 0.0 and spec.target_return is not None
    finally:
        env.close()


def _rollout(env: gym.Env, seed: int, actions: np.ndarray) -> tuple[list[np.ndarray], list[float], list[float]]:
    obs, _ = env.reset(seed=seed)
    frames, rewards, raws = [obs], [], []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        frames.append(obs)
        rewards.append(reward)
        raws.append(info["raw_reward"])
        if terminated or truncated:
            break
    return frames, rewards, raws


def test_reward_clipping_applies_only_in_training_mode() -> None:
    factory, spec = make_task("atari/MsPacman")
    assert spec.reward_transform == "sign"
    actions = np.random.default_rng(0).integers(0, spec.num_actions, 120)
    _, eval_rewards, eval_raw = _rollout(factory("eval"), 0, actions)
    _, train_rewards, train_raw = _rollout(factory("train"), 0, actions)
    assert max(eval_rewards) >= 10.0  # MsPacman: 10 per pellet, raw in eval mode
    assert eval_rewards == eval_raw == train_raw
    assert train_rewards == [float(np.sign(r)) for r in train_raw]
    unclipped = make_task("atari/MsPacman", clip_rewards=False)
    assert unclipped.spec.reward_transform == "none"
    assert _rollout(unclipped.factory("train"), 0, actions)[1] == eval_rewards


def test_life_loss_terminal_only_in_training_mode_and_reset_continues_the_game() -> None:
    factory, _ = make_task("atari/Breakout", life_loss_terminal=True)
    actions = np.random.default_rng(0).integers(0, 4, 3000)
    train = factory("train")
    _, info = train.reset(seed=0)
    lives = info["lives"]
    for steps, action in enumerate(actions):  # noqa: B007
        _, _, terminated, truncated, info = train.step(action)
        if terminated or truncated:
            break
    assert terminated and info["lives"] == lives - 1
    _, info = train.reset()  # continues the same game: one life fewer, not a fresh game
    assert info["lives"] == lives - 1
    _, info = train.reset(seed=0)  # a seeded reset always starts a new game
    assert info["lives"] == lives
    evaluation = factory("eval")
    evaluation.reset(seed=0)
    eval_steps = 0
    for eval_steps, action in enumerate(actions):  # noqa: B007
        _, _, terminated, truncated, info = evaluation.step(action)
        if terminated or truncated:
            break
    assert info["lives"] == 0 and eval_steps > steps


def test_seeded_resets_are_reproducible() -> None:
    factory, spec = make_task("atari/Seaquest", grayscale=True)
    actions = np.random.default_rng(1).integers(0, spec.num_actions, 40)
    first, rewards1, _ = _rollout(factory("eval"), 7, actions)
    second, rewards2, _ = _rollout(factory("eval"), 7, actions)
    assert rewards1 == rewards2 and all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    starts = {factory("eval").reset(seed=s)[0].tobytes() for s in range(4)}
    assert len(starts) > 1  # the no-op start depends on the seed


def test_grayscale_frame_stack_and_protocol_options() -> None:
    factory, spec = make_task("atari/Pong", grayscale=True, frame_stack=4, image_size=84)
    assert spec.obs_shape == (4, 84, 84) and spec.num_actions == 6
    env = factory("eval")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and all(np.array_equal(obs[0], obs[i]) for i in range(4))
    previous = obs
    obs, *_ = env.step(0)
    assert np.array_equal(obs[:3], previous[1:])  # oldest frame dropped, newest appended
    assert spec.max_episode_steps == 27_000 and spec.action_repeat == 4
    assert "sticky actions p=0.0" in spec.eval_protocol and "108000" in spec.eval_protocol
    with pytest.raises(ValueError, match="sticky_actions"):
        make_task("atari/Pong", sticky_actions=1.0)
    with pytest.raises(ValueError, match="action must be in"):
        env.step(6)


def test_native_vector_env_matches_the_single_env_conventions() -> None:
    single = make_task("atari/Breakout", full_action_space=True)
    venv = make_atari_vector_env("Breakout", 2, mode="train", full_action_space=True)
    try:
        obs, _ = venv.reset(seed=0)
        assert obs.shape == (2, *single.spec.obs_shape) and obs.dtype == np.uint8
        assert venv.single_action_space.n == single.spec.num_actions
        total_raw = np.zeros(2)
        for _ in range(60):
            obs, reward, _, _, info = venv.step(np.array([1, 3]))
            assert np.array_equal(reward, np.sign(info["raw_reward"]))
            total_raw += info["raw_reward"]
        assert venv.observation_space.contains(obs)
    finally:
        venv.close()
    with pytest.raises(ValueError, match="no ALE ROM"):
        make_atari_vector_env("NotAGame", 1)
