"""The ``paper`` preset (D 768, 4 layers, 24 heads, MoE 8 experts) builds, searches and updates on CPU."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from scalezero_adapters import make_task

from scalezero_agents.agent import Agent
from scalezero_agents.config import preset


@pytest.mark.slow
def test_paper_preset_one_search_and_one_update():
    spec = make_task("gym/CartPole-v1").spec
    cfg = preset("paper", "scalezero", device="cpu", **{"learner.batch_size": 2, "replay.capacity": 200})
    agent = Agent([spec], cfg, num_envs=1, seed=0)
    n_params = sum(p.numel() for p in agent.model.parameters())
    assert n_params > 200e6  # the paper-sized MoE transformer
    actor = agent.actor([0], explore=True)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    out = actor.act([rng.normal(size=4).astype(np.float32)], temperature=1.0)  # one 50-simulation search
    t_search = time.perf_counter() - t0
    assert out.policy[0].sum() == pytest.approx(1.0)
    for _ in range(30):  # enough steps for one ready window (H + n), reusing the search statistics
        agent.observe(0, 0, out._replace(stored_obs=[rng.normal(size=4).astype(np.float32)]), 0, 1.0)
    before = [p.detach().clone() for p in list(agent.model.parameters())[:4]]
    t0 = time.perf_counter()
    metrics = agent.update()
    t_update = time.perf_counter() - t0
    assert np.isfinite(metrics["loss"])
    assert any(not torch.equal(b, p) for b, p in zip(before, list(agent.model.parameters())[:4], strict=True))
    print(f"paper preset: {n_params / 1e6:.1f} M parameters, one search {t_search:.1f} s, one update {t_update:.1f} s")
