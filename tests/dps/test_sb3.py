"""DPS in Stable-Baselines3: real SB3 2.9, real CartPole / Acrobot, the real C core and real torch."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch
from scalezero_adapters import Task, make_task, multitask_env_fns
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from scalezero_agents.dps import DPSConfig
from scalezero_agents.dps.sb3 import SB3DPSCallback
from scalezero_agents.integrations.sb3 import ScaleZero
from tests.dps.helpers import CHEAP

# attention only (peft's per-layer overhead makes adapted experts slow on a loaded CPU); switches at 6, 12, 18
DPS = DPSConfig(num_stages=4, min_stage0_updates=4, max_stage_updates=6, rank=2, alpha=2.0,
                target_groups=("attention",))
# cosine: the learner's rate moves away from SB3's (constant) schedule, so an overwrite would show
OVERRIDES = {**CHEAP, "learner.lr_schedule": "cosine", "learner.lr_decay_updates": 40}
EASY_ID = "SZTestEasyCartPole-v0"
if EASY_ID not in gym.registry:  # CartPole that counts as solved (spec target_return) at a return of 1
    gym.register(EASY_ID, entry_point="gymnasium.envs.classic_control.cartpole:CartPoleEnv", max_episode_steps=20,
                 reward_threshold=1.0)


class _Record(BaseCallback):
    """After every learner update (its hook runs after the DPS callback's): stage, parameter count, tasks
    trained, learning rates; snapshots of the parameters when the stage changes."""

    def __init__(self) -> None:
        super().__init__()
        self.stages: list[int] = []
        self.totals: list[int] = []
        self.task_keys: list[set[str]] = []
        self.lrs: list[set[float]] = []
        """Learning rates of param groups other than the update's own rate."""
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}

    def _on_training_start(self) -> None:
        self.model.add_update_hook(self.on_update)

    def _on_training_end(self) -> None:
        self.model.remove_update_hook(self.on_update)

    def on_update(self, model: ScaleZero, metrics: dict[str, float]) -> None:
        stage = model.dps.stage
        if stage not in self.snapshots:
            self.snapshots[stage] = {n: p.detach().clone() for n, p in model.agent.model.named_parameters()}
        self.stages.append(stage)
        self.totals.append(model.dps.num_parameters().total)
        self.task_keys.append({k.rsplit("/", 1)[0] for k in metrics if k.endswith("/loss")})
        self.lrs.append({g["lr"] for g in model.agent.learner.optimizer.param_groups} - {metrics["lr"]})

    def _on_step(self) -> bool:
        return True


def _cartpole_model(env_id: str = "CartPole-v1", learning_starts: int = 16) -> ScaleZero:
    env = make_vec_env(env_id, n_envs=2, seed=0)
    return ScaleZero("MlpPolicy", env, preset="tiny", config_overrides=OVERRIDES, learning_starts=learning_starts,
                     replay_ratio=0.5, seed=0)


@pytest.fixture(scope="module")
def mid_stage() -> tuple[ScaleZero, SB3DPSCallback, _Record]:
    """CartPole after 44 env steps (2 envs): 14 updates, stage 2 since update 12 (mid-stage)."""
    model = _cartpole_model()
    dps, record = SB3DPSCallback(DPS, eval_freq=0), _Record()
    model.learn(44, callback=[dps, record])
    return model, dps, record


def _per_stage(model: ScaleZero, r: int) -> int:
    """Parameters one attention-only stage adds: q, k, v, o (D -> D) per layer, r * (D + D) + 1 scale each."""
    cfg = model.agent.model.config
    return cfg.num_layers * 4 * (r * 2 * cfg.embed_dim + 1)


