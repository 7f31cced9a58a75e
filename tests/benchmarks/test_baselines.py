"""SB3 baselines under the benchmark protocol, and the orchestrator's settings and job list (real envs, real SB3)."""

from __future__ import annotations

import numpy as np
import pytest
from baselines import (
    curve_eval_base,
    evaluate_protocol,
    final_eval_base,
    hyperparameters,
    make_env,
    run_baseline,
)
from report import validate_record
from scalezero_adapters import make_task
from suite import Settings, make_jobs, settings_for

pytest.importorskip("stable_baselines3")


@pytest.fixture(scope="module")
def cartpole():
    return make_task("gym/CartPole-v1")


@pytest.fixture(scope="module")
def balance():
    return make_task("dmc/cartpole-balance", action_repeat=4)


def test_zoo_values_and_budget_rules(cartpole, balance):
    hp, source, adjusted = hyperparameters("dqn", cartpole.spec, 50_000)
    assert source == "rl-baselines3-zoo hyperparams/dqn.yml CartPole-v1"
    assert hp["learning_rate"] == 2.3e-3 and hp["train_freq"] == 256 and hp["learning_starts"] == 1_000
    assert adjusted == {"buffer_size": [100_000, 50_000]}
    hp, _, adjusted = hyperparameters("dqn", cartpole.spec, 6_000)
    assert hp["learning_starts"] == 600 and hp["buffer_size"] == 6_000
    assert adjusted == {"learning_starts": [1_000, 600], "buffer_size": [100_000, 6_000]}
    hp, _, adjusted = hyperparameters("ppo", make_task("gym/Acrobot-v1").spec, 6_000)
    assert hp["n_envs"] == 16 and hp["normalize"] is True
    rollout = hp["n_steps"] * hp["n_envs"]
    assert rollout <= 6_000 // 4 and rollout % 64 == 0 and adjusted["n_steps"] == [256, 92]  # whole mini-batches
    hp, source, adjusted = hyperparameters("sac", balance.spec, 8_000)
    assert "mujoco-defaults" in source and hp["learning_starts"] == 800
    _, source, _ = hyperparameters("ppo", make_task("gym/MountainCar-v0").spec, 1_000)
    assert source == "SB3 defaults (no zoo entry)"


def test_algorithms_refuse_the_wrong_action_space(cartpole, balance):
    with pytest.raises(ValueError, match="dqn cannot act on dmc/cartpole-balance"):
        hyperparameters("dqn", balance.spec, 1_000)
    with pytest.raises(ValueError, match="sac cannot act on gym/CartPole-v1"):
        hyperparameters("sac", cartpole.spec, 1_000)
    with pytest.raises(ValueError, match="unknown baseline 'a2c'"):
        hyperparameters("a2c", cartpole.spec, 1_000)


def test_evaluation_protocol_seeds_every_episode(cartpole):
    envs = [make_env(cartpole, "eval") for _ in range(3)]
    always_left = evaluate_protocol(lambda obs: np.zeros(len(obs), dtype=np.int64), envs, base=curve_eval_base(0, 1))
    # the same episodes by hand: episode k reset with seed base + k
    expected = []
    for k in range(3):
        env = cartpole.factory("eval")
        env.reset(seed=10_000 + k)
        steps, done = 0, False
        while not done:
            _, _, term, trunc, _ = env.step(0)
            steps, done = steps + 1, term or trunc
        expected.append(steps)
    assert always_left["episodes"] == 3
    assert always_left["mean"] == pytest.approx(np.mean(expected)) and always_left["min"] == min(expected)
    assert final_eval_base(2) == 20_000 and curve_eval_base(2, 3) == 2_003 * 10_000


def test_short_ppo_run_follows_the_protocol_and_is_reproducible(cartpole, tmp_path):
    kwargs = dict(seed=3, steps=512, eval_interval=256, eval_episodes=2, final_episodes=3)
    a = run_baseline("ppo", cartpole, runs_dir=tmp_path, verbose=False, **kwargs)
    b = run_baseline("ppo", cartpole, verbose=False, **kwargs)
    validate_record(a)
    assert (tmp_path / "sb3-ppo_gym_CartPole-v1_s3.json").is_file()
    curve = a["curves"]["gym/CartPole-v1"]
    assert [p["env_steps"] for p in curve] == [256, 512]  # 8 envs: crossing 256 and the budget, no final extra
    assert a["env_steps"] == {"gym/CartPole-v1": 512} and a["method"] == "sb3-ppo"
    assert a["config"]["adjusted"] == {"n_steps": [32, 16], "batch_size": [256, 128]}
    assert all(p["episodes"] == 2 and 8 <= p["mean"] <= 500 for p in curve)
    assert a["final_eval"]["gym/CartPole-v1"]["episodes"] == 3
    assert [p["mean"] for p in curve] == [p["mean"] for p in b["curves"]["gym/CartPole-v1"]]


def test_settings_validate_and_scale_dps():
    s = settings_for("classic", "default")
    assert s.steps == 6_000 and s.preset == "tiny" and s.updates == 1_250
    assert s.dps_config() == {"min_stage0_updates": 500, "max_stage_updates": 187}
    assert settings_for("classic", "quick", steps=2_000).steps == 2_000
    with pytest.raises(ValueError, match="unknown method"):
        settings_for("classic", "quick", methods=("a2c",))
    with pytest.raises(ValueError, match="unknown benchmark"):
        settings_for("mujoco")
    with pytest.raises(ValueError, match="learning_starts"):
        Settings(benchmark="classic", scale="quick", tasks=(("gym/CartPole-v1", {}),), steps=100, eval_interval=0,
                 eval_episodes=1, seeds=(0,), methods=("unizero",), preset="tiny", learning_starts=100)


def test_jobs_match_methods_to_action_spaces():
    jobs = make_jobs(settings_for("classic", "quick"))
    names = {j.name for j in jobs}
    assert {"scalezero_mt_s0", "scalezero-dps_mt_s0", "unizero_dmc_cartpole-swingup_s0"} <= names
    assert "sb3-dqn_gym_Acrobot-v1_s0" in names and "sb3-dqn_dmc_cartpole-balance_s0" not in names
    assert "sb3-sac_dmc_cartpole-balance_s0" in names and "sb3-sac_gym_CartPole-v1_s0" not in names
    assert len(jobs) == 2 + 4 + 2 + 4 + 2
    assert [j.method for j in jobs[:2]] == ["scalezero-dps", "scalezero"]  # longest first
    multi = next(j for j in jobs if j.name == "scalezero_mt_s0")
    assert dict(multi.tasks)["dmc/cartpole-balance"] == {"action_repeat": 4}  # the suite's options travel along


def test_ppo_on_dmc_pixels_normalises_rewards_only(tmp_path):
    task = make_task("dmc/cartpole-balance", pixels=True, action_repeat=8)  # 125-step episodes, 3x64x64 frames
    record = run_baseline("ppo", task, seed=0, steps=64, eval_interval=0, eval_episodes=1, verbose=False,
                          save_model=tmp_path / "ppo.zip")
    assert record["config"]["policy"] == "CnnPolicy" and record["config"]["settings"]["normalize"] is True
    point = record["curves"]["dmc/cartpole-balance"][-1]
    assert point["env_steps"] == 64 and point["length"] == 125 and 0.0 <= point["mean"] <= 125 * 8
    assert (tmp_path / "ppo.zip").is_file() and (tmp_path / "ppo.vecnorm.pkl").is_file()
