"""Memory stays flat over 10^5 searches: the trees are allocated once and reused."""

from __future__ import annotations

import gc

import numpy as np
import psutil

from scalezero_agents.search import SearchConfig, SearchTree


def test_no_memory_growth_over_1e5_searches() -> None:
    process = psutil.Process()
    config = SearchConfig(num_simulations=2)
    trees = [SearchTree(2, config, num_actions=3),
             SearchTree(2, SearchConfig(mode="gumbel", num_simulations=2), num_actions=3),
             SearchTree(2, SearchConfig(mode="sampled", num_simulations=2, num_samples=3), action_dim=1)]
    zeros, logits = np.zeros(2), np.zeros((2, 3))
    mu, log_std = np.zeros((2, 1)), np.zeros((2, 1))

    def one_search(i: int) -> None:
        tree = trees[i % 3]
        if i % 3 == 2:
            tree.reset_sampled(zeros, mu=mu, log_std=log_std, noise=True)
            for _ in range(2):
                tree.select()
                tree.expand_and_backup_sampled(zeros, zeros, mu=mu, log_std=log_std)
        else:
            tree.reset(zeros, logits, noise=True)
            for _ in range(2):
                tree.select()
                tree.expand_and_backup(zeros, zeros, logits)
        tree.result(1.0)

    for i in range(5_000):  # warm-up: allocator pools, caches
        one_search(i)
    gc.collect()
    before = process.memory_info().rss
    for i in range(100_000):
        one_search(i)
    gc.collect()
    growth = process.memory_info().rss - before
    assert growth < 2 * 1024 * 1024, f"RSS grew by {growth / 1e6:.1f} MB over 10^5 searches"
