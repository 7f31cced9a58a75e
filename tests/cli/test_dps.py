"""Runs with Dynamic Parameter Scaling: the CLI resumes them, and checkpoints with adapters evaluate."""

from __future__ import annotations

import json
from pathlib import Path

from scalezero_adapters import make_task

from scalezero_agents.config import preset
from scalezero_agents.dps import DPSCallback, DPSConfig
from scalezero_agents.evaluation import evaluate_checkpoint, evaluate_trainer
from scalezero_agents.training import MultiTaskTrainer, TrainerConfig
from tests.cli.helpers import TINY, run_cli


def test_cli_dps_run_resumes(tmp_path: Path) -> None:
    out = str(tmp_path / "run")
    code, _, stderr = run_cli(["train", "--tasks", "gym/CartPole-v1", *TINY, "--dps", "--stop-when-solved",
                               "--steps", "60", "--eval-interval", "0", "--out", out])
    assert code == 0, stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["dps"]["stage"] == 0 and summary["dps"]["config"]["rank"] == DPSConfig().rank
    code, _, stderr = run_cli(["train", "--out", out, "--resume", "--steps", "80"])  # needs the DPS callback back
    assert code == 0, stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["env_steps"] == 80


def test_checkpoint_with_adapters_evaluates_like_the_trainer(tmp_path: Path) -> None:
    dps = DPSCallback(DPSConfig(num_stages=3, min_stage0_updates=2, max_stage_updates=2, rank=2, alpha=2.0,
                                target_groups=("attention",)))
    config = preset("tiny", "unizero", **{"search.num_simulations": 2, "eval_simulations": 2,
                                          "learner.batch_size": 4})
    trainer = MultiTaskTrainer([make_task("gym/CartPole-v1")], config=config, seed=0, callbacks=[dps],
                               trainer=TrainerConfig(num_envs=1, replay_ratio=0.5, learning_starts=20,
                                                     eval_interval=0, eval_episodes=1), progress_bar=False)
    trainer.train(40)
    assert dps.controller.stage == 2  # two LoRA adapters
    path = trainer.save(tmp_path / "dps.pt")
    expected = evaluate_trainer(trainer, episodes=2, seed=3).results
    assert evaluate_checkpoint(path, episodes=2, seed=3) == expected
