"""The search driver: run a full batched search given root outputs and a recurrent function.

The same loop serves the C core (:class:`SearchTree`) and the NumPy oracle (:class:`ReferenceTree`),
and later the agent, whose ``recurrent_fn`` is one batched world-model call per simulation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

import numpy as np

from scalezero_agents.search.config import SearchConfig
from scalezero_agents.search.tree import SearchInputError, SearchOutput, Selection


class RootOutput(NamedTuple):
    """Network outputs at the roots.

    value: ``[B]``; discrete modes: prior_logits ``[B, A]`` plus optional legal_mask (legal at the
    root) and valid_mask (actions that exist below the root); sampled mode: mu and log_std ``[B, d]``
    (K actions drawn in C), or actions ``[B, K, d]`` and logp ``[B, K]``. All arrays float64.
    """

    value: np.ndarray
    prior_logits: np.ndarray | None = None
    legal_mask: np.ndarray | None = None
    valid_mask: np.ndarray | None = None
    mu: np.ndarray | None = None
    log_std: np.ndarray | None = None
    actions: np.ndarray | None = None
    logp: np.ndarray | None = None


class RecurrentOutput(NamedTuple):
    """Network outputs for the nodes created by one simulation (fields as in :class:`RootOutput`)."""

    reward: np.ndarray
    value: np.ndarray
    prior_logits: np.ndarray | None = None
    mu: np.ndarray | None = None
    log_std: np.ndarray | None = None
    actions: np.ndarray | None = None
    logp: np.ndarray | None = None


RecurrentFn = Callable[[Selection], RecurrentOutput]
"""``recurrent_fn(selection)``: the model step from ``selection.parent`` with ``selection.action``
(``selection.action_vec`` in sampled mode), storing its state under ``selection.node``."""


class Tree(Protocol):
    config: SearchConfig

    @property
    def num_simulations(self) -> int: ...
    def reset(self, value: np.ndarray, logits: np.ndarray, *, legal_mask: np.ndarray | None = ...,
              valid_mask: np.ndarray | None = ..., noise: bool = ...) -> None: ...
    def reset_sampled(self, value: np.ndarray, **kwargs: object) -> None: ...
    def select(self) -> Selection: ...
    def expand_and_backup(self, reward: np.ndarray, value: np.ndarray, logits: np.ndarray, *,
                          select_next: bool = ...) -> Selection | None: ...
    def expand_and_backup_sampled(self, reward: np.ndarray, value: np.ndarray,
                                  **kwargs: object) -> Selection | None: ...
    def result(self, temperature: float = ...) -> SearchOutput: ...


def search(
    tree: Tree,
    root: RootOutput,
    recurrent_fn: RecurrentFn,
    *,
    noise: bool = False,
    temperature: float = 0.0,
) -> SearchOutput:
    """Run ``tree.num_simulations`` simulations from ``root`` and return the root statistics.

    Args:
        tree: a :class:`SearchTree` (C core) or :class:`ReferenceTree` (NumPy oracle).
        root: network outputs at the roots.
        recurrent_fn: batched model step, called once per simulation for all roots.
        noise: root exploration noise (Dirichlet, or Gumbel in gumbel mode); on when collecting.
        temperature: action selection temperature (0 = most visited).
    """
    sampled = tree.config.mode == "sampled"
    if sampled:
        tree.reset_sampled(root.value, mu=root.mu, log_std=root.log_std, actions=root.actions,
                           logp=root.logp, noise=noise)
    else:
        if root.prior_logits is None:
            raise SearchInputError(f"{tree.config.mode} mode needs root.prior_logits")
        tree.reset(root.value, root.prior_logits, legal_mask=root.legal_mask,
                   valid_mask=root.valid_mask, noise=noise)
    selection = tree.select()
    last = tree.num_simulations - 1
    if sampled:
        expand_sampled = tree.expand_and_backup_sampled
        for sim in range(last + 1):
            out = recurrent_fn(selection)
            selection = expand_sampled(out.reward, out.value, mu=out.mu, log_std=out.log_std,
                                       actions=out.actions, logp=out.logp, select_next=sim < last)
    else:
        expand = tree.expand_and_backup
        for sim in range(last + 1):
            out = recurrent_fn(selection)
            logits = out.prior_logits
            if logits is None:
                raise SearchInputError(f"{tree.config.mode} mode needs prior_logits from recurrent_fn")
            # fused: expand + the next select in one call, except after the last simulation
            selection = expand(out.reward, out.value, logits, select_next=sim < last)
    return tree.result(temperature)
