"""Shared pieces of the distributed tests: cheap configs, short classic-suite tasks, and a 2-process launcher."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scalezero_agents.dps import DPSConfig

REPO = Path(__file__).resolve().parents[2]
CHEAP = {"search.num_simulations": 2, "eval_simulations": 2, "learner.batch_size": 4, "replay.capacity": 2_000}
DPS = DPSConfig(num_stages=4, min_stage0_updates=4, max_stage_updates=10, rank=2, alpha=2.0,
                target_groups=("attention",))
"""Attention-only adapters of rank 2; the stage lasts at most 10 updates."""


def tiny_config(**overrides: Any) -> Any:
    """The ``tiny`` ScaleZero (MoE) preset with 2 simulations, batch 4 and a small replay."""
    from scalezero_agents.config import preset

    return preset("tiny", "scalezero", **{**CHEAP, **overrides})


def short_classic() -> list[Any]:
    """The ``classic`` suite with short episodes: gym tasks capped at 40 steps, DMC at action repeat 25 (40 steps)."""
    from scalezero_adapters import make_suite

    return make_suite("classic", gym={"max_episode_steps": 40}, dmc={"action_repeat": 25})


def easy_classic() -> list[Any]:
    """:func:`short_classic` where CartPole and cartpole-balance (rank 0's tasks with 2 ranks) are solved by any
    return and the other two never (no target: a 40-step Acrobot episode would reach its -100)."""
    from scalezero_adapters import Task

    tasks = short_classic()
    for t, target in ((0, -1e9), (1, None), (2, -1e9), (3, None)):
        tasks[t] = Task(tasks[t].factory, dataclasses.replace(tasks[t].spec, target_return=target))
    return tasks


def short_gym() -> list[Any]:
    """CartPole and Acrobot capped at 40 steps (no MuJoCo: the cheapest real two-task run)."""
    from scalezero_adapters import make_task

    return [make_task("gym/CartPole-v1", max_episode_steps=40), make_task("gym/Acrobot-v1", max_episode_steps=40)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rank_env(rank: int, world: int, port: int) -> dict[str, str]:
    """The environment torchrun would give rank ``rank``, single-threaded."""
    return {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
            "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONUNBUFFERED": "1"}


@dataclass
class RankResult:
    rank: int
    returncode: int
    output: str
    seconds: float
    """Time from the launch until this process ended."""


def run_ranks(args: list[str], *, world: int = 2, timeout: float = 120.0,
              wait_for: list[int] | None = None) -> list[RankResult]:
    """Run ``python -m tests.distributed.worker ARGS`` as ``world`` ranks.

    Waits for the ranks in ``wait_for`` (default: all) to end, then kills the others (their returncode is then
    ``-9``); raises ``TimeoutError`` if the awaited ranks run past ``timeout`` seconds.
    """
    wait = set(range(world) if wait_for is None else wait_for)
    port = free_port()
    start = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-m", "tests.distributed.worker", *args], cwd=REPO,
                              env=rank_env(r, world, port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for r in range(world)]
    results: list[RankResult | None] = [None] * world
    try:
        while any(results[r] is None for r in wait):
            for r, p in enumerate(procs):
                if results[r] is None and p.poll() is not None:
                    results[r] = RankResult(r, p.returncode, p.stdout.read() if p.stdout else "",
                                            time.monotonic() - start)
            if time.monotonic() - start > timeout:
                raise TimeoutError(f"ranks still running after {timeout} s (a hang): {args}")
            time.sleep(0.05)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [results[r] or RankResult(r, p.returncode, p.stdout.read() if p.stdout else "", time.monotonic() - start)
            for r, p in enumerate(procs)]


def torchrun(args: list[str], *, nproc: int = 2, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    """``torchrun --standalone --nproc_per_node=N -m tests.distributed.worker ARGS``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
           "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "tests.distributed.worker", *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
