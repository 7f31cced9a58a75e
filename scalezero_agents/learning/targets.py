"""n-step value targets: which rewards to sum and where to bootstrap, as pure array functions.

A training window starts at step ``t`` of an episode whose last observation has index ``f`` (the
observation after the final action). For window position ``k`` (step ``s = t + k``, valid while
``s < f``) the target is

    z_k = sum_{j < n, s + j < f} gamma^j r_{s+j}  +  [bootstrap] gamma^{b - s} V(o_b),   b = min(s + n, f)

where the bootstrap is on when ``s + n < f`` (the episode goes on past the horizon) or when the episode
was truncated (time limit: ``o_f`` is a real, non-terminal state). After a termination there is nothing
to bootstrap from. ``V`` is the EMA target model's value, read teacher-forced from a *bootstrap window*
of observations ``o_{min(t+n+p, f)}``, ``p = 0..H-1``; ``boot_pos`` says which position of that window
holds ``o_b``. Splitting the plan (here, NumPy, testable by hand) from the values (the learner, torch)
keeps the arithmetic of episode ends in one place.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class NStepPlan(NamedTuple):
    """Per window position ``[batch, H]``: reward sums, and where/how to bootstrap."""

    reward_sum: np.ndarray
    """float32: discounted sum of the (up to n) rewards from step k on."""
    boot_pos: np.ndarray
    """int64: position of ``o_b`` in the bootstrap window."""
    boot_discount: np.ndarray
    """float32: gamma^(b - s), multiplied with the bootstrap value."""
    boot_on: np.ndarray
    """float32: 1 where the bootstrap term applies, 0 after a termination."""


def nstep_plan(
    rewards: np.ndarray,
    rel_last: np.ndarray,
    truncated: np.ndarray,
    *,
    window: int,
    td_steps: int,
    discount: float,
) -> NStepPlan:
    """Plan n-step targets for a batch of windows.

    Args:
        rewards: ``[batch, window + td_steps]`` rewards of steps ``t .. t+H+n-1`` (values at or past
            the episode's last observation are ignored).
        rel_last: ``[batch]`` index of the episode's last observation relative to ``t`` (``f - t >= 1``);
            for an episode still running, any value ``>= window + td_steps``.
        truncated: ``[batch]`` bool, whether the episode ended by truncation (bootstrap from ``o_f``);
            ignored for running episodes.
        window: H, the window length. td_steps: n. discount: gamma.
    """
    batch = rewards.shape[0]
    if rewards.shape != (batch, window + td_steps):
        raise ValueError(f"rewards must be [batch, {window + td_steps}], got {rewards.shape}")
    rel_last = np.asarray(rel_last, dtype=np.int64).reshape(batch, 1)
    if np.any(rel_last < 1):
        raise ValueError("rel_last must be >= 1 (a window starts at a step with an action)")
    steps = np.arange(window + td_steps)
    r = np.where(steps[None, :] < rel_last, rewards, 0.0).astype(np.float64)
    powers = discount ** np.arange(td_steps, dtype=np.float64)
    k = np.arange(window)
    reward_sum = np.zeros((batch, window), dtype=np.float64)
    for j in range(td_steps):
        reward_sum += powers[j] * r[:, k + j]
    boot_step = np.minimum(k[None, :] + td_steps, rel_last)  # b - t
    boot_discount = discount ** (boot_step - k[None, :]).astype(np.float64)
    running = rel_last >= window + td_steps
    trunc = np.asarray(truncated, dtype=bool).reshape(batch, 1) | running
    boot_on = (k[None, :] + td_steps < rel_last) | trunc
    boot_pos = np.maximum(boot_step - td_steps, 0)
    return NStepPlan(
        reward_sum.astype(np.float32),
        boot_pos.astype(np.int64),
        boot_discount.astype(np.float32),
        boot_on.astype(np.float32),
    )
