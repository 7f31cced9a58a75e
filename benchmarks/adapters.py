"""Per-step overhead of each adapter over the raw env it wraps.

For every case the raw env (what a user would build by hand) and the adapter env get the same pre-drawn
action sequence; they are run side by side in ``--rounds`` rounds (alternating which goes first), each round
timing ``--steps`` ``step()`` calls (resets are excluded from the timing). The table reports the median
ms/step of each and the overhead of the median adapter time over the median raw time. Goal: < 10% for
Atari and DMC.

Raw envs: Atari = ``gym.make("ALE/<Game>-v5", frameskip=1, repeat_action_probability=0)`` +
``AtariPreprocessing(frame_skip=4, screen_size=64, noop_max=30)``, or ALE's ``AtariVectorEnv``; DMC =
``FlattenObservation(gym.make("dm_control/<task>-v0"))`` (+ ``RepeatAction``; pixels: shimmy's renderer with
shadows/reflections off + ``AddRenderObservation`` after the repeat); Gym = ``gym.make(id)``; Jericho =
``FrotzEnv.step`` + the world-state hash (the cache key any agent needs) with the adapter's cache warm.

Usage::

    python benchmarks/adapters.py                 # all cases
    python benchmarks/adapters.py --only atari --rounds 5 --steps 1000 --json bench_results/adapters.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from scalezero_adapters import STORY_DIR_ENV, Mode, make_atari_vector_env, make_task, select_gl_backend


@dataclass(frozen=True)
class Case:
    """One benchmark: builders for the raw and the adapter env, and a sampler of actions."""

    name: str
    family: str
    make_raw: Callable[[], Any]
    make_adapter: Callable[[], Any]
    sample: Callable[[np.random.Generator], Any]


def _atari_raw(game: str, grayscale: bool) -> gym.Env:
    import ale_py
    from gymnasium.wrappers import AtariPreprocessing

    gym.register_envs(ale_py)
    base = gym.make(
        f"ALE/{game}-v5", frameskip=1, repeat_action_probability=0.0, obs_type="grayscale" if grayscale else "rgb"
    )
    return AtariPreprocessing(base, noop_max=30, frame_skip=4, screen_size=64, grayscale_obs=grayscale)


def _atari_native_raw(game: str, num_envs: int) -> Any:
    from ale_py.vector_env import AtariVectorEnv

    return AtariVectorEnv(
        game,
        num_envs,
        img_height=64,
        img_width=64,
        grayscale=False,
        stack_num=1,
        reward_clipping=False,
        use_fire_reset=False,
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )


def _dmc_raw(domain_task: str, repeat: int, pixels: bool) -> gym.Env:
    import shimmy
    from gymnasium.wrappers import FlattenObservation, RepeatAction

    gym.register_envs(shimmy)
    kwargs: dict[str, Any] = {}
    if pixels:
        kwargs = {
            "render_mode": "rgb_array",
            "render_kwargs": {
                "width": 64,
                "height": 64,
                "camera_id": 0,
                "render_flag_overrides": {"shadow": False, "reflection": False},
            },
        }
    env: gym.Env = FlattenObservation(gym.make(f"dm_control/{domain_task}-v0", **kwargs))
    if repeat > 1:
        env = RepeatAction(env, repeat)
    if pixels:
        from gymnasium.wrappers import AddRenderObservation

        env = AddRenderObservation(env, render_only=True)
    return env


class _RawJericho:
    """The raw jericho loop an agent needs per step: step + world hash (the cache key) + cached actions."""

    def __init__(self, story_file: str) -> None:
        from jericho import FrotzEnv

        self.env = FrotzEnv(story_file)
        self.cache: dict[str, list[str]] = {}

    def reset(self, seed: int | None = None) -> Any:
        return self.env.reset()

    def step(self, command: str) -> Any:
        out = self.env.step(command)
        self.cache.setdefault(self.env.get_world_state_hash(), [])
        return out[0], out[1], out[2], False, out[3]

    def close(self) -> None:
        self.env.close()


def _discrete(n: int) -> Callable[[np.random.Generator], int]:
    return lambda rng: int(rng.integers(n))


def _continuous(d: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.uniform(-1, 1, d).astype(np.float32)


def _adapter(name: str, mode: Mode = "eval", **options: Any) -> Callable[[], gym.Env]:
    return lambda: make_task(name, **options).factory(mode)


def _atari_cases() -> list[Case]:
    return [
        Case("atari/Pong rgb64", "atari", lambda: _atari_raw("Pong", False), _adapter("atari/Pong"), _discrete(6)),
        Case(
            "atari/Pong gray64 (train: clip)",
            "atari",
            lambda: _atari_raw("Pong", True),
            _adapter("atari/Pong", "train", grayscale=True),
            _discrete(6),
        ),
        Case(
            "atari/MsPacman rgb64 full18",
            "atari",
            lambda: _atari_raw("MsPacman", False),
            _adapter("atari/MsPacman", full_action_space=True),
            _discrete(9),
        ),
        Case(
            "atari native vec x2 Breakout",
            "atari",
            lambda: _atari_native_raw("breakout", 2),
            lambda: make_atari_vector_env("Breakout", 2),
            lambda rng: rng.integers(0, 4, 2),
        ),
    ]


def _dmc_cases() -> list[Case]:
    return [
        Case(
            "dmc/cartpole-swingup state",
            "dmc",
            lambda: _dmc_raw("cartpole-swingup", 1, False),
            _adapter("dmc/cartpole-swingup"),
            _continuous(1),
        ),
        Case(
            "dmc/walker-walk state rep4",
            "dmc",
            lambda: _dmc_raw("walker-walk", 4, False),
            _adapter("dmc/walker-walk", action_repeat=4),
            _continuous(6),
        ),
        Case(
            "dmc/cheetah-run pixels64 rep4",
            "dmc",
            lambda: _dmc_raw("cheetah-run", 4, True),
            _adapter("dmc/cheetah-run", pixels=True, action_repeat=4),
            _continuous(6),
        ),
    ]


def _other_cases() -> list[Case]:
    cases = [Case("gym/CartPole-v1", "gym", lambda: gym.make("CartPole-v1"), _adapter("gym/CartPole-v1"), _discrete(2))]
    story_dir = os.environ.get(STORY_DIR_ENV)
    if story_dir and Path(story_dir, "zork1.z5").is_file():
        commands = ["north", "east", "open window", "enter", "west", "take lamp", "east", "up", "down", "west"]
        cases.append(
            Case(
                "jericho/zork1 step_command (warm cache)",
                "jericho",
                lambda: _RawJericho(str(Path(story_dir, "zork1.z5"))),
                lambda: _JerichoCommands(make_task("jericho/zork1").factory()),
                lambda rng: commands,
            )
        )
    return cases


class _JerichoCommands:
    """Adapter counterpart of ``_RawJericho``: plays raw commands through ``step_command``."""

    def __init__(self, env: gym.Env) -> None:
        self.env = env

    def reset(self, seed: int | None = None) -> Any:
        return self.env.reset()

    def step(self, command: str) -> Any:
        return self.env.unwrapped.step_command(command)

    def close(self) -> None:
        self.env.close()


def _time_steps(env: Any, actions: list[Any], seed: int) -> float:
    """Seconds spent inside ``step`` for ``actions`` (resets excluded); vector envs autoreset themselves."""
    env.reset(seed=seed)
    total = 0.0
    for action in actions:
        start = time.perf_counter()
        _, _, terminated, truncated, _ = env.step(action)
        total += time.perf_counter() - start
        if np.ndim(terminated) == 0 and (terminated or truncated):
            env.reset()
    return total


def run_case(case: Case, rounds: int, steps: int) -> dict[str, Any]:
    """Time ``case`` side by side; returns medians in ms/step and the overhead in percent."""
    raw, adapter = case.make_raw(), case.make_adapter()
    rng = np.random.default_rng(0)
    if case.family == "jericho":  # replay one fixed command list from a reset (warm cache after warm-up)
        actions = list(case.sample(rng))
    else:
        actions = [case.sample(rng) for _ in range(steps)]
    _time_steps(raw, actions[: min(50, len(actions))], 0)  # warm-up (first render, caches)
    _time_steps(adapter, actions[: min(50, len(actions))], 0)
    raw_ms, adapter_ms = [], []
    for r in range(rounds):
        order = [(raw, raw_ms), (adapter, adapter_ms)]
        for env, sink in order if r % 2 == 0 else order[::-1]:
            repeats = max(1, steps // len(actions))
            seconds = sum(_time_steps(env, actions, r) for _ in range(repeats))
            sink.append(1e3 * seconds / (repeats * len(actions)))
    raw_med, adapter_med = statistics.median(raw_ms), statistics.median(adapter_ms)
    raw.close()
    adapter.close()
    return {
        "case": case.name,
        "family": case.family,
        "raw_ms": raw_med,
        "adapter_ms": adapter_med,
        "overhead_pct": 100.0 * (adapter_med - raw_med) / raw_med,
        "rounds": rounds,
        "steps": steps,
    }


def _print_table(rows: list[dict[str, Any]]) -> None:
    header = f"{'case':44s} {'raw ms/step':>12s} {'adapter ms/step':>16s} {'overhead':>9s}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row['case']:44s} {row['raw_ms']:12.4f} {row['adapter_ms']:16.4f} {row['overhead_pct']:8.1f}%")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table (and write JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="side-by-side rounds per case (median reported)")
    parser.add_argument("--steps", type=int, default=600, help="timed steps per env per round")
    parser.add_argument("--only", choices=["atari", "dmc", "gym", "jericho"], help="run one family only")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.steps < 1:
        parser.error("--rounds and --steps must be >= 1")
    select_gl_backend()
    rows = []
    for case in _atari_cases() + _dmc_cases() + _other_cases():
        if args.only is None or case.family == args.only:
            rows.append(run_case(case, args.rounds, args.steps))
            print(f"done: {case.name}", file=sys.stderr)
    _print_table(rows)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
