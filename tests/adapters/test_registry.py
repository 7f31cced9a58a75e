"""make_task naming, suggestions and option errors; make_suite contents."""

from __future__ import annotations

import pickle

import pytest
from scalezero_adapters import (
    ATARI8,
    ATARI26,
    DMC18,
    JERICHO4,
    UnknownTaskError,
    list_tasks,
    make_suite,
    make_task,
)
from scalezero_adapters.suites import suite_task_names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("atari/pong", "atari/Pong"),
        ("atari/MsPacmn", "atari/MsPacman"),
        ("dmc/walker-wlak", "dmc/walker-walk"),
        ("jericho/zork", "jericho/zork1"),
        ("gym/CartPol-v1", "gym/CartPole-v1"),
    ],
)
def test_unknown_names_suggest_the_closest_valid_name(name: str, expected: str) -> None:
    with pytest.raises(UnknownTaskError, match="did you mean") as info:
        make_task(name)
    assert f"'{expected}'" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_family_and_bad_options() -> None:
    with pytest.raises(UnknownTaskError, match="family/task"):
        make_task("atri/Pong")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['grayscal'\].*allowed: \[.*'grayscale'"):
        make_task("atari/Pong", grayscal=True)
    with pytest.raises(TypeError, match="must be bool"):
        make_task("atari/Pong", grayscale=1)
    with pytest.raises(ValueError, match="action_repeat"):
        make_task("dmc/cartpole-balance", action_repeat=0)
    with pytest.raises(ValueError, match="unknown family"):
        list_tasks("mujoco")


def test_list_tasks_covers_every_family() -> None:
    names = set(list_tasks())
    assert {"atari/Pong", "dmc/walker-walk", "jericho/detective", "gym/CartPole-v1"} <= names
    assert not any(n.startswith(("gym/ALE/", "gym/dm_control/")) for n in names)


def test_factories_and_specs_pickle() -> None:
    factory, spec = make_task("gym/CartPole-v1")
    factory2, spec2 = pickle.loads(pickle.dumps((factory, spec)))
    assert spec2 == spec and factory2.options == factory.options
    env = factory2("train")
    assert env.reset(seed=0)[0].shape == (4,)
    with pytest.raises(ValueError, match="mode"):
        factory("test")  # type: ignore[arg-type]


def test_suite_task_lists() -> None:
    assert suite_task_names("atari8") == [f"atari/{g}" for g in ATARI8]
    assert suite_task_names("atari26")[:8] == suite_task_names("atari8") and len(ATARI26) == 26
    assert suite_task_names("dmc18") == [f"dmc/{t}" for t in DMC18] and len(DMC18) == 18
    assert suite_task_names("jericho4") == [f"jericho/{g}" for g in JERICHO4]
    assert suite_task_names("classic") == [
        "gym/CartPole-v1",
        "gym/Acrobot-v1",
        "dmc/cartpole-balance",
        "dmc/cartpole-swingup",
    ]
    with pytest.raises(ValueError, match="unknown suite"):
        suite_task_names("atari57")


def test_classic_suite_mixes_discrete_and_continuous() -> None:
    specs = [task.spec for task in make_suite("classic")]
    assert [s.is_discrete for s in specs] == [True, True, False, False]
    assert [s.action_repeat for s in specs] == [1, 1, 4, 4]
    assert [s.max_episode_steps for s in specs] == [500, 500, 250, 250]


def test_suite_settings_follow_scalezero() -> None:
    atari = [task.spec for task in make_suite("atari8")]
    assert all(s.num_actions == 18 and s.obs_shape == (3, 64, 64) for s in atari)
    assert all(s.reward_transform == "sign" and s.random_score is not None for s in atari)
    dmc = {task.spec.task: task.spec for task in make_suite("dmc18")}
    assert dmc["pendulum-swingup"].action_repeat == 8 and dmc["pendulum-swingup"].max_episode_steps == 125
    assert {s.action_repeat for name, s in dmc.items() if name != "pendulum-swingup"} == {4}
    overridden = make_suite("atari8", atari={"grayscale": True})
    assert all(t.spec.obs_shape == (1, 64, 64) for t in overridden)
    with pytest.raises(ValueError, match="unknown family"):
        make_suite("classic", mujoco={})
