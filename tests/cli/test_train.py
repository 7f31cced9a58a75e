"""`scalezero train`: outputs of a run, the summary, `--resume`, and the demo's arguments."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scalezero_agents.cli import build_parser
from scalezero_agents.cli.settings import resolve_settings
from scalezero_agents.demo import demo_train_args
from tests.cli.helpers import DMC, DMC_EPISODE, TINY, run_cli


def test_train_writes_checkpoint_summary_history_and_table(dmc_run: tuple[Path, str]) -> None:
    out, stdout = dmc_run
    for name in ("checkpoint.pt", "summary.json", "history.json", "run.json"):
        assert (out / name).is_file(), name
    history = json.loads((out / "history.json").read_text())
    assert [h["env_steps"] for h in history] == [80]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tasks"] == ["dmc/cartpole-balance"] and summary["seed"] == 0
    assert set(summary["versions"]) == {"python", "torch", "numpy", "scalezero_agents"}
    assert summary["config"]["agent"]["search"]["num_simulations"] == 2  # --set reached the config
    assert summary["config"]["agent"]["model"]["ffn"] == "dense"  # one task: unizero
    assert summary["config"]["trainer"]["learning_starts"] == 40  # --set trainer.* reached the trainer
    res = summary["results"]["dmc/cartpole-balance"]
    assert res["env_steps"] == 80 and res["length"] == DMC_EPISODE  # the task option (action repeat 20) applied
    assert res["min"] <= res["mean"] <= res["max"]
    assert res["mean"] == history[-1]["tasks"]["dmc/cartpole-balance"]["mean"]
    assert res["solved"] is False and res["normalized"] == pytest.approx(res["mean"] / 1000)
    assert summary["env_steps"] == 80 and summary["updates"] == 10  # (80 - 40) * replay ratio 0.25
    assert summary["env_steps_per_s"] > 0 and summary["updates_per_s"] > 0 and summary["wall_time_s"] > 0
    assert summary["git"] is None or len(summary["git"]["commit"]) == 40
    assert "dmc/cartpole-balance" in stdout and "return" in stdout and "env steps" in stdout
    assert "eval @ 80 steps/task" in stdout


def test_resume_continues_the_run(dmc_run: tuple[Path, str], tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(dmc_run[0], out)
    before = json.loads((out / "history.json").read_text())
    code, stdout, stderr = run_cli(["train", "--out", str(out), "--resume", "--steps", "120"])
    assert code == 0, stderr
    assert "resuming at 80 steps/task" in stdout
    history = json.loads((out / "history.json").read_text())
    assert history[:1] == before and [h["env_steps"] for h in history] == [80, 120]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] is True and summary["settings"]["steps"] == 120
    assert summary["results"]["dmc/cartpole-balance"]["env_steps"] == 120 and summary["updates"] == 20


def test_settings_resolution_defaults_and_resume_rules(dmc_run: tuple[Path, str]) -> None:
    parser = build_parser()
    fresh = resolve_settings(parser.parse_args(["train", "--suite", "classic", "--seed", "3"]))
    assert fresh.out == str(Path("runs") / "classic-s3") and fresh.preset == "small" and fresh.steps == 20_000
    subset = resolve_settings(parser.parse_args(["train", "--suite", "classic", "--tasks", "gym/CartPole-v1"]))
    assert subset.out == str(Path("runs") / "classic-gym_CartPole-v1-s0")
    out = str(dmc_run[0])
    resumed = resolve_settings(parser.parse_args(["train", "--out", out, "--resume", "--steps", "500", *DMC]))
    assert resumed.steps == 500 and resumed.tasks == ("dmc/cartpole-balance",) and resumed.preset == "tiny"
    assert resumed.overrides == tuple(TINY[TINY.index("--set") + 1::2])


def test_demo_runs_the_train_command_with_tiny_settings() -> None:
    settings = resolve_settings(build_parser().parse_args(demo_train_args(2_000, 0, "runs/demo")))
    assert settings.suite == "classic" and settings.preset == "tiny" and settings.variant == "scalezero"
    assert settings.steps == 2_000 and settings.out == "runs/demo" and settings.num_envs == 4


@pytest.mark.slow
def test_demo_writes_checkpoint_and_summary(tmp_path: Path) -> None:
    from scalezero_agents.demo import main as demo_main

    assert demo_main(["--steps", "600", "--out", str(tmp_path / "demo")]) == 0
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert len(summary["results"]) == 4 and all("mean" in r for r in summary["results"].values())
    assert (tmp_path / "demo" / "checkpoint.pt").is_file()
