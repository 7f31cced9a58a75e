"""Helpers of the CLI tests: tiny run settings and an in-process runner."""

from __future__ import annotations

import contextlib
import io

from scalezero_agents.cli import main

# tiny everything: 1 env, 2 simulations, batch 4; DMC cartpole-balance with action repeat 20 (50-step episodes)
TINY = ["--preset", "tiny", "--num-envs", "1", "--eval-episodes", "1", "--no-progress",
        "--set", "search.num_simulations=2", "--set", "eval_simulations=2", "--set", "learner.batch_size=4",
        "--set", "trainer.learning_starts=40"]
DMC = ["--tasks", "dmc/cartpole-balance", "--task-option", "dmc.action_repeat=20"]
DMC_EPISODE = 50


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()
