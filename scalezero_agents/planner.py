"""The planner: the C search core driven by the world model, for a batch of roots across tasks.

Roots are grouped into search trees by (search mode, discount): discrete tasks share a pUCT (or Gumbel)
tree over the padded action set with per-root valid/legal masks, continuous tasks a sampled tree over
the padded action dimension. All trees advance in lockstep, so each simulation is **one** batched
``recurrent_inference`` call for every root of every task. A node's model-side state (its context
window and K/V) lives in the inference cache under the node's flat slot id ``b * N + node`` plus its
tree's offset: no hashing of latents.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import torch

from scalezero_agents.model.support import decode
from scalezero_agents.model.world_model import InferenceCache, WorldModel
from scalezero_agents.search import SearchConfig, SearchTree


class PlanResult(NamedTuple):
    """Search results per root (row order as given)."""

    actions: np.ndarray
    """[n, P] float32 unified actions (discrete: index in column 0)."""
    policy: list[np.ndarray]
    """Per root: the search policy target (visit distribution over A_k, or over the K samples)."""
    sampled_actions: list[np.ndarray | None]
    """Per root: the root's K sampled actions [K, d_k] (continuous tasks), else None."""
    root_value: np.ndarray
    """[n] float64 search value of each root."""
    network_value: np.ndarray
    """[n] float64 value predicted at the root before search."""


@dataclass
class _Group:
    rows: np.ndarray  # which input rows belong to this tree
    tree: SearchTree
    offset: int  # first cache slot of this tree
    sampled: bool
    width: int  # A (discrete) or d (sampled)


