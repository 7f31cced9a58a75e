"""Summed gradients: both ranks hold identical gradients and weights, equal to one process on the union of the
batches (2 gloo processes; the real model, envs and C search fill the replays)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from gymnasium.wrappers import TimeLimit
from scalezero_adapters import Task, make_task

from scalezero_agents.agent import Agent
from tests.distributed.helpers import run_ranks, tiny_config


def _fill(agent: Agent, task_id: int, task: Task, steps: int, seed: int) -> None:
    env = task.factory("train")
    actor = agent.actor([task_id], explore=True, seed=seed)
    obs, _ = env.reset(seed=seed)
    for _ in range(steps):
        out = actor.act([obs], temperature=1.0)
        obs, reward, terminated, truncated, _ = env.step(out.actions[0])
        agent.observe(task_id, 0, out, 0, float(reward))
        if terminated or truncated:
            agent.end_episode(task_id, 0, obs, terminated=bool(terminated))
            actor.reset()
            obs, _ = env.reset()


def _short_pendulum(steps: int = 20) -> Task:
    task = make_task("gym/Pendulum-v1")
    return Task(lambda mode: TimeLimit(task.factory(mode), steps),
                dataclasses.replace(task.spec, max_episode_steps=steps))


@pytest.fixture(scope="module")
def grads(tmp_path_factory):
    """Reference (one process, both batches) and each rank's record: round 1 each rank has one task's batch;
    round 2 rank 0 has both and rank 1 none."""
    out = tmp_path_factory.mktemp("grads")
    torch.manual_seed(0)
    # a third task no batch comes from: its encoder stem and heads get no gradient anywhere
    tasks = [make_task("gym/CartPole-v1"), _short_pendulum(), make_task("gym/Acrobot-v1")]
    config = tiny_config(**{"search.num_samples": 4})
    agent = Agent([t.spec for t in tasks], config, seed=0)
    init = {k: v.clone() for k, v in agent.model.state_dict().items()}
    _fill(agent, 0, tasks[0], 40, seed=1)
    _fill(agent, 1, tasks[1], 40, seed=2)
    rng = np.random.default_rng(0)
    batches = [agent.replays[t].sample(4, rng) for t in (0, 1)]
    torch.save({"specs": agent.specs, "config": config, "init": init, "batches": batches}, out / "batches.pt")
    ranks = run_ranks(["grads", str(out)], timeout=120)
    for r in ranks:
        assert r.returncode == 0, r.output
    reference = Agent(agent.specs, config, seed=0)
    reference.model.load_state_dict(init)
    reference.learner.target.load_state_dict(init)
    ref = []
    for _ in range(2):
        metrics, _ = reference.learner.update(batches)
        ref.append({"grads": {n: None if p.grad is None else p.grad.clone()
                              for n, p in reference.model.named_parameters()}, "loss": metrics["loss"],
                    "aux_loss": metrics["aux_loss"]})
    return ref, [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.mark.parametrize("round_", [0, 1], ids=["one-task-per-rank", "rank1-without-batch"])
def test_ranks_hold_identical_gradients_equal_to_one_process(grads, round_):
    ref, (rank0, rank1) = grads
    a, b, want = rank0[round_], rank1[round_], ref[round_]
    assert a["grad_norm"] == b["grad_norm"]
    for name, g_ref in want["grads"].items():
        g0, g1 = a["grads"][name], b["grads"][name]
        assert (g0 is None) == (g1 is None) == (g_ref is None), name  # unused everywhere -> None everywhere
        if g_ref is not None:
            assert torch.equal(g0, g1), name  # the all-reduce gives every rank the very same sum
            # equal to one process up to float summation order (clipped gradients, as the optimiser sees them)
            torch.testing.assert_close(g0, g_ref, rtol=1e-4, atol=1e-6, msg=name)
        # after identical steps the replicas are bit-identical (the weights then differ from the one-process
        # run only by float rounding, which Adam amplifies where a gradient is pure rounding noise)
        assert torch.equal(a["params"][name], b["params"][name]), name
    unused = [n for n, g in want["grads"].items() if g is None]
    assert any(".2." in n for n in unused), unused  # task 2's stem and heads: no gradient on any rank


def test_rank_losses_sum_to_the_single_process_objective(grads):
    ref, (rank0, rank1) = grads
    # round 1 runs on the same weights everywhere: the two ranks' losses (task losses and their shares of the
    # MoE balance loss, whose expert loads are averaged over ranks) add up to one process's
    assert ref[0]["aux_loss"] > 1.0  # the tiny MoE preset's trained router: E * sum f P >= 1 per layer
    assert rank0[0]["aux_loss"] + rank1[0]["aux_loss"] == pytest.approx(ref[0]["aux_loss"], rel=1e-5)
    assert rank0[0]["loss"] + rank1[0]["loss"] == pytest.approx(ref[0]["loss"], rel=1e-5)
    assert rank1[1]["loss"] == 0.0 and rank0[1]["loss"] > 0  # round 2: rank 1 had nothing to add
