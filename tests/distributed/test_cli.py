"""`scalezero train --distributed N`: the CLI re-runs itself under torchrun, rank 0 writes the run, and the run
resumes in one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cli.helpers import TINY, run_cli
from tests.distributed.helpers import REPO

GYM = ["--tasks", "gym/CartPole-v1", "gym/Acrobot-v1", "--task-option", "gym.max_episode_steps=40"]


def test_train_distributed_two_processes_then_resume_in_one(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "scalezero_agents.cli", "train", *GYM, *TINY, "--steps", "80",
           "--eval-interval", "0", "--distributed", "2", "--timeout", "120", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "launching 2 processes" in proc.stdout
    assert proc.stdout.count("eval @ 80 steps/task") == 1  # rank 0 alone prints
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["tasks"] == ["gym/CartPole-v1", "gym/Acrobot-v1"]
    # both tasks trained and were evaluated, each on its own rank, gathered into rank 0's summary
    for name in summary["tasks"]:
        assert summary["results"][name]["env_steps"] == 80 and "mean" in summary["results"][name]
    assert summary["updates"] == 10  # (80 - 40) * replay ratio 0.25, as in one process
    # the checkpoint resumes in one process (no --distributed), with the run's own settings
    code, stdout, stderr = run_cli(["train", "--out", str(out), "--resume", "--steps", "120"])
    assert code == 0, stderr
    assert "resuming at 80 steps/task" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 1 and summary["updates"] == 20
    assert [h["env_steps"] for h in json.loads((out / "history.json").read_text())] == [80, 120]


def test_train_distributed_rejects_more_processes_than_tasks(tmp_path: Path) -> None:
    code, _, stderr = run_cli(["train", *GYM, *TINY, "--steps", "80", "--distributed", "3",
                               "--out", str(tmp_path / "run")])
    assert code == 2
    assert "--distributed 3: every process needs a task, and this run has 2" in stderr
    assert not (tmp_path / "run").exists()  # nothing launched, nothing written