class Planner:
    """Plans with ``model`` using the C search core. Owns its trees and inference cache.

    Args:
        model: the world model (used under ``torch.no_grad``).
        search: search settings. ``mode`` applies to discrete tasks ("puct" or "gumbel"); continuous tasks
            always use "sampled". ``discount`` is taken from each task's spec.
        seed: seed of the trees' random streams.
    """

    def __init__(self, model: WorldModel, search: SearchConfig, *, seed: int = 0) -> None:
        if search.mode == "sampled":
            search = replace(search, mode="puct")
        self.model, self.search, self.seed = model, search, seed
        self._trees: dict[tuple, SearchTree] = {}
        self._cache: InferenceCache | None = None
        self._cache_slots = 0
        self._pending_rng: dict[str, np.ndarray] = {}
        self.P = model.action_width

    def rng_states(self) -> dict[str, np.ndarray]:
        """The random streams of every tree created so far (for checkpoints)."""
        return {**self._pending_rng, **{repr(k): t.rng_state.copy() for k, t in self._trees.items()}}

    def load_rng_states(self, states: dict[str, np.ndarray]) -> None:
        """Restore tree streams (trees not created yet get theirs when they are)."""
        self._pending_rng = dict(states)
        for k, t in self._trees.items():
            if repr(k) in states:
                t.rng_state = states[repr(k)]

    # ------------------------------------------------------------------ trees
    def _tree(self, key: tuple, size: int) -> SearchTree:
        tree = self._trees.get((key, size))
        if tree is None:
            mode, discount, width = key
            cfg = replace(self.search, mode=mode, discount=discount)
            seed = self.seed * 1_000_003 + len(self._trees)
            if mode == "sampled":
                tree = SearchTree(size, cfg, action_dim=width, seed=seed)
            else:
                tree = SearchTree(size, cfg, num_actions=width, seed=seed)
            self._trees[(key, size)] = tree
            if repr((key, size)) in self._pending_rng:
                tree.rng_state = self._pending_rng.pop(repr((key, size)))
        return tree

    def _groups(self, task_ids: np.ndarray) -> list[_Group]:
        specs = self.model.specs
        keys: dict[tuple, list[int]] = {}
        for row, t in enumerate(task_ids):
            spec = specs[int(t)]
            kind = "sampled" if not spec.is_discrete else self.search.mode
            keys.setdefault((kind, float(spec.discount)), []).append(row)
        groups, offset = [], 0
        for (mode, discount), rows in keys.items():
            rows_arr = np.asarray(rows, dtype=np.int64)
            sizes = [specs[int(task_ids[r])].action_size for r in rows]
            width = max(sizes)
            tree = self._tree((mode, discount, width), len(rows))
            groups.append(_Group(rows_arr, tree, offset, mode == "sampled", width))
            offset += len(rows) * tree.capacity
        return groups

    def _cache_for(self, slots: int) -> InferenceCache:
        if self._cache is None or self._cache_slots < slots:
            self._cache = self.model.new_cache(slots)
            self._cache_slots = slots
        return self._cache

    # ------------------------------------------------------------------ search
    @torch.no_grad()
    def plan(
        self,
        task_ids: np.ndarray,
        latents: torch.Tensor,
        actions: torch.Tensor,
        steps: torch.Tensor,
        *,
        legal: list[np.ndarray | None] | None = None,
        explore: bool,
        temperature: float = 0.0,
    ) -> PlanResult:
        """Search from n roots with their real contexts.

        Args:
            task_ids: ``[n]`` task of each root.
            latents, actions, steps: each root's context (see ``WorldModel.initial_inference``): the
                last ``steps[i]`` real latents (the current one last) and the actions between them.
            legal: per root, a bool mask over its task's actions (tasks with action masks), or None.
            explore: root noise on (collection) or off (evaluation).
            temperature: visit-count temperature of the chosen action (0 = most visited).
        """
        task_ids = np.asarray(task_ids, dtype=np.int64)
        n = len(task_ids)
        model, specs = self.model, self.model.specs
        groups = self._groups(task_ids)
        cache = self._cache_for(sum(len(g.rows) * g.tree.capacity for g in groups))
        order = np.concatenate([g.rows for g in groups])
        tids = torch.as_tensor(task_ids[order], device=latents.device)
        root_slots = torch.as_tensor(
            np.concatenate([g.offset + np.arange(len(g.rows), dtype=np.int64) * g.tree.capacity for g in groups]),
            device=latents.device)
        idx = torch.as_tensor(order, device=latents.device)
        pred = model.initial_inference(cache, root_slots, latents[idx], actions[idx], steps[idx], tids)
        scale = model.config.support_scale
        values = decode(pred.value_logits, scale).double().cpu().numpy()
        logits = None if pred.policy_logits is None else pred.policy_logits.double().cpu().numpy()
        mu = None if pred.mu is None else pred.mu.double().cpu().numpy()
        log_std = None if pred.log_std is None else pred.log_std.double().cpu().numpy()
        start = 0
        spans = []
        for g in groups:
            span = slice(start, start + len(g.rows))
            spans.append(span)
            start = span.stop
            if g.sampled:
                g.tree.reset_sampled(values[span], mu=mu[span, : g.width], log_std=log_std[span, : g.width],
                                     noise=explore)
            else:
                valid = np.arange(g.width)[None, :] < np.array(
                    [specs[int(task_ids[r])].num_actions for r in g.rows])[:, None]
                legal_rows = valid.copy()
                for i, r in enumerate(g.rows):
                    if legal is not None and legal[r] is not None:
                        mask = np.asarray(legal[r], dtype=bool)
                        legal_rows[i, : mask.size] &= mask
                        if not legal_rows[i].any():
                            raise ValueError(f"root {r}: the legal-action mask allows no action")
                g.tree.reset(values[span], logits[span, : g.width], legal_mask=legal_rows, valid_mask=valid,
                             noise=explore)
        sels = [g.tree.select() for g in groups]
        num_sims = self.search.num_simulations
        act_buf = np.zeros((n, self.P), dtype=np.float32)
        for sim in range(num_sims):
            pairs = list(zip(groups, sels, strict=True))
            parent = np.concatenate([g.offset + s.parent_slot.astype(np.int64) for g, s in pairs])
            child = np.concatenate([g.offset + s.node_slot.astype(np.int64) for g, s in pairs])
            act_buf[:] = 0.0
            for g, s, span in zip(groups, sels, spans, strict=True):
                if g.sampled:
                    act_buf[span, : g.width] = s.action_vec
                else:
                    act_buf[span, 0] = s.action
            out = model.recurrent_inference(cache, torch.from_numpy(parent).to(latents.device),
                                            torch.from_numpy(child).to(latents.device),
                                            torch.from_numpy(act_buf).to(latents.device), tids)
            reward = decode(out.reward_logits, scale).double().cpu().numpy()
            value = decode(out.value_logits, scale).double().cpu().numpy()
            logits = None if out.policy_logits is None else out.policy_logits.double().cpu().numpy()
            mu = None if out.mu is None else out.mu.double().cpu().numpy()
            log_std = None if out.log_std is None else out.log_std.double().cpu().numpy()
            more = sim + 1 < num_sims
            new_sels = []
            for g, span in zip(groups, spans, strict=True):
                if g.sampled:
                    new_sels.append(g.tree.expand_and_backup_sampled(
                        reward[span], value[span], mu=mu[span, : g.width], log_std=log_std[span, : g.width],
                        select_next=more))
                else:
                    new_sels.append(g.tree.expand_and_backup(reward[span], value[span], logits[span, : g.width],
                                                             select_next=more))
            sels = new_sels
        return self._collect(groups, spans, task_ids, values, temperature)

    def _collect(self, groups: list[_Group], spans: list[slice], task_ids: np.ndarray, net_values: np.ndarray,
                 temperature: float) -> PlanResult:
        specs = self.model.specs
        n = len(task_ids)
        actions = np.zeros((n, self.P), dtype=np.float32)
        policy: list[np.ndarray] = [np.zeros(0)] * n
        sampled: list[np.ndarray | None] = [None] * n
        root_value = np.zeros(n)
        network_value = np.zeros(n)
        for g, span in zip(groups, spans, strict=True):
            res = g.tree.result(temperature)
            network_value[g.rows] = net_values[span]
            root_value[g.rows] = res.value
            for i, r in enumerate(g.rows):
                spec = specs[int(task_ids[r])]
                if g.sampled:
                    d = spec.action_dim
                    actions[r, :d] = res.action_vec[i, :d]
                    policy[r] = res.policy[i].astype(np.float32)
                    sampled[r] = res.sampled_actions[i, :, :d].astype(np.float32)
                else:
                    actions[r, 0] = res.action[i]
                    policy[r] = res.policy[i, : spec.num_actions].astype(np.float32)
        return PlanResult(actions, policy, sampled, root_value, network_value)
