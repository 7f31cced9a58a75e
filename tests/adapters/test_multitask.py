"""Multi-task env: unified spaces, per-task round trips, action rules, vector forms, SB3 compatibility."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from scalezero_adapters import (
    MultiTaskEnv,
    MultiTaskLayout,
    make_multitask_vector_env,
    make_suite,
    make_task,
    multitask_env_fns,
    task_view,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*infinity")


def _assert_same_obs(native: object, view_obs: object) -> None:
    if isinstance(native, dict):
        assert isinstance(view_obs, dict) and set(view_obs) == set(native)
        for key in native:
            _assert_same_obs(native[key], view_obs[key])
    elif isinstance(native, str):
        assert view_obs == native
    else:
        np.testing.assert_array_equal(view_obs, native)
        assert view_obs.dtype == native.dtype


def test_classic_suite_unified_spaces_follow_the_mixed_rule() -> None:
    env = MultiTaskEnv(make_suite("classic"))
    layout = env.layout
    assert layout.action_kind == "mixed" and layout.action_size == 3  # max(CartPole 2, Acrobot 3, DMC 1)
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    assert set(env.observation_space.spaces) == {"task_id", "vector", "action_mask"}
    assert env.observation_space["vector"].shape == (6,)  # Acrobot has 6 dims, the others fewer
    check_env(env, skip_render_check=True)
    seen = []
    for _ in range(4):  # round robin over the four tasks
        obs, info = env.reset()
        seen.append(int(obs["task_id"]))
        spec = layout.specs[info["task_id"]]
        assert obs["action_mask"].tolist() == [1] * spec.action_size + [0] * (3 - spec.action_size)
    assert sorted(seen) == [0, 1, 2, 3]


@pytest.mark.parametrize("suite", ["classic", "mixed_modalities"])
def test_task_views_round_trip_against_the_native_envs(suite: str) -> None:
    if suite == "classic":
        tasks = make_suite("classic")
    else:
        tasks = [make_task("atari/Pong", grayscale=True), make_task("atari/Breakout"), make_task("gym/Pendulum-v1")]
    env = MultiTaskEnv(tasks, mode="eval")
    rng = np.random.default_rng(0)
    for task_id, task in enumerate(tasks):
        native_env = task.factory("eval")
        native, _ = native_env.reset(seed=10 + task_id)
        obs, _ = env.reset(seed=10 + task_id, options={"task_id": task_id})
        for _ in range(5):
            view = env.layout.task_view(obs)
            assert view.task_id == task_id
            _assert_same_obs(native, view.obs)
            native_action = (
                native_env.action_space.sample()
                if not task.spec.is_discrete
                else int(rng.integers(task.spec.num_actions))
            )
            unified = env.layout.encode_action(task_id, native_action)
            decoded, remapped = env.layout.decode_action(task_id, unified, obs["action_mask"])
            np.testing.assert_array_equal(decoded, native_action)
            assert not remapped
            native, native_reward, *_ = native_env.step(native_action)
            obs, reward, *_ = env.step(unified)
            assert reward == native_reward


def test_layout_round_trips_text_tasks_and_pads_images(story_dir: Path) -> None:
    tasks = [make_task("jericho/detective"), make_task("atari/Pong", grayscale=True), make_task("atari/Pong")]
    layout = MultiTaskLayout.from_specs([t.spec for t in tasks])
    assert layout.action_kind == "discrete" and layout.action_size == 12
    assert layout.image_shape == (3, 64, 64) and layout.text_length == 2048
    text_obs = {"text": "You are in an office.\nValid actions: east | west", "action_mask": np.int8([1, 1] + [0] * 10)}
    unified = layout.to_unified(0, text_obs)
    assert layout.observation_space().contains(unified)
    view = task_view(unified, layout)
    _assert_same_obs(text_obs, view.obs)
    assert view.action_mask.tolist() == text_obs["action_mask"].tolist()
    gray = np.random.default_rng(0).integers(0, 256, (1, 64, 64), dtype=np.uint8)
    unified = layout.to_unified(1, gray)
    assert not unified["image"][1:].any() and not unified["text"].any()
    assert unified["action_mask"].tolist() == [1] * 6 + [0] * 6
    _assert_same_obs(gray, layout.task_view(unified).obs)
    with pytest.raises(ValueError, match="share"):
        MultiTaskLayout.from_specs([tasks[1].spec, make_task("atari/Pong", image_size=84).spec])


def test_discrete_padding_slots_are_remapped_modulo_the_task_size() -> None:
    env = MultiTaskEnv([make_task("gym/CartPole-v1"), make_task("gym/Acrobot-v1")])
    assert env.action_space == gym.spaces.Discrete(3)
    env.reset(seed=0, options={"task_id": 0})
    assert env.action_masks().tolist() == [True, True, False]
    _, _, _, _, info = env.step(2)
    assert info["action_remapped"] and env.layout.decode_action(0, 2) == (0, True)
    _, _, _, _, info = env.step(1)
    assert not info["action_remapped"]


def test_mixed_suite_discrete_tasks_play_the_masked_argmax() -> None:
    layout = MultiTaskLayout.from_specs([make_task("gym/CartPole-v1").spec, make_task("gym/Pendulum-v1").spec])
    assert layout.action_kind == "mixed" and layout.action_size == 2
    assert layout.decode_action(0, np.float32([0.2, 0.9])) == (1, False)
    assert layout.decode_action(0, np.float32([0.5, 0.5])) == (0, False)  # ties: lowest index
    assert layout.decode_action(0, np.float32([0.2, 0.9]), np.int8([1, 0])) == (0, False)  # masked out
    action, _ = layout.decode_action(1, np.float32([0.3, -0.7]))
    np.testing.assert_array_equal(action, np.float32([0.3]))


def test_uniform_schedule_is_seeded() -> None:
    tasks = make_suite("classic")

    def sequence(seed: int) -> list[int]:
        env = MultiTaskEnv(tasks, schedule="uniform")
        first = [int(env.reset(seed=seed)[0]["task_id"])]
        return first + [int(env.reset()[0]["task_id"]) for _ in range(11)]

    assert sequence(3) == sequence(3) and len(set(sequence(3))) > 1
    with pytest.raises(ValueError, match="schedule"):
        MultiTaskEnv(tasks, schedule="cyclic")  # type: ignore[arg-type]


def test_vector_forms_pin_one_task_per_sub_env() -> None:
    tasks = make_suite("classic")
    fns = multitask_env_fns(tasks, envs_per_task=2)
    assert [fn().pinned_task for fn in fns] == [0, 1, 2, 3, 0, 1, 2, 3]
    venv = make_multitask_vector_env(tasks)
    obs, _ = venv.reset(seed=0)
    assert obs["task_id"].tolist() == [0, 1, 2, 3] and obs["vector"].shape == (4, 6)
    views = MultiTaskLayout.from_specs([t.spec for t in tasks]).task_views(obs)
    assert [v.obs.shape for v in views] == [(4,), (6,), (5,), (5,)]
    obs, reward, terminated, truncated, _ = venv.step(venv.action_space.sample())
    assert reward.shape == (4,) and venv.single_observation_space.contains({k: v[0] for k, v in obs.items()})
    assert terminated.shape == truncated.shape == (4,)
    venv.close()


def test_stable_baselines3_vec_env_accepts_the_multitask_env() -> None:
    sb3_vec_env = pytest.importorskip("stable_baselines3.common.vec_env")
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    tasks = [make_task("gym/CartPole-v1"), make_task("gym/Acrobot-v1")]
    sb3_checker.check_env(MultiTaskEnv(tasks), warn=False)
    venv = sb3_vec_env.DummyVecEnv(multitask_env_fns(tasks))
    obs = venv.reset()
    assert obs["task_id"].tolist() == [0, 1] and obs["vector"].shape == (2, 6)
    masks = venv.env_method("action_masks")
    assert [m.tolist() for m in masks] == [[True, True, False], [True, True, True]]
    obs, reward, done, info = venv.step(np.array([1, 2]))
    assert reward.shape == done.shape == (2,) and [i["task_id"] for i in info] == [0, 1]


def test_layout_validation_rejects_inconsistent_layouts() -> None:
    specs = (make_task("gym/CartPole-v1").spec, make_task("gym/Acrobot-v1").spec)
    layout = MultiTaskLayout.from_specs(specs)
    assert (layout.vector_dim, layout.action_size, layout.image_shape, layout.text_length) == (6, 3, None, None)
    with pytest.raises(ValueError, match="action_size"):
        MultiTaskLayout(specs, None, 6, None, "discrete", 2)
    with pytest.raises(ValueError, match="vector size"):
        MultiTaskLayout(specs, None, 4, None, "discrete", 3)
    with pytest.raises(ValueError, match="at least one task"):
        MultiTaskLayout.from_specs([])
    with pytest.raises(ValueError, match="task_id"):
        MultiTaskEnv([make_task("gym/CartPole-v1")], task_id=1)