def test_stages_switch_at_the_scheduled_updates_and_grow_the_model(mid_stage):
    model, dps, record = mid_stage
    assert model.agent.learner.updates == 14 and dps.controller is model.dps
    # stage s from the update that crosses the schedule on: min_stage0 4 (switch at the first check after it,
    # max_stage 6 counted from 0), then every 6 updates
    assert record.stages == [0] * 5 + [1] * 6 + [2] * 3
    assert dps.controller.last_switch_updates == 12 and dps.controller.stage == 2
    per_stage = _per_stage(model, DPS.rank)
    assert record.totals[5] - record.totals[4] == record.totals[11] - record.totals[10] == per_stage
    assert dps.controller.num_parameters().adapters == 2 * per_stage
    # the optimiser holds every adapter parameter (2 groups per stage: A / B with decay, scales without)
    learner = model.agent.learner
    assert len(learner.optimizer.param_groups) == 2 + 2 * 2
    in_opt = {id(p) for g in learner.optimizer.param_groups for p in g["params"]}
    assert all(id(p) in in_opt for s in (1, 2) for p in dps.controller.adapter_parameters(s))
    # every group, new ones included, runs at the learner's cosine rate (a new group joins at the next update's
    # rate), and SB3's schedule (the constant base rate) never overwrites it
    assert [k for k, lrs in enumerate(record.lrs) if lrs] == [5, 11]
    (joined,) = record.lrs[5]
    assert joined == pytest.approx(learner.config.learning_rate * 0.5 * (1 + np.cos(np.pi * 6 / 40)))
    rates = [g["lr"] for g in learner.optimizer.param_groups]
    assert len(set(rates)) == 1 and rates[0] < learner.config.learning_rate == model.lr_schedule(1.0)
    model._update_learning_rate(model.policy.optimizer)
    assert [g["lr"] for g in learner.optimizer.param_groups] == rates


def test_save_load_mid_stage_restores_everything_and_the_schedule_continues(mid_stage, tmp_path):
    model, dps, _ = mid_stage
    obs = model.env.reset()
    before, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "dps.zip")
    loaded = ScaleZero.load(tmp_path / "dps.zip", env=make_vec_env("CartPole-v1", n_envs=2, seed=1))
    assert loaded.dps is not None and loaded.dps is not dps.controller
    assert loaded.dps.state_dict() == dps.controller.state_dict() and loaded.dps.config == DPS
    assert loaded.dps.scales() == dps.controller.scales()
    after, _ = loaded.predict(obs, deterministic=True)
    assert np.array_equal(before, after)
    pa, pb = dict(model.agent.model.named_parameters()), dict(loaded.agent.model.named_parameters())
    assert pa.keys() == pb.keys() and any(".lora_A.stage2." in n for n in pa)
    for n in pa:
        assert torch.equal(pa[n], pb[n]) and pa[n].requires_grad == pb[n].requires_grad, n
    for p, q in zip(model.agent.learner.target.parameters(), loaded.agent.learner.target.parameters(), strict=True):
        assert torch.equal(p, q)
    oa, ob = model.agent.learner.optimizer.state_dict(), loaded.agent.learner.optimizer.state_dict()
    assert oa["param_groups"] == ob["param_groups"] and oa["state"].keys() == ob["state"].keys()
    for k in oa["state"]:
        assert torch.equal(oa["state"][k]["exp_avg"], ob["state"][k]["exp_avg"]), k
    assert loaded.agent.learner.updates == 14

    # continue: the restored controller switches to stage 3 at update 18; the new adapter trains, the rest
    # of the transformer (base weights and the earlier adapters' A / B) stays frozen
    record = _Record()
    loaded.learn(24, callback=[SB3DPSCallback(eval_freq=0), record], reset_num_timesteps=False)
    assert loaded.agent.learner.updates == 26 and record.stages == [2] * 3 + [3] * 9
    at_switch, end = record.snapshots[3], dict(loaded.agent.model.named_parameters())
    new = loaded.dps.adapter_parameters(3)
    names = {id(p): n for n, p in loaded.agent.model.named_parameters()}
    in_opt = {id(p) for g in loaded.agent.learner.optimizer.param_groups for p in g["params"]}
    a3, b3 = new[0], new[1]
    for p in (a3, b3):
        assert id(p) in in_opt and p.grad is not None and p.grad.abs().sum() > 0, names[id(p)]
        assert not torch.equal(at_switch[names[id(p)]], p), names[id(p)]
    frozen = [n for n in end if n.startswith("transformer.") and not end[n].requires_grad]
    assert any(".base_layer." in n for n in frozen) and any(".lora_A.stage1." in n for n in frozen)
    for n in frozen:
        assert n in at_switch and torch.equal(at_switch[n], end[n]), n
        assert end[n].grad is None, n


