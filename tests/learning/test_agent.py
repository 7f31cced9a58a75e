"""Agent, planner and trainer on real envs, the real C core and real torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scalezero_adapters import TaskSpec, make_task

from scalezero_agents.agent import Agent
from scalezero_agents.config import preset
from scalezero_agents.training import Callback, MultiTaskTrainer, TrainerConfig


def _masked_spec() -> TaskSpec:
    return TaskSpec(name="gym/masked", family="gym", modality="vector", obs_shape=(3,), obs_dtype="float32",
                    action_kind="discrete", num_actions=5, has_action_mask=True, discount=0.99,
                    max_episode_steps=10, eval_protocol="test")


def _cont_spec() -> TaskSpec:
    return TaskSpec(name="gym/cont", family="gym", modality="vector", obs_shape=(4,), obs_dtype="float32",
                    action_kind="continuous", action_dim=2, action_low=-1.0, action_high=1.0, discount=0.99,
                    max_episode_steps=10, eval_protocol="test")


def test_masked_actions_are_never_selected():
    agent = Agent([_masked_spec()], preset("tiny", **{"search.num_simulations": 8}), num_envs=4, seed=0)
    actor = agent.actor([0, 0, 0, 0], explore=True, seed=1)
    rng = np.random.default_rng(0)
    for _ in range(25):
        masks = rng.random((4, 5)) < 0.4
        masks[np.arange(4), rng.integers(0, 5, 4)] = True
        obs = [{"obs": rng.normal(size=3).astype(np.float32), "action_mask": m.astype(np.int8)} for m in masks]
        out = actor.act(obs, temperature=1.0)
        for row, action in enumerate(out.actions):
            assert masks[row, action], (row, action, masks[row])
            assert np.all(out.policy[row][~masks[row]] == 0.0)
            assert out.policy[row].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("continuous_search", ["sampled", "gumbel"])
def test_mixed_discrete_and_continuous_roots_share_one_search(continuous_search):
    specs = [_masked_spec(), _cont_spec()]
    cfg = preset("tiny", "scalezero", continuous_search=continuous_search, **{"search.num_simulations": 6})
    agent = Agent(specs, cfg, num_envs=2, seed=0)
    actor = agent.actor([0, 1, 1, 0], explore=True, seed=3)
    calls = []
    original = agent.model.recurrent_inference

    def counting(*args, **kwargs):
        calls.append(len(args[1]))
        return original(*args, **kwargs)

    agent.model.recurrent_inference = counting  # count model calls (the real model still runs)
    obs = [{"obs": np.zeros(3, np.float32), "action_mask": np.ones(5, np.int8)}, np.zeros(4, np.float32),
           np.ones(4, np.float32), {"obs": np.ones(3, np.float32), "action_mask": np.ones(5, np.int8)}]
    out = actor.act(obs)
    assert calls == [4] * 6  # one batched call per simulation for all four roots
    assert isinstance(out.actions[0], int) and isinstance(out.actions[3], int)
    for row in (1, 2):
        a = out.actions[row]
        assert a.shape == (2,) and np.all(np.abs(a) <= 1.0)
        assert out.sampled_actions[row].shape == (agent.config.search.num_samples, 2)
        # the chosen action is one of the root's sampled actions
        assert np.isclose(out.sampled_actions[row], a).all(axis=1).any()
        assert out.policy[row].shape == (agent.config.search.num_samples,)
        assert out.policy[row].sum() == pytest.approx(1.0, rel=1e-5)


def test_gumbel_over_samples_is_seeded_and_improves_on_the_prior():
    """Gumbel search over K policy samples: same seed, same samples and targets; targets sharper than the prior."""
    cfg = preset("tiny", continuous_search="gumbel", **{"search.num_simulations": 8, "search.num_samples": 6,
                                                         "search.max_considered": 4})
    agent = Agent([_cont_spec()], cfg, num_envs=1, seed=0)
    obs = [np.full(4, v, np.float32) for v in (-1.0, 0.0, 0.5)]
    outs = [agent.actor([0, 0, 0], explore=True, seed=7).act(obs) for _ in range(2)]
    for a, b in zip(outs[0].sampled_actions, outs[1].sampled_actions, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.stack(outs[0].policy), np.stack(outs[1].policy))
    policy = np.stack(outs[0].policy)
    assert np.all(policy.max(1) > 1.0 / 6)  # the completed-Q policy is sharper than the uniform prior


def test_bad_observations_raise_clear_errors():
    agent = Agent([_cont_spec()], preset("tiny"), seed=0)
    actor = agent.actor([0], explore=False)
    with pytest.raises(ValueError, match="shape"):
        actor.act([np.zeros(3, np.float32)])
    with pytest.raises(ValueError, match="NaN"):
        actor.act([np.full(4, np.nan, np.float32)])
    with pytest.raises(ValueError, match="observations for"):
        actor.act([np.zeros(4, np.float32)] * 2)
    with pytest.raises(ValueError, match="task ids"):
        agent.actor([3], explore=False)


class _Record(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_update(self, trainer, metrics):
        self.losses.append(metrics["loss"])


def _trainer(tmp_path, seed=0, callbacks=()):
    cfg = preset("tiny", **{"search.num_simulations": 4, "learner.batch_size": 8})
    tcfg = TrainerConfig(num_envs=2, replay_ratio=0.5, learning_starts=40, eval_interval=0, eval_episodes=1)
    return MultiTaskTrainer([make_task("gym/CartPole-v1")], config=cfg, trainer=tcfg, seed=seed,
                            log_dir=tmp_path, callbacks=callbacks, progress_bar=False)


def test_resume_continues_exactly(tmp_path):
    straight = _Record()
    a = _trainer(tmp_path / "a", callbacks=[straight])
    a.train(80)
    path = a.save(tmp_path / "ckpt.pt")
    a.train(140)
    resumed = _Record()
    b = MultiTaskTrainer.load(path, callbacks=[resumed], progress_bar=False, log_dir=tmp_path / "b")
    b.train(140)
    n_before = len(straight.losses) - len(resumed.losses)
    assert len(resumed.losses) > 5
    assert straight.losses[n_before:] == resumed.losses  # bit-identical continuation
    assert np.array_equal(a.env_steps, b.env_steps)
    for pa, pb in zip(a.agent.model.parameters(), b.agent.model.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_resume_continues_exactly_with_gumbel_over_samples(tmp_path):
    """The planner's action sampler is part of the checkpoint (continuous task, Gumbel search)."""
    cfg = preset("tiny", continuous_search="gumbel", **{"search.num_simulations": 4, "search.num_samples": 4,
                                                         "learner.batch_size": 8})
    tcfg = TrainerConfig(num_envs=2, replay_ratio=0.5, learning_starts=30, eval_interval=0, eval_episodes=1)
    straight = _Record()
    # action repeat 25: 40-step episodes, so the evaluation at the end of each train() call stays short
    a = MultiTaskTrainer([make_task("dmc/cartpole-balance", action_repeat=25)], config=cfg, trainer=tcfg, seed=0,
                         callbacks=[straight], progress_bar=False)
    a.train(40)
    path = a.save(tmp_path / "ckpt.pt")
    a.train(80)
    resumed = _Record()
    b = MultiTaskTrainer.load(path, callbacks=[resumed], progress_bar=False)
    b.train(80)
    assert len(resumed.losses) > 5
    assert straight.losses[-len(resumed.losses):] == resumed.losses
    np.testing.assert_array_equal(a.agent.replays[0].sampled, b.agent.replays[0].sampled)


