"""Bad arguments end with exit status 2 and a one-line message, before anything is trained or written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import scalezero_agents
from tests.cli.helpers import DMC, TINY, run_cli

CARTPOLE = ["--tasks", "gym/CartPole-v1"]


@pytest.mark.parametrize(("argv", "message"), [
    (["train", "--tasks", "gym/CartPol-v1"], "unknown task 'gym/CartPol-v1'; did you mean 'gym/CartPole-v1'"),
    (["train", "--suite", "classics"], "unknown suite 'classics'"),
    (["train", "--suite", "classic", "--tasks", "gym/Pendulum-v1"], "not in suite 'classic'"),
    (["train", *CARTPOLE, "--preset", "huge"], "unknown preset 'huge'"),
    (["train", *CARTPOLE, "--variant", "muzero"], "unknown variant 'muzero'"),
    (["train", *CARTPOLE, "--set", "learner.nope=1"], "bad --set: unknown config key(s) ['learner.nope']"),
    (["train", *CARTPOLE, "--set", "learner.batch_size=abc"], "batch_size must be a positive int"),
    (["train", *CARTPOLE, "--set", "batch_size"], "--set takes KEY=VALUE"),
    (["train", *CARTPOLE, "--set", "trainer.nope=1"], "unknown trainer setting(s) ['trainer.nope']"),
    (["train", *CARTPOLE, "--num-envs", "0"], "num_envs must be a positive int"),
    (["train", *CARTPOLE, "--task-option", "dmc.action_repeat=4"], "no task of that family"),
    (["train", *DMC, "--task-option", "dmc.repeat=4"], "unknown option(s) ['repeat']"),
    (["train", *CARTPOLE, "--steps", "0"], "steps must be an int >= 1"),
    (["train"], "give --suite NAME or --tasks NAME"),
    (["train", "--resume"], "--resume needs --out DIR"),
    (["bench", "nope"], "unknown benchmark 'nope'"),
])
def test_bad_arguments_exit_2_with_a_message(argv: list[str], message: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with_out = argv[0] == "train" and "--resume" not in argv
    code, _, stderr = run_cli([*argv, "--out", str(out)] if with_out else argv)
    assert code == 2
    assert message in stderr and stderr.count("\n") == 1 and "Traceback" not in stderr
    assert not out.exists()  # nothing written


def test_bad_checkpoints_and_tasks_exit_2(dmc_run: tuple[Path, str], tmp_path: Path) -> None:
    run = str(dmc_run[0])
    not_a_checkpoint = tmp_path / "notes.txt"
    not_a_checkpoint.write_text("hello")
    cases = [
        (["eval", str(tmp_path / "missing.pt")], "no checkpoint at"),
        (["eval", str(tmp_path)], "no checkpoint at"),
        (["eval", str(not_a_checkpoint)], "is not a MultiTaskTrainer checkpoint"),
        (["eval", run, "--tasks", "gym/CartPole-v1"], "not in the checkpoint; it was trained on ['dmc/cartpole-"),
        (["eval", run, "--tasks", "dmc/cartpol-balance"], "unknown task 'dmc/cartpol-balance'"),
        (["train", "--out", str(tmp_path / "none"), "--resume"], "nothing to resume"),
        (["train", "--out", run, "--resume", "--preset", "small"], "it used preset='tiny', not 'small'"),
        (["train", *DMC, *TINY, "--steps", "10", "--out", run], "already holds a run"),
        (["train", "--out", run, "--resume", "--overwrite"], "exclude each other"),
    ]
    for argv, message in cases:
        code, _, stderr = run_cli(argv)
        assert code == 2 and message in stderr and "Traceback" not in stderr, (argv, stderr)


def test_argparse_errors_also_return_2() -> None:
    code, _, stderr = run_cli(["eval", "some.pt", "--episodes", "0"])
    assert code == 2 and "expected a positive integer" in stderr
    assert run_cli(["frobnicate"])[0] == 2


def test_version_and_module_entry_point() -> None:
    code, stdout, _ = run_cli(["--version"])
    assert code == 0 and stdout.strip() == f"scalezero-agents {scalezero_agents.__version__}"
    proc = subprocess.run([sys.executable, "-m", "scalezero_agents.cli", "--version"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == stdout.strip()


def test_bench_lists_the_benchmarks() -> None:
    code, stdout, _ = run_cli(["bench", "--list"])
    assert code == 0 and "mcts" in stdout and "learning" in stdout
