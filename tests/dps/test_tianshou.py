"""DPS in Tianshou 2.0.1: the stock Collector / buffer / OffPolicyTrainer, real envs, real torch, the real C core."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
import torch
from scalezero_adapters import Task, make_task, multitask_env_fns
from tianshou.data import Batch, Collector, VectorReplayBuffer
from tianshou.env import DummyVectorEnv
from tianshou.trainer import OffPolicyTrainerParams

from scalezero_agents.config import preset
from scalezero_agents.dps import DPSConfig
from scalezero_agents.dps.tianshou import TianshouDPSHook
from scalezero_agents.integrations.tianshou import ScaleZeroAlgorithm, ScaleZeroPolicy, prefill
from tests.dps.helpers import CHEAP

# attention only (peft's per-layer overhead makes adapted experts slow on a loaded CPU); switches at 6, 12, 18
DPS = DPSConfig(num_stages=4, min_stage0_updates=4, max_stage_updates=6, rank=2, alpha=2.0,
                target_groups=("attention",))
CARTPOLE = make_task("gym/CartPole-v1", max_episode_steps=30)


def _algorithm(tasks, venv, **overrides) -> ScaleZeroAlgorithm:
    config = preset("tiny", **{**CHEAP, "learner.batch_size": 8, **overrides})
    policy = ScaleZeroPolicy(tasks=tasks, config=config, seed=0, action_space=venv.action_space[0],
                             observation_space=venv.observation_space[0])
    return ScaleZeroAlgorithm(policy=policy)


def _train(algorithm: ScaleZeroAlgorithm, train: Collector, env_steps: int, training_fn, batch_size: int = 8) -> None:
    """``env_steps`` trainer env steps in training steps of 4 env steps and 2 updates (after the prefill)."""
    algorithm.create_trainer(OffPolicyTrainerParams(
        training_collector=train, max_epochs=1, epoch_num_steps=env_steps, collection_step_num_env_steps=4,
        update_step_num_gradient_steps_per_sample=0.5, batch_size=batch_size, training_fn=training_fn,
        verbose=False, show_progress=False)).run(reset_collectors=False)


class _Record:
    """Per-update hook (registered after the DPS hook): stage, parameter count, tasks trained, parameter
    snapshots when the stage changes."""

    def __init__(self, algorithm: ScaleZeroAlgorithm) -> None:
        self.stages: list[int] = []
        self.totals: list[int] = []
        self.task_keys: list[set[str]] = []
        self.snapshots: dict[int, dict[str, torch.Tensor]] = {}
        algorithm.add_update_hook(self)

    def __call__(self, algorithm: ScaleZeroAlgorithm, metrics: dict[str, float]) -> None:
        dps = algorithm.dps
        if dps.stage not in self.snapshots:
            self.snapshots[dps.stage] = {n: p.detach().clone() for n, p in algorithm.policy.model.named_parameters()}
        self.stages.append(dps.stage)
        self.totals.append(dps.num_parameters().total)
        self.task_keys.append({k.rsplit("/", 1)[0] for k in metrics if k.endswith("/loss")})


def _cartpole_envs(n: int = 2) -> DummyVectorEnv:
    return DummyVectorEnv([lambda: CARTPOLE.factory("train") for _ in range(n)])


@pytest.fixture(scope="module")
def mid_stage() -> tuple[ScaleZeroAlgorithm, TianshouDPSHook, _Record, Collector]:
    """CartPole: a 20-step prefill, then 28 env steps and 14 updates: stage 2 since update 12 (mid-stage)."""
    envs = _cartpole_envs()
    algorithm = _algorithm([CARTPOLE], envs, **{"learner.lr_schedule": "cosine", "learner.lr_decay_updates": 40})
    hook = TianshouDPSHook(algorithm, DPS, tasks=[CARTPOLE], eval_freq=0)
    record = _Record(algorithm)
    train = Collector(algorithm, envs, VectorReplayBuffer(2_000, 2))
    prefill(train, 20)
    _train(algorithm, train, 28, hook)
    return algorithm, hook, record, train


def test_stages_switch_at_the_scheduled_updates_and_grow_the_model(mid_stage):
    algorithm, hook, record, _ = mid_stage
    assert algorithm.learner.updates == 14 and hook.controller is algorithm.dps
    assert record.stages == [0] * 5 + [1] * 6 + [2] * 3
    cfg = algorithm.policy.agent.model.config
    per_stage = cfg.num_layers * 4 * (DPS.rank * 2 * cfg.embed_dim + 1)  # q, k, v, o: r * (D + D) + 1 scale
    assert record.totals[5] - record.totals[4] == record.totals[11] - record.totals[10] == per_stage
    learner = algorithm.learner
    assert len(learner.optimizer.param_groups) == 2 + 2 * 2
    in_opt = {id(p) for g in learner.optimizer.param_groups for p in g["params"]}
    assert all(id(p) in in_opt for s in (1, 2) for p in hook.controller.adapter_parameters(s))
    rates = {g["lr"] for g in learner.optimizer.param_groups}  # no Tianshou scheduler: the learner's cosine rate
    assert len(rates) == 1 and rates.pop() < learner.config.learning_rate and not algorithm.lr_schedulers


def test_state_dict_mid_stage_rebuilds_a_fresh_algorithm_and_the_schedule_continues(mid_stage, tmp_path):
    algorithm, hook, _, _ = mid_stage
    torch.save(algorithm.state_dict(), tmp_path / "dps.pt")
    state = torch.load(tmp_path / "dps.pt")  # plain data: loads with weights_only=True
    assert state["_dps"]["state"]["stage"] == 2
    envs = _cartpole_envs()
    fresh = _algorithm([CARTPOLE], envs, **{"learner.lr_schedule": "cosine", "learner.lr_decay_updates": 40})
    fresh.load_state_dict(state)
    assert fresh.dps is not None and fresh.dps.state_dict() == hook.controller.state_dict()
    assert fresh.dps.config == DPS and fresh.learner.updates == 14
    a, b = algorithm.state_dict(), fresh.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
    assert a["_optimizers"][0]["param_groups"] == b["_optimizers"][0]["param_groups"]
    for p, q in zip(algorithm.policy.model.parameters(), fresh.policy.model.parameters(), strict=True):
        assert p.requires_grad == q.requires_grad
    obs, _ = envs.reset()
    out_a = algorithm.policy(Batch(obs=obs, info=Batch()))  # outside a training step: greedy search
    out_b = fresh.policy(Batch(obs=obs, info=Batch()))
    assert np.array_equal(out_a.act, out_b.act)
    assert np.array_equal(out_a.policy.search_policy, out_b.policy.search_policy)

    # continue: the restored controller switches to stage 3 at update 18; the new adapter trains, the rest of
    # the transformer (base weights and the earlier adapters' A / B) stays frozen
    hook_b = TianshouDPSHook(fresh, tasks=[CARTPOLE], eval_freq=0)
    assert hook_b.controller is fresh.dps
    record = _Record(fresh)
    train = Collector(fresh, envs, VectorReplayBuffer(2_000, 2))
    prefill(train, 20)
    _train(fresh, train, 24, hook_b)
    assert fresh.learner.updates == 26 and record.stages == [2] * 3 + [3] * 9
    at_switch, end = record.snapshots[3], dict(fresh.policy.model.named_parameters())
    names = {id(p): n for n, p in end.items()}
    in_opt = {id(p) for g in fresh.learner.optimizer.param_groups for p in g["params"]}
    for p in fresh.dps.adapter_parameters(3)[:2]:  # A_3, B_3 of the first adapted layer
        assert id(p) in in_opt and p.grad is not None and p.grad.abs().sum() > 0, names[id(p)]
        assert not torch.equal(at_switch[names[id(p)]], p), names[id(p)]
    frozen = [n for n in end if n.startswith("transformer.") and not end[n].requires_grad]
    assert any(".base_layer." in n for n in frozen) and any(".lora_B.stage2." in n for n in frozen)
    for n in frozen:
        assert torch.equal(at_switch[n], end[n]) and end[n].grad is None, n
    hook_b.close()
    assert hook_b._on_update not in fresh._update_hooks


def test_solved_task_stops_training():
    cartpole = make_task("gym/CartPole-v1", max_episode_steps=12)
    easy = Task(cartpole.factory, dataclasses.replace(cartpole.spec, target_return=1.0))  # solved at once
    acrobot = make_task("gym/Acrobot-v1", max_episode_steps=12)
    acrobot = Task(acrobot.factory, dataclasses.replace(acrobot.spec, target_return=None))  # never solved
    tasks = [easy, acrobot]
    envs = DummyVectorEnv(multitask_env_fns(tasks, envs_per_task=1))
    algorithm = _algorithm(tasks, envs)
    cfg = dataclasses.replace(DPS, num_stages=3, min_stage0_updates=0, max_stage_updates=10_000)
    hook = TianshouDPSHook(algorithm, cfg, tasks=tasks, eval_freq=16, n_eval_episodes=1)
    record = _Record(algorithm)
    train = Collector(algorithm, envs, VectorReplayBuffer(2_000, 2))
    prefill(train, 16)
    codec = algorithm.policy.codec
    prefilled = int((codec.task_ids(train.buffer.obs, train.buffer.sample_indices(0)) == 0).sum())
    _train(algorithm, train, 40, hook, batch_size=16)
    first = hook.evaluations[0]
    assert first["env_step"] == 16 and first["solved"] == ["gym/CartPole-v1"]
    assert hook.evaluations[1]["returns"].keys() == {"gym/Acrobot-v1"}  # a solved task is not evaluated again
    assert hook.controller.solved == {0} and algorithm.task_active.tolist() == [False, True]
    n_before = first["updates"]
    both = {"gym/CartPole-v1", "gym/Acrobot-v1"}
    assert n_before > 0 and any(k == both for k in record.task_keys[:n_before])
    assert len(record.task_keys) > n_before and all(k == {"gym/Acrobot-v1"} for k in record.task_keys[n_before:])
    assert record.stages[n_before - 1] == 0 and record.stages[n_before] == 1  # the solve ended stage 0
    # the stopped task's env is still stepped and stored (Tianshou steps every env), but never trained on
    assert (codec.task_ids(train.buffer.obs, train.buffer.sample_indices(0)) == 0).sum() == prefilled + 20

    fresh = _algorithm(tasks, envs)
    fresh.load_state_dict(algorithm.state_dict())
    assert fresh.task_active.tolist() == [False, True] and fresh.dps.solved == {0} and fresh.dps.stage == 1


def test_clear_errors():
    envs = _cartpole_envs()
    algorithm = _algorithm([CARTPOLE], envs)
    with pytest.raises(ValueError, match="exactly one of tasks"):
        TianshouDPSHook(algorithm, DPS)
    with pytest.raises(ValueError, match="2 envs for 1 tasks"):
        TianshouDPSHook(algorithm, DPS, eval_envs=[envs, envs])
    with pytest.raises(ValueError, match="unknown task"):
        TianshouDPSHook(algorithm, DPS, eval_envs={"gym/Nope": envs})
    with pytest.raises(ValueError, match="eval_freq"):
        TianshouDPSHook(algorithm, DPS, tasks=[CARTPOLE], eval_freq=-5)
    hook = TianshouDPSHook(algorithm, DPS, eval_envs={"gym/CartPole-v1": envs})
    with pytest.raises(ValueError, match="already runs DPS"):
        algorithm.enable_dps(dataclasses.replace(DPS, rank=4))
    with pytest.raises(ValueError, match="task_id"):
        algorithm.stop_task(3)
    hook.controller.advance()
    state = algorithm.state_dict()
    other = _algorithm([CARTPOLE], envs)
    other.enable_dps(dataclasses.replace(DPS, rank=4))
    with pytest.raises(ValueError, match="already runs DPS"):
        other.load_state_dict(state)
    state.pop("_dps")
    with pytest.raises(ValueError, match="no DPS state"):
        algorithm.load_state_dict(state)


def test_pickles_with_its_controller_and_without_update_hooks():
    """Tianshou's high-level persistence pickles the whole algorithm: the controller goes along, hooks do not."""
    envs = _cartpole_envs()
    algorithm = _algorithm([CARTPOLE], envs)
    hook = TianshouDPSHook(algorithm, DPS, tasks=[CARTPOLE], eval_freq=0)
    hook.controller.advance()
    copy = pickle.loads(pickle.dumps(algorithm))
    assert algorithm._update_hooks == [hook._on_update] and copy._update_hooks == []
    assert copy.dps.stage == 1 and copy.dps.agent is copy.policy.agent
    assert copy.state_dict()["_dps"] == algorithm.state_dict()["_dps"]