def test_same_seed_same_run(tmp_path):
    runs = []
    for k in range(2):
        rec = _Record()
        _trainer(tmp_path / str(k), seed=5, callbacks=[rec]).train(80)
        runs.append(rec.losses)
    assert runs[0] == runs[1] and len(runs[0]) > 0


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        MultiTaskTrainer.load(tmp_path / "missing.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a MultiTaskTrainer checkpoint"):
        MultiTaskTrainer.load(tmp_path / "other.pt")


def test_load_rebuilds_tasks_with_their_options(tmp_path):
    cfg = preset("tiny", **{"search.num_simulations": 2, "learner.batch_size": 4})
    tcfg = TrainerConfig(num_envs=1, learning_starts=10_000, eval_interval=0, eval_episodes=1)
    task = make_task("dmc/cartpole-balance", action_repeat=4)
    path = MultiTaskTrainer([task], config=cfg, trainer=tcfg, progress_bar=False).save(tmp_path / "c.pt")
    loaded = MultiTaskTrainer.load(path, progress_bar=False)  # no tasks passed: the saved options come back
    assert loaded.specs[0].action_repeat == 4 and loaded.specs[0] == task.spec
    with pytest.raises(ValueError, match="differs"):
        MultiTaskTrainer.load(path, [make_task("dmc/cartpole-balance")], progress_bar=False)
    with pytest.raises(ValueError, match="trained on"):
        MultiTaskTrainer.load(path, [task, make_task("gym/CartPole-v1")], progress_bar=False)


