"""One episode in each of several envs, stepped together: the loop of every greedy evaluation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["play_episodes"]


def play_episodes(
    envs: Sequence[Any],
    obs: list[Any],
    act: Callable[[list[Any], list[int]], Sequence[Any]],
    on_step: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Play one episode in every env, all in parallel, until each has terminated or truncated.

    Args:
        envs: the envs, already reset.
        obs: their reset observations (updated in place as the envs step).
        act: ``act(observations, rows)`` gives one action per still-running env ``rows`` (in that order).
        on_step: called with the env's index after each step of an env.

    Returns:
        ``(returns, lengths)``: undiscounted return and length of each env's episode.
    """
    returns = np.zeros(len(envs))
    lengths = np.zeros(len(envs), dtype=np.int64)
    live = list(range(len(envs)))
    while live:
        actions = act([obs[i] for i in live], live)
        still = []
        for j, i in enumerate(live):
            obs[i], reward, terminated, truncated, _ = envs[i].step(actions[j])
            returns[i] += float(reward)
            lengths[i] += 1
            if on_step is not None:
                on_step(i)
            if not (terminated or truncated):
                still.append(i)
        live = still
    return returns, lengths
