"""The orchestrator's ScaleZero path: real (tiny) training runs through ``suite.run_job`` -> run records."""

from __future__ import annotations

import json

import pytest
from report import load_runs, render_table
from suite import Job, run_job, settings_for

CARTPOLE = ("gym/CartPole-v1", {})
SHORT_ACROBOT = ("gym/Acrobot-v1", {"max_episode_steps": 50})


def _settings(tasks, methods, **changes):
    return settings_for("classic", "quick", tasks=tasks, methods=methods, steps=64, learning_starts=32,
                        eval_interval=32, eval_episodes=1, num_envs=2, **changes)


def test_unizero_job_writes_a_record_with_checkpoint_and_final_evaluation(tmp_path):
    settings = _settings((CARTPOLE,), ("unizero",), final_episodes=2)
    path = run_job(Job("unizero", (CARTPOLE,), seed=1), settings, str(tmp_path))
    record = json.loads(open(path).read())
    assert record["method"] == "unizero" and record["seed"] == 1 and record["benchmark"] == "classic"
    assert record["config"]["agent"]["model"]["ffn"] == "dense" and record["versions"]["torch"]
    curve = record["curves"]["gym/CartPole-v1"]
    assert [p["env_steps"] for p in curve] == [32, 64] and record["env_steps"] == {"gym/CartPole-v1": 64}
    assert record["updates"] == 8  # (64 - 32) * 0.25
    final = record["final_eval"]["gym/CartPole-v1"]
    assert final["episodes"] == 2 and final["min"] <= final["mean"] <= final["max"]
    assert (tmp_path / "unizero_gym_CartPole-v1_s1.pt").is_file()


@pytest.mark.slow
def test_multitask_dps_job_stages_and_reports(tmp_path):
    settings = _settings((CARTPOLE, SHORT_ACROBOT), ("scalezero-dps",))
    run_job(Job("scalezero-dps", (CARTPOLE, SHORT_ACROBOT), seed=0), settings, str(tmp_path))
    (record,) = load_runs(tmp_path)
    assert record["method"] == "scalezero-dps" and record["config"]["agent"]["model"]["ffn"] == "moe"
    assert record["config"]["dps"]["min_stage0_updates"] == 3 and record["config"]["dps"]["max_stage_updates"] == 1
    assert set(record["curves"]) == {"gym/CartPole-v1", "gym/Acrobot-v1"}
    dps = record["callback_states"]["dps"]
    assert dps["stage"] == 4 and len(dps["adapters"]) == 4  # 8 updates: switches after 3, 4, 5 and 6
    table = render_table([record], task_info={"gym/CartPole-v1": {"random": 22.7, "reference": 500.0}})
    assert "ScaleZero+DPS (MT)" in table and "IQM normalised" in table