def test_reanalysis_refreshes_old_policy_targets(tmp_path):
    trainer = _trainer(tmp_path)
    trainer.train(80)
    replay = trainer.agent.replays[0]
    before_counts = replay.reanalysed.copy()
    before_policy = replay.policy.copy()
    assert trainer.agent.reanalyze(0, 10) == 10
    changed = replay.reanalysed != before_counts
    assert changed.sum() == 10
    np.testing.assert_allclose(replay.policy[changed].sum(-1), 1.0, rtol=1e-5)
    assert not np.array_equal(replay.policy[changed], before_policy[changed])
    envs, steps = np.nonzero(changed)
    newest = replay.head[envs]
    assert np.all(steps < 0.75 * newest + 1)  # only the oldest 75% of each ring


def test_tiny_smoke_run_learns_cartpole():
    """The tiny preset improves on CartPole well beyond random (~22) within a minute of CPU."""
    torch.set_num_threads(1)
    cfg = preset("tiny")
    tcfg = TrainerConfig(num_envs=8, replay_ratio=0.25, learning_starts=500, eval_interval=0, eval_episodes=5)
    trainer = MultiTaskTrainer([make_task("gym/CartPole-v1")], config=cfg, trainer=tcfg, seed=0, progress_bar=False)
    history = trainer.train(2_000)
    score = history[-1]["tasks"]["gym/CartPole-v1"]["mean"]
    assert score > 80.0, history


def test_discrete_and_continuous_tasks_train_together(tmp_path):
    """CartPole (discrete) and DMC cartpole-balance (continuous) through collect, update and evaluation."""
    cfg = preset("tiny", "scalezero", **{"search.num_simulations": 4, "learner.batch_size": 8})
    tcfg = TrainerConfig(num_envs=2, replay_ratio=0.5, learning_starts=30, eval_interval=0, eval_episodes=1)
    rec = _Record()
    tasks = [make_task("gym/CartPole-v1", max_episode_steps=40), make_task("dmc/cartpole-balance", action_repeat=25)]
    trainer = MultiTaskTrainer(tasks, config=cfg, trainer=tcfg, seed=0, callbacks=[rec], progress_bar=False,
                               log_dir=tmp_path)
    history = trainer.train(60)
    assert len(rec.losses) > 5 and all(np.isfinite(rec.losses))
    assert set(history[-1]["tasks"]) == {"gym/CartPole-v1", "dmc/cartpole-balance"}
    cont = trainer.agent.replays[1]
    assert cont.sampled is not None and np.abs(cont.sampled[:, : cont.head.min()]).max() <= 1.0
    np.testing.assert_allclose(cont.policy[0, :10].sum(-1), 1.0, rtol=1e-5)
    assert (tmp_path / "history.json").is_file()