def test_solved_task_stops_training_and_storing(tmp_path):
    cartpole = make_task("gym/CartPole-v1", max_episode_steps=12)
    easy = Task(cartpole.factory, dataclasses.replace(cartpole.spec, target_return=1.0))  # solved at once
    acrobot = make_task("gym/Acrobot-v1", max_episode_steps=12)
    acrobot = Task(acrobot.factory, dataclasses.replace(acrobot.spec, target_return=None))  # never solved
    env = DummyVecEnv(multitask_env_fns([easy, acrobot], envs_per_task=1))
    model = ScaleZero("MultiInputPolicy", env, preset="tiny", config_overrides=CHEAP, learning_starts=16,
                      replay_ratio=0.5, seed=0)
    cfg = dataclasses.replace(DPS, num_stages=3, min_stage0_updates=0, max_stage_updates=10_000)
    dps, record = SB3DPSCallback(cfg, eval_freq=40, n_eval_episodes=1), _Record()

    class Sizes(BaseCallback):
        def _init_callback(self) -> None:
            self.sizes: list[list[int]] = []

        def _on_step(self) -> bool:
            self.sizes.append(self.model.replay_buffer.task_sizes())
            return True

    sizes = Sizes()
    model.learn(80, callback=[dps, record, sizes])
    first = dps.evaluations[0]
    assert first["num_timesteps"] == 40 and first["solved"] == ["gym/CartPole-v1"]
    assert "gym/Acrobot-v1" in first["returns"] and dps.evaluations[1]["returns"].keys() == {"gym/Acrobot-v1"}
    assert dps.controller.solved == {0} and model.task_active.tolist() == [False, True]
    # the solve came during vector step 20, before its step was stored: CartPole stored 19 steps, Acrobot 40
    assert model.task_env_steps.tolist() == [19, 40]
    assert all(s[0] == sizes.sizes[19][0] for s in sizes.sizes[19:])  # nothing stored for CartPole since
    assert sizes.sizes[-1][1] > sizes.sizes[19][1]
    # updates before the solve trained both tasks, later ones Acrobot only
    n_before = first["updates"]
    assert 0 < n_before < len(record.task_keys)
    assert record.task_keys[:n_before] == [{"gym/CartPole-v1", "gym/Acrobot-v1"}] * n_before
    assert all(k == {"gym/Acrobot-v1"} for k in record.task_keys[n_before:])
    # the solve ended stage 0 at the first update after it (1 new solve >= ceil(1 unsolved / 2 stages))
    assert record.stages[n_before - 1] == 0 and record.stages[n_before] == 1

    model.save(tmp_path / "solved.zip")
    loaded = ScaleZero.load(tmp_path / "solved.zip")
    assert loaded.task_active.tolist() == [False, True] and loaded.task_env_steps.tolist() == [19, 40]
    assert loaded.dps.solved == {0} and loaded.dps.stage == 1


def test_learn_stops_once_every_task_is_solved():
    model = _cartpole_model(EASY_ID, learning_starts=1_000)
    eval_env = DummyVecEnv([lambda: Monitor(gym.make(EASY_ID))])
    dps = SB3DPSCallback(DPS, eval_env=eval_env, eval_freq=8, n_eval_episodes=1)
    model.learn(200, callback=dps)
    assert model.num_timesteps == 8 and dps.controller.solved == {0}  # stopped by the first evaluation
    assert not model.task_active.any()


def test_clear_errors():
    model = _cartpole_model()
    controller = model.enable_dps(DPS)
    assert model.enable_dps() is controller and model.enable_dps(DPS) is controller
    with pytest.raises(ValueError, match="already runs DPS"):
        model.enable_dps(dataclasses.replace(DPS, rank=3))
    with pytest.raises(ValueError, match="DPSConfig"):
        SB3DPSCallback({"rank": 2})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eval_freq"):
        SB3DPSCallback(eval_freq=-1)
    with pytest.raises(ValueError, match="task_id"):
        model.stop_task(1)
    cb = SB3DPSCallback(eval_env={"gym/Nope": model.env})
    cb.init_callback(model)
    with pytest.raises(ValueError, match="unknown task 'gym/Nope'"):
        cb.evaluate()
    cb = SB3DPSCallback(eval_env=[model.env, model.env])
    cb.init_callback(model)
    with pytest.raises(ValueError, match="2 envs for 1 tasks"):
        cb.evaluate()
