"""Jericho adapter on the real story files, offline: check_env, walkthrough, invalid actions, cache."""

from __future__ import annotations

import importlib
import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from scalezero_adapters import (
    FALLBACK_COMMAND,
    JERICHO4,
    STORY_DIR_ENV,
    VALID_ACTIONS_CACHE,
    make_suite,
    make_task,
    resolve_story_file,
)


@pytest.mark.parametrize("game", JERICHO4)
def test_jericho4_builds_resets_steps_and_passes_check_env(game: str, story_dir: Path) -> None:
    factory, spec = make_task(f"jericho/{game}")
    env = factory("eval")
    env.action_space.seed(0)
    check_env(env, skip_render_check=True)
    obs, info = env.reset()
    assert set(obs) == {"text", "action_mask"} and env.observation_space.contains(obs)
    assert obs["action_mask"].shape == (spec.num_actions,) and spec.has_action_mask
    assert 1 <= obs["action_mask"].sum() == len(info["valid_actions"]) <= spec.num_actions
    assert "Valid actions: " + " | ".join(info["valid_actions"]) in obs["text"]
    obs, reward, terminated, truncated, info = env.step(0)  # slot 0 is always legal
    assert not info["invalid_action"] and info["command"] is not None and isinstance(reward, float)
    assert not (terminated or truncated)
    assert env.observation_space.contains(obs)


def test_jericho4_suite_specs(story_dir: Path) -> None:
    specs = {task.spec.task: task.spec for task in make_suite("jericho4")}
    assert {g: (s.num_actions, s.max_episode_steps) for g, s in specs.items()} == {
        "detective": (12, 100),
        "omniquest": (25, 100),
        "acorncourt": (45, 50),
        "zork1": (55, 500),
    }
    assert specs["detective"].reference_score == 350.0  # 360 max score, 10 awarded at the start
    assert all(s.modality == "text" and s.obs_dtype == "str" for s in specs.values())


def test_detective_walkthrough_reaches_the_max_score(story_dir: Path) -> None:
    factory, spec = make_task("jericho/detective", object_extraction="objtree", max_steps=100)
    env = factory("eval")
    _, info = env.reset()
    start_score, total = info["score"], 0.0
    for command in env.unwrapped.walkthrough():
        obs, reward, terminated, truncated, info = env.unwrapped.step_command(command)
        total += reward
        if terminated or truncated:
            break
    assert terminated and not truncated
    assert info["score"] == env.unwrapped.max_score == 360
    assert total == info["score"] - start_score == spec.reference_score
    # Game over: only the documented fallback command remains legal.
    assert info["valid_actions"] == (FALLBACK_COMMAND,) and obs["action_mask"].tolist() == [1] + [0] * 11


def test_invalid_index_is_an_explicit_noop_that_counts_toward_max_steps(story_dir: Path) -> None:
    factory, _ = make_task("jericho/zork1", max_steps=3)
    env = factory("train")
    obs, info = env.reset()
    invalid = int(np.flatnonzero(obs["action_mask"] == 0)[0])
    for step in range(1, 4):
        after, reward, terminated, truncated, info = env.step(invalid)
        assert info["invalid_action"] and reward == 0.0 and not terminated
        assert after["text"] == obs["text"] and info["moves"] == 0  # the game did not advance
        assert truncated == (step == 3)
    with pytest.raises(ValueError, match="action must be in"):
        env.step(55)


def test_no_download_and_no_spacy(story_dir: Path, offline_guard: list[str]) -> None:
    jericho_util = importlib.import_module("jericho.util")
    factory, _ = make_task("jericho/detective")
    env = factory()
    _, info = env.reset(seed=1)
    env.step(1)
    assert info["valid_actions"] and not offline_guard
    assert jericho_util.extract_objs.__module__ == "jericho.util"  # the patch is scoped to the call
    # The guard catches jericho's own spaCy path (which would download en_core_web_sm) ...
    with pytest.raises(Exception, match="blocked"):
        jericho_util.extract_objs("A brass lantern lies here.")
    # ... and any socket to the internet.
    with pytest.raises(Exception, match="blocked"):
        socket.create_connection(("raw.githubusercontent.com", 443), timeout=1)
    assert any("spacy" in a for a in offline_guard) and any("getaddrinfo" in a for a in offline_guard)
    offline_guard.clear()


def test_valid_actions_are_cached_by_world_state(story_dir: Path) -> None:
    factory, _ = make_task("jericho/detective")
    env = factory()
    env.reset()
    hits = VALID_ACTIONS_CACHE.hits
    start = time.perf_counter()
    other = factory()
    _, info = other.reset()
    assert VALID_ACTIONS_CACHE.hits == hits + 1 and time.perf_counter() - start < 0.5
    assert info["valid_actions"] == env.unwrapped.valid_actions()


def test_seeded_resets_are_reproducible(story_dir: Path) -> None:
    factory, _ = make_task("jericho/zork1", with_location_inventory=True)

    def rollout(seed: int) -> list[str]:
        env = factory()
        texts = [env.reset(seed=seed)[0]["text"]]
        for command in ("north", "east", "open window", "enter", "west", "take lamp"):
            texts.append(env.unwrapped.step_command(command)[0]["text"])
        return texts

    first = rollout(11)
    assert first == rollout(11)
    assert first[0].startswith("Location: West") and "Inventory: nothing" in first[0]
    assert first[-1].startswith("Location: Living") and "Inventory: brass lantern" in first[-1]


def test_missing_story_file_names_argument_and_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(STORY_DIR_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=f"story_dir.*{STORY_DIR_ENV}"):
        make_task("jericho/zork1")
    with pytest.raises(FileNotFoundError, match=f"argument story_dir.*{STORY_DIR_ENV}"):
        make_task("jericho/zork1", story_dir=str(tmp_path))
    monkeypatch.setenv(STORY_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=f"environment variable {STORY_DIR_ENV}.*story_file"):
        resolve_story_file("zork1")
    with pytest.raises(FileNotFoundError, match="argument story_file"):
        resolve_story_file("zork1", story_file=tmp_path / "nope.z5")


def test_story_file_argument_overrides_the_env_var(story_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STORY_DIR_ENV, os.devnull)
    _, spec = make_task("jericho/omniquest", story_file=str(story_dir / "omniquest.z5"), max_actions=8)
    assert spec.num_actions == 8
