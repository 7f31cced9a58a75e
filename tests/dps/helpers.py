"""Small agents for the DPS tests (real torch, real CartPole, the real C search core)."""

from __future__ import annotations

from typing import Any

import torch
from scalezero_adapters import TaskSpec, make_task

from scalezero_agents.agent import Agent
from scalezero_agents.config import AgentConfig, preset

CHEAP = {"search.num_simulations": 2, "eval_simulations": 2, "learner.batch_size": 4, "replay.capacity": 1_000}


def tiny_config(variant: str = "scalezero", **overrides: Any) -> AgentConfig:
    """The ``tiny`` preset with 2 simulations, batch 4 and small replay."""
    return preset("tiny", variant, **{**CHEAP, **overrides})


def vector_spec(i: int, target: float | None = 10.0) -> TaskSpec:
    return TaskSpec(name=f"gym/task{i}", family="gym", modality="vector", obs_shape=(3,), obs_dtype="float32",
                    action_kind="discrete", num_actions=2, discount=0.99, max_episode_steps=10,
                    eval_protocol="test", target_return=target)


def filled_agent(variant: str = "scalezero", *, steps: int = 30, seed: int = 0, **overrides: Any) -> Agent:
    """A CartPole agent whose replay holds ``steps`` real transitions (ready for ``update``)."""
    torch.manual_seed(seed)
    task = make_task("gym/CartPole-v1")
    agent = Agent([task.spec], tiny_config(variant, **overrides), seed=seed)
    env = task.factory("train")
    actor = agent.actor([0], explore=True, seed=seed)
    obs, _ = env.reset(seed=seed)
    for _ in range(steps):
        out = actor.act([obs], temperature=1.0)
        obs, reward, terminated, truncated, _ = env.step(out.actions[0])
        agent.observe(0, 0, out, 0, float(reward))
        if terminated or truncated:
            agent.end_episode(0, 0, obs, terminated=bool(terminated))
            actor.reset()
            obs, _ = env.reset()
    assert agent.ready()
    return agent
