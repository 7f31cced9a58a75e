"""TaskSpec validation and helpers."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from scalezero_adapters import TaskSpec


def _spec(**overrides: Any) -> TaskSpec:
    fields: dict[str, Any] = {
        "name": "atari/Pong",
        "family": "atari",
        "modality": "image",
        "obs_shape": (3, 64, 64),
        "obs_dtype": "uint8",
        "action_kind": "discrete",
        "num_actions": 6,
        "discount": 0.997,
        "max_episode_steps": 27_000,
        "random_score": -20.7,
        "reference_score": 14.6,
        "target_return": 20.0,
        "reward_transform": "sign",
        "eval_protocol": "raw score",
    }
    fields.update(overrides)
    return TaskSpec(**fields)


def test_valid_spec_exposes_convenience_properties() -> None:
    spec = _spec()
    assert spec.is_discrete and spec.action_size == 6 and spec.task == "Pong"
    assert spec.normalize(14.6) == pytest.approx(1.0)
    assert spec.normalize(-20.7) == pytest.approx(0.0)
    assert spec.is_solved(20.0) and not spec.is_solved(19.9)
    assert spec.transform_reward(7.0) == 1.0 and spec.transform_reward(-3.0) == -1.0


def test_spec_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _spec().discount = 0.5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"family": "mujoco"}, "family"),
        ({"name": "dmc/Pong"}, "name must look like"),
        ({"modality": "audio"}, "modality"),
        ({"obs_shape": (64, 64)}, "rank 3"),
        ({"obs_dtype": "float32"}, "dtype"),
        ({"num_actions": 0}, "num_actions"),
        ({"action_dim": 2}, "num_actions >= 1 and action_dim=None"),
        ({"discount": 1.5}, "discount"),
        ({"max_episode_steps": 0}, "max_episode_steps"),
        ({"reward_transform": "scale"}, "reward_transform"),
        ({"random_score": None}, "together"),
        ({"reference_score": -20.7}, "differ"),
        ({"eval_protocol": " "}, "eval_protocol"),
        ({"action_kind": "continuous", "num_actions": None, "action_dim": 2}, "action_low < action_high"),
    ],
)
def test_invalid_specs_raise_value_error(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _spec(**overrides)


def test_continuous_spec_and_vector_layout() -> None:
    spec = _spec(
        name="dmc/cartpole-balance",
        family="dmc",
        modality="vector",
        obs_shape=(5,),
        obs_dtype="float32",
        action_kind="continuous",
        num_actions=None,
        action_dim=1,
        action_low=-1.0,
        action_high=1.0,
        obs_layout=(("position", 3), ("velocity", 2)),
        random_score=0.0,
        reference_score=1000.0,
        reward_transform="none",
    )
    assert not spec.is_discrete and spec.action_size == 1
    assert spec.normalize(500.0) == pytest.approx(0.5)
    assert spec.transform_reward(3.5) == 3.5
    with pytest.raises(ValueError, match="do not sum"):
        dataclasses.replace(spec, obs_layout=(("position", 3),))
    with pytest.raises(ValueError, match="only supported for discrete"):
        dataclasses.replace(spec, has_action_mask=True)


def test_normalize_without_scores_raises() -> None:
    spec = _spec(random_score=None, reference_score=None)
    assert not spec.has_score_normalisation
    with pytest.raises(ValueError, match="no random/reference"):
        spec.normalize(1.0)
