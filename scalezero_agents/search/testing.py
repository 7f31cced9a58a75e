"""A cheap, deterministic fake model for tests and benchmarks of the search core.

Node states are integer ids: a root's id is given, a child's id is a (tabulation) hash of
(parent id, action), and reward, value and prior (or Gaussian) outputs are table look-ups at the id,
i.e. pure functions of it. The model keeps a ``[B, N]`` id array indexed by node id, exactly as a world model keeps
latents / KV slots per node.
"""

from __future__ import annotations

import numpy as np

from scalezero_agents.search.driver import RecurrentOutput, RootOutput
from scalezero_agents.search.tree import Selection


class HashModel:
    """Deterministic fake model for ``search``.

    Node states are ids in ``[0, 2**table_bits)``. A child's id is a tabulation hash of (parent id,
    action), i.e. a fixed random transition table; reward, value and prior logits (or Gaussian
    parameters) are table look-ups at the id. Everything is seeded and vectorised: one step is seven
    NumPy calls in one integer dtype (reward and value come from one ``[2, size]`` table, as do mu and
    log_std), so the model costs a few microseconds per batched call and the tree dominates a
    benchmark.

    Args:
        batch_size: roots B.
        num_simulations: simulations per search (node capacity - 1).
        num_actions: discrete action count A, or K in sampled mode.
        action_dim: sampled mode: continuous action size d (0 for discrete modes).
        table_bits: log2 of the number of distinct states.
        seed: seed of the tables.
        scale: standard deviation of the prior logits.
    """

    def __init__(self, batch_size: int, num_simulations: int, num_actions: int, *, action_dim: int = 0,
                 table_bits: int = 12, seed: int = 0, scale: float = 1.0) -> None:
        rng = np.random.default_rng(seed)
        size = 1 << table_bits
        self.size, self.num_actions, self.action_dim = size, num_actions, action_dim
        self.transition = rng.integers(0, size, size * num_actions, dtype=np.int32)
        self.reward_table = rng.uniform(-1.0, 1.0, size)
        self.value_table = rng.uniform(-1.0, 1.0, size)
        self.logit_table = rng.normal(0.0, scale, (size, num_actions))
        self.mu_table = rng.uniform(-1.0, 1.0, (size, action_dim))
        self.log_std_table = rng.uniform(-2.0, 0.0, (size, action_dim))
        # one gather serves two outputs: [2, size] -> take(ids, axis=1) -> [2, B], two contiguous rows
        self._reward_value = np.stack([self.reward_table, self.value_table])
        self._gauss = np.stack([self.mu_table, self.log_std_table])  # [2, size, d]
        self.capacity = num_simulations + 1
        self.state = np.zeros(batch_size * self.capacity, dtype=np.int32)  # [B, N] flattened
        self.offset = np.arange(batch_size, dtype=np.int32) * np.int32(self.capacity)
        self._stride = np.full(batch_size, num_actions, dtype=np.int32)  # array * array beats array * int

    def root(self, root_ids: np.ndarray) -> RootOutput:
        """Root outputs for the given integer state ids ``[B]`` (taken modulo the table size)."""
        ids = (np.asarray(root_ids, dtype=np.int64) % self.size).astype(np.int32)
        self.state.put(self.offset, ids)
        if self.action_dim:
            return RootOutput(value=self.value_table.take(ids), mu=self.mu_table.take(ids, axis=0),
                              log_std=self.log_std_table.take(ids, axis=0))
        return RootOutput(value=self.value_table.take(ids), prior_logits=self.logit_table.take(ids, axis=0))

    def __call__(self, sel: Selection) -> RecurrentOutput:
        ids = self.transition.take(self.state.take(sel.parent_slot) * self._stride + sel.action)
        self.state.put(sel.node_slot, ids)
        rv = self._reward_value.take(ids, axis=1)  # rows: reward, value
        if self.action_dim:
            gauss = self._gauss.take(ids, axis=1)  # rows: mu, log_std
            return RecurrentOutput(rv[0], rv[1], None, gauss[0], gauss[1])
        return RecurrentOutput(rv[0], rv[1], self.logit_table.take(ids, axis=0))
