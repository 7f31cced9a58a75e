"""The planner: the C search core driven by the world model, for a batch of roots across tasks.

Roots are grouped into search trees by (search mode, discount): discrete tasks share a pUCT (or Gumbel)
tree over the padded action set with per-root valid/legal masks, continuous tasks a sampled tree over
the padded action dimension (Sampled MuZero), or with ``continuous="gumbel"`` a Gumbel tree over K actions
sampled from each node's policy: the planner draws them (seeded) when a node is expanded, the tree sees
them as K discrete actions with uniform prior logits (the samples already follow the policy), and the root's
policy target is Gumbel MuZero's completed-Q improved policy over the K samples. All trees advance in
lockstep, so each simulation is **one** batched ``recurrent_inference`` call for every root of every task.
A node's model-side state (its context window and K/V) lives in the inference cache under the node's flat
slot id ``b * N + node`` plus its tree's offset: no hashing of latents.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, NamedTuple

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


ContinuousSearch = Literal["sampled", "gumbel"]

#: Pre-tanh samples are clamped to +-SAMPLE_CLAMP (as the C core's sampled mode does).
SAMPLE_CLAMP = 4.0


@dataclass
class _Group:
    rows: np.ndarray  # which input rows belong to this tree
    tree: SearchTree
    offset: int  # first cache slot of this tree
    sampled: bool  # a Sampled MuZero tree (the C core draws the actions)
    width: int  # A (discrete) or d (continuous)
    node_actions: np.ndarray | None = None  # Gumbel over samples: [tree slots, K, d] actions drawn per node


class Planner:
    """Plans with ``model`` using the C search core. Owns its trees and inference cache.

    Args:
        model: the world model (used under ``torch.no_grad``).
        search: search settings. ``mode`` applies to discrete tasks ("puct" or "gumbel"); ``discount`` is
            taken from each task's spec; ``num_samples`` is K for continuous tasks.
        seed: seed of the trees' random streams (and of the planner's action samples).
        continuous: how continuous tasks search: ``"sampled"`` (Sampled MuZero) or ``"gumbel"`` (Gumbel
            sequential halving over K policy samples per node; ``max_considered`` applies).
    """

    def __init__(self, model: WorldModel, search: SearchConfig, *, seed: int = 0,
                 continuous: ContinuousSearch = "sampled") -> None:
        if continuous not in ("sampled", "gumbel"):
            raise ValueError(f"continuous must be 'sampled' or 'gumbel', got {continuous!r}")
        if search.mode == "sampled":
            search = replace(search, mode="puct")
        self.model, self.search, self.seed, self.continuous = model, search, seed, continuous
        self._sample_rng = np.random.default_rng([seed, 0x5A3])
        self._trees: dict[tuple, SearchTree] = {}
        self._cache: InferenceCache | None = None
        self._cache_slots = 0
        self._pending_rng: dict[str, np.ndarray] = {}
        self.P = model.action_width

    def rng_states(self) -> dict[str, Any]:
        """The random streams of every tree created so far, and the planner's sampler (for checkpoints)."""
        return {**self._pending_rng, **{repr(k): t.rng_state.copy() for k, t in self._trees.items()},
                "samples": self._sample_rng.bit_generator.state}

    def load_rng_states(self, states: dict[str, Any]) -> None:
        """Restore tree streams (trees not created yet get theirs when they are)."""
        states = dict(states)
        if "samples" in states:
            self._sample_rng.bit_generator.state = states.pop("samples")
        self._pending_rng = states
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
            kind = self.search.mode if spec.is_discrete else self.continuous
            keys.setdefault((kind, spec.is_discrete, float(spec.discount)), []).append(row)
        groups, offset = [], 0
        for (mode, discrete, discount), rows in keys.items():
            rows_arr = np.asarray(rows, dtype=np.int64)
            width = max(specs[int(task_ids[r])].action_size for r in rows)
            if discrete or mode == "sampled":
                tree = self._tree((mode, discount, width), len(rows))
                groups.append(_Group(rows_arr, tree, offset, not discrete, width))
            else:  # Gumbel over K samples: a discrete Gumbel tree over sample indices
                k = self.search.num_samples
                tree = self._tree(("gumbel", discount, k), len(rows))
                node_actions = np.zeros((len(rows) * tree.capacity, k, width), dtype=np.float32)
                groups.append(_Group(rows_arr, tree, offset, False, width, node_actions))
            offset += len(rows) * tree.capacity
        return groups

    def _draw(self, g: _Group, slots: np.ndarray, mu: np.ndarray, log_std: np.ndarray) -> None:
        """Draw K actions tanh(clamp(N(mu, sigma))) for the nodes ``slots`` of a Gumbel-over-samples group."""
        assert g.node_actions is not None
        k = g.node_actions.shape[1]
        noise = self._sample_rng.standard_normal((len(slots), k, g.width))
        u = mu[:, None, : g.width] + np.exp(log_std[:, None, : g.width]) * noise
        g.node_actions[slots] = np.tanh(np.clip(u, -SAMPLE_CLAMP, SAMPLE_CLAMP))

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
            elif g.node_actions is not None:
                roots = np.arange(len(g.rows), dtype=np.int64) * g.tree.capacity
                self._draw(g, roots, mu[span], log_std[span])
                g.tree.reset(values[span], np.zeros((len(g.rows), g.tree.num_actions)), noise=explore)
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
                elif g.node_actions is not None:
                    act_buf[span, : g.width] = g.node_actions[s.parent_slot, s.action]
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
            for g, s, span in zip(groups, sels, spans, strict=True):
                if g.sampled:
                    new_sels.append(g.tree.expand_and_backup_sampled(
                        reward[span], value[span], mu=mu[span, : g.width], log_std=log_std[span, : g.width],
                        select_next=more))
                elif g.node_actions is not None:
                    self._draw(g, s.node_slot.astype(np.int64), mu[span], log_std[span])
                    new_sels.append(g.tree.expand_and_backup(
                        reward[span], value[span], np.zeros((len(g.rows), g.tree.num_actions)), select_next=more))
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
                elif g.node_actions is not None:
                    d = spec.action_dim
                    root = g.node_actions[i * g.tree.capacity]
                    actions[r, :d] = root[res.action[i], :d]
                    policy[r] = res.policy[i].astype(np.float32)
                    sampled[r] = root[:, :d].copy()
                else:
                    actions[r, 0] = res.action[i]
                    policy[r] = res.policy[i, : spec.num_actions].astype(np.float32)
        return PlanResult(actions, policy, sampled, root_value, network_value)
