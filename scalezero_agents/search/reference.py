"""Pure NumPy reference of the search core: the test oracle.

Same API and the same semantics as :class:`~scalezero_agents.search.tree.SearchTree` (see the header
of ``csrc/mcts.c``), written per root and per node for readability. It performs the same
floating-point operations in the same order as the C code (sequential sums, ``math`` functions for
transcendentals), so both produce identical trees, visit counts and random draws.
"""

from __future__ import annotations

import math

import numpy as np

from scalezero_agents.search.config import SearchConfig
from scalezero_agents.search.rng import Stream, root_seeds
from scalezero_agents.search.tree import (
    ILLEGAL,
    NEXT_STALE,
    ROOT,
    UNVISITED,
    SearchInputError,
    SearchOutput,
    SearchStateError,
    Selection,
    tree_sizes,
)

LOG_SQRT_2PI = 0.91893853320467274178
GUMBEL_EPS = 1e-8
TANH_EPS = 1e-6


def seqsum(x: np.ndarray) -> float:
    """Left-to-right sum (as the C loops do; ``np.sum`` is pairwise and rounds differently)."""
    total = 0.0
    for v in x.tolist():
        total += v
    return total


def softmax_legal(p: np.ndarray, legal: np.ndarray) -> np.ndarray:
    """Softmax over the legal entries of ``p``; illegal entries get 0."""
    out = np.zeros_like(p)
    idx = np.flatnonzero(legal)
    m = float(p[idx].max())
    e = np.array([math.exp(v - m) for v in p[idx].tolist()])
    out[idx] = e / seqsum(e)
    return out


def _pow(x: float, temperature: float) -> float:
    """x ** (1 / temperature) as the C core computes it (no pow call at temperature 1)."""
    return x if temperature == 1.0 else math.pow(x, 1.0 / temperature)


def halving_schedule(m: int, n: int) -> list[int]:
    """Visit count a considered root action must have at each simulation (sequential halving)."""
    if m <= 1:
        return list(range(n))
    rounds = 0
    while (1 << rounds) < m:
        rounds += 1
    out: list[int] = []
    considered, visits = m, 0
    while len(out) < n:
        extra = max(1, n // (rounds * considered))
        for _ in range(extra):
            out.extend([visits] * min(considered, n - len(out)))
            visits += 1
        considered = max(2, considered // 2)
    return out


class ReferenceTree:
    """NumPy twin of :class:`SearchTree` (same constructor and methods)."""

    def __init__(
        self,
        batch_size: int,
        config: SearchConfig,
        *,
        num_actions: int | None = None,
        action_dim: int | None = None,
        seed: int = 0,
    ) -> None:
        self.config = config
        B, A, d = tree_sizes(config, batch_size, num_actions, action_dim)
        N = config.num_simulations + 1
        self.batch_size, self.num_actions, self.action_dim, self.capacity = B, A, d, N
        self.visit = np.zeros((B, N), np.int32)
        self.value_sum = np.zeros((B, N))
        self.reward = np.zeros((B, N))
        self.raw_value = np.zeros((B, N))
        self.parent = np.zeros((B, N), np.int32)
        self.action = np.zeros((B, N), np.int32)
        self.prior_ready = np.zeros((B, N), np.uint8)
        self.q = np.zeros((B, N))
        self.nkids = np.zeros((B, N), np.int32)
        self.next_kid = np.zeros((B, N), np.int32)
        self.kids = np.zeros((B, N, A), np.int32)
        c1, c2 = config.c1, config.c2
        self.pbc_table = np.array([(math.log((n + c2 + 1.0) / c2) + c1) * math.sqrt(n) for n in range(N + 1)])
        self.recip_table = np.array([1.0 / (1.0 + n) for n in range(N + 1)])
        self.child = np.zeros((B, N, A), np.int32)
        self.prior = np.zeros((B, N, A))
        self.logit = np.zeros((B, N, A)) if config.mode == "gumbel" else None
        self.sampled_action = np.zeros((B, N, A, d)) if config.mode == "sampled" else None
        self.sampled_logp = np.zeros((B, N, A)) if config.mode == "sampled" else None
        self.gauss = np.zeros((B, N, 2, d)) if config.mode == "sampled" else None
        self.valid = np.ones((B, A), np.uint8)
        self.num_nodes = np.zeros(B, np.int32)
        self.mm_min = np.full(B, np.inf)
        self.mm_max = np.full(B, -np.inf)
        self.max_depth = np.zeros(B, np.int32)
        self.gumbel = np.zeros((B, A))
        self.sh_visits: list[list[int]] = [[] for _ in range(B)]
        self._sel = Selection(*(np.zeros(B, np.int32) for _ in range(4)),
                              np.zeros((B, d)) if config.mode == "sampled" else None,
                              np.zeros(B, np.int32), np.zeros(B, np.int32))
        self._is_reset = self._pending = False
        self.seed(seed)

    @property
    def num_simulations(self) -> int:
        return self.capacity - 1

    def seed(self, seed: int) -> None:
        self.streams = [Stream(int(s)) for s in root_seeds(seed, self.batch_size)]

    @property
    def rng_state(self) -> np.ndarray:
        return np.array([s.state for s in self.streams], dtype=np.uint64)

    def _need_mode(self, *modes: str) -> None:
        if self.config.mode not in modes:
            raise SearchStateError(f"this call is for {' / '.join(modes)} mode; the tree is {self.config.mode!r}")

    # ------------------------------------------------------------------ reset

    def _init_root(self, b: int, value: float) -> None:
        self.visit[b, ROOT], self.value_sum[b, ROOT], self.raw_value[b, ROOT] = 1, value, value
        self.reward[b, ROOT], self.parent[b, ROOT], self.action[b, ROOT] = 0.0, -1, -1
        self.nkids[b, ROOT] = 0
        self.num_nodes[b], self.max_depth[b] = 1, 0
        self.mm_min[b], self.mm_max[b] = np.inf, -np.inf

    def _add_dirichlet(self, b: int) -> None:
        legal = np.flatnonzero(self.child[b, ROOT] != ILLEGAL)
        g = np.array([self.streams[b].gamma(self.config.dirichlet_alpha) for _ in legal])
        total = seqsum(g)
        noise = g / total if total > 0.0 else np.full(len(legal), 1.0 / len(legal))
        frac = self.config.dirichlet_fraction
        self.prior[b, ROOT, legal] = self.prior[b, ROOT, legal] * (1.0 - frac) + frac * noise

    def reset(self, value: np.ndarray, logits: np.ndarray, *, legal_mask: np.ndarray | None = None,
              valid_mask: np.ndarray | None = None, noise: bool = False) -> None:
        self._need_mode("puct", "gumbel")
        B, A = self.batch_size, self.num_actions
        value, logits = _f64(value, (B,), "value"), _f64(logits, (B, A), "logits")
        legal = _mask(legal_mask, (B, A), "legal_mask")
        valid = _mask(valid_mask, (B, A), "valid_mask")
        for b in range(B):
            if not math.isfinite(value[b]):
                raise SearchInputError(f"value of root {b} is NaN or infinite")
            bad = np.flatnonzero(legal[b] & ~np.isfinite(logits[b]))
            if bad.size:
                raise SearchInputError(f"logit [{b}, {bad[0]}] of a legal action is NaN or infinite")
            if not legal[b].any() or not valid[b].any():
                raise SearchInputError(f"root {b} has no legal action")
        self.valid[:] = valid
        for b in range(B):
            self._init_root(b, float(value[b]))
            self.child[b, ROOT] = np.where(legal[b], UNVISITED, ILLEGAL)
            self.prior[b, ROOT] = softmax_legal(logits[b], legal[b])
            self.prior_ready[b, ROOT] = 1
            if self.logit is not None:
                self.logit[b, ROOT] = logits[b]
            if self.config.mode == "gumbel":
                for a in range(A):
                    g = 0.0
                    if noise and legal[b, a]:
                        g = -math.log(-math.log(self.streams[b].uniform()))
                    self.gumbel[b, a] = g
                m = min(int(legal[b].sum()), self.config.max_considered)
                self.sh_visits[b] = halving_schedule(m, self.capacity - 1)
            elif noise and self.config.dirichlet_fraction > 0.0:
                self._add_dirichlet(b)
            self._refresh_next_kid(b, ROOT)
        self._is_reset, self._pending = True, False

    def reset_sampled(self, value: np.ndarray, *, mu: np.ndarray | None = None,
                      log_std: np.ndarray | None = None, actions: np.ndarray | None = None,
                      logp: np.ndarray | None = None, noise: bool = False) -> None:
        self._need_mode("sampled")
        value = _f64(value, (self.batch_size,), "value")
        for b in range(self.batch_size):
            if not math.isfinite(value[b]):
                raise SearchInputError(f"value of root {b} is NaN or infinite")
        inputs = self._check_sampled(mu, log_std, actions, logp)
        for b in range(self.batch_size):
            self._init_root(b, float(value[b]))
            self._fill_samples(b, ROOT, *inputs)
            self._ensure_prior(b, ROOT)  # the root's samples are drawn now
            if noise and self.config.dirichlet_fraction > 0.0:
                self._add_dirichlet(b)
            self._refresh_next_kid(b, ROOT)
        self.valid[:] = 1
        self._is_reset, self._pending = True, False

    # ------------------------------------------------------------------ sampled actions

    def _check_sampled(self, mu: object, log_std: object, actions: object, logp: object) -> tuple:
        B, K, d = self.batch_size, self.num_actions, self.action_dim
        if actions is None and logp is None and mu is not None and log_std is not None:
            mu, log_std = _f64(mu, (B, d), "mu"), _f64(log_std, (B, d), "log_std")
            if not np.isfinite(mu).all() or not np.isfinite(log_std).all():
                raise SearchInputError("mu / log_std contain NaN or infinite values")
            return mu, log_std, None, None
        if mu is None and log_std is None and actions is not None and logp is not None:
            actions, logp = _f64(actions, (B, K, d), "actions"), _f64(logp, (B, K), "logp")
            if not np.isfinite(actions).all() or not np.isfinite(logp).all():
                raise SearchInputError("actions / logp contain NaN or infinite values")
            if (np.abs(actions) > 1.0).any():
                raise SearchInputError("sampled actions must lie in [-1, 1]")
            return None, None, actions, logp
        raise SearchInputError("give either mu and log_std, or actions and logp")

    def _samples_ready(self, b: int, node: int) -> None:
        self.child[b, node] = UNVISITED
        self.prior[b, node] = 1.0 / self.num_actions
        self.prior_ready[b, node] = 1
        self.next_kid[b, node] = 0

    def _draw_samples(self, b: int, node: int) -> None:
        """Draw the node's K tanh-squashed Gaussian actions from its stored mu / log_std."""
        mu, log_std = self.gauss[b, node]
        for k in range(self.num_actions):
            lp = 0.0
            for j in range(self.action_dim):
                ls = min(max(float(log_std[j]), -20.0), 2.0)
                eps = self.streams[b].normal()
                x = math.tanh(float(mu[j]) + math.exp(ls) * eps)
                self.sampled_action[b, node, k, j] = x
                lp += -0.5 * eps * eps - ls - LOG_SQRT_2PI - math.log(1.0 - x * x + TANH_EPS)
            self.sampled_logp[b, node, k] = lp

    def _fill_samples(self, b: int, node: int, mu: np.ndarray | None, log_std: np.ndarray | None,
                      actions: np.ndarray | None, logp: np.ndarray | None) -> None:
        """Copy given samples now, or keep the Gaussian to draw on the node's first selection."""
        if actions is not None:
            self.sampled_action[b, node] = actions[b]
            self.sampled_logp[b, node] = logp[b]
            self._samples_ready(b, node)
            return
        self.gauss[b, node] = mu[b], log_std[b]
        self.child[b, node] = UNVISITED
        self.prior_ready[b, node] = 0
        self.next_kid[b, node] = -1

    # ------------------------------------------------------------------ selection

    def _refresh_next_kid(self, b: int, node: int) -> None:
        """The unvisited legal child with the highest prior (lowest index on ties), or -1."""
        unvisited = self.child[b, node] == UNVISITED
        best = np.argmax(np.where(unvisited, self.prior[b, node], -np.inf))
        self.next_kid[b, node] = int(best) if unvisited.any() else -1

    def _ensure_prior(self, b: int, node: int) -> None:
        if not self.prior_ready[b, node] and self.config.mode == "sampled":
            self._draw_samples(b, node)
            self._samples_ready(b, node)
        elif not self.prior_ready[b, node]:
            self.prior[b, node] = softmax_legal(self.prior[b, node], self.child[b, node] != ILLEGAL)
            self.prior_ready[b, node] = 1
            self._refresh_next_kid(b, node)
        elif self.next_kid[b, node] == NEXT_STALE:
            self._refresh_next_kid(b, node)

    def _select_puct(self, b: int, node: int) -> int:
        """pUCT over the visited children plus the best unvisited one (``next_kid``): every
        unvisited child scores prior * pbc + the same Qn, so the highest prior is the only candidate."""
        cfg = self.config
        self._ensure_prior(b, node)
        pbc = float(self.pbc_table[self.visit[b, node]])
        lo = float(self.mm_min[b])
        delta = float(self.mm_max[b]) - lo
        inv = 1.0 / (delta if delta >= cfg.value_floor else cfg.value_floor)
        kids = self.kids[b, node, : self.nkids[b, node]]
        slots = self.action[b, kids]
        qn = np.clip((self.q[b, kids] - lo) * inv, 0.0, 1.0)
        scores = self.prior[b, node, slots] * pbc * self.recip_table[self.visit[b, kids]] + qn
        best = int(self.next_kid[b, node])
        best_score = -np.inf
        if best >= 0:  # unvisited children: the parent's normalised value, or 0
            q_unvisited = 0.0
            if cfg.unvisited_value == "parent" and self.mm_max[b] >= lo:
                v = float(self.value_sum[b, node]) / float(self.visit[b, node])
                q_unvisited = min(max((v - lo) * inv, 0.0), 1.0)
            best_score = float(self.prior[b, node, best] * pbc) + q_unvisited
        for a, score in zip(slots.tolist(), scores.tolist(), strict=True):
            if score > best_score or (score == best_score and a < best):
                best, best_score = a, score
        return best

    def _completed_sigma(self, b: int, node: int) -> tuple[np.ndarray, int]:
        cfg = self.config
        kids = self.child[b, node]
        sigma = np.zeros(self.num_actions)
        total, most, sum_p, sum_pq = 0, 0, 0.0, 0.0
        for a in np.flatnonzero(kids >= 0):
            c = kids[a]
            sigma[a] = self.q[b, c]
            total += int(self.visit[b, c])
            most = max(most, int(self.visit[b, c]))
            sum_p += float(self.prior[b, node, a])
            sum_pq += float(self.prior[b, node, a]) * float(sigma[a])
        vmix = float(self.raw_value[b, node])
        if total > 0 and sum_p > 0.0:
            vmix = (vmix + total * (sum_pq / sum_p)) / (1.0 + total)
        sigma[kids == UNVISITED] = vmix
        legal = kids != ILLEGAL
        lo, hi = float(sigma[legal].min()), float(sigma[legal].max())
        scale = (cfg.c_visit + most) * cfg.c_scale
        sigma[legal] = scale * ((sigma[legal] - lo) / (hi - lo if hi - lo > GUMBEL_EPS else GUMBEL_EPS))
        return sigma, total

    def _improved_policy(self, b: int, node: int, sigma: np.ndarray) -> np.ndarray:
        return softmax_legal(self.logit[b, node] + sigma, self.child[b, node] != ILLEGAL)

    def _child_visits(self, b: int, node: int) -> np.ndarray:
        kids = self.child[b, node]
        return np.where(kids >= 0, self.visit[b, np.maximum(kids, 0)], 0)

    def _select_gumbel_root(self, b: int) -> int:
        sigma, _ = self._completed_sigma(b, ROOT)
        target = self.sh_visits[b][int(self.visit[b, ROOT]) - 1]
        legal = self.child[b, ROOT] != ILLEGAL
        score = np.where(legal, self.gumbel[b] + self.logit[b, ROOT] + sigma, -np.inf)
        on_schedule = legal & (self._child_visits(b, ROOT) == target)
        if on_schedule.any():
            return int(np.argmax(np.where(on_schedule, score, -np.inf)))
        return int(np.argmax(score))

    def _select_deterministic(self, b: int, node: int) -> int:
        self._ensure_prior(b, node)
        sigma, total = self._completed_sigma(b, node)
        policy = self._improved_policy(b, node, sigma)
        score = policy - self._child_visits(b, node) / (1.0 + total)
        score[self.child[b, node] == ILLEGAL] = -np.inf
        return int(np.argmax(score))

    def _select_child(self, b: int, node: int) -> int:
        if self.config.mode == "gumbel":
            if node == ROOT:
                return self._select_gumbel_root(b)
            if self.config.interior == "deterministic":
                return self._select_deterministic(b, node)
        return self._select_puct(b, node)

    def select(self) -> Selection:
        if not self._is_reset:
            raise SearchStateError("call reset() before select() / result()")
        for b in range(self.batch_size):
            if self.num_nodes[b] >= self.capacity:
                raise SearchStateError(f"root {b}: node capacity {self.capacity} is full")
        for b in range(self.batch_size):
            node, depth = ROOT, 0
            while True:
                a = self._select_child(b, node)
                c = int(self.child[b, node, a])
                if c < 0:
                    break
                node, depth = c, depth + 1
            self._sel.parent[b], self._sel.action[b] = node, a
            self._sel.node[b], self._sel.depth[b] = self.num_nodes[b], depth + 1
            self._sel.parent_slot[b] = b * self.capacity + node
            self._sel.node_slot[b] = b * self.capacity + self.num_nodes[b]
            if self._sel.action_vec is not None:
                self._sel.action_vec[b] = self.sampled_action[b, node, a]
        self._pending = True
        return self._sel

    # ------------------------------------------------------------------ expansion and backup

    def _check_expand(self, reward: object, value: object) -> tuple[np.ndarray, np.ndarray]:
        if not self._is_reset:
            raise SearchStateError("call reset() before select() / result()")
        if not self._pending:
            raise SearchStateError("expand_and_backup() needs a select() first")
        reward = _f64(reward, (self.batch_size,), "reward")
        value = _f64(value, (self.batch_size,), "value")
        bad = ~(np.isfinite(reward) & np.isfinite(value))
        if bad.any():  # like the C core: the first bad root, its reward before its value
            b = int(np.argmax(bad))
            name = "reward" if not math.isfinite(reward[b]) else "value"
            raise SearchInputError(f"{name} of root {b} is NaN or infinite")
        return reward, value

    def _link_and_backup(self, b: int, r: float, v: float) -> None:
        cfg, sel = self.config, self._sel
        nid, p, a = int(sel.node[b]), int(sel.parent[b]), int(sel.action[b])
        self.child[b, p, a] = nid
        self.kids[b, p, self.nkids[b, p]] = nid
        self.nkids[b, p] += 1
        if self.next_kid[b, p] == a:  # found again on the next selection from p
            self.next_kid[b, p] = NEXT_STALE
        self.nkids[b, nid] = 0
        self.parent[b, nid], self.action[b, nid] = p, sel.action[b]
        self.reward[b, nid], self.raw_value[b, nid] = r, v
        self.visit[b, nid], self.value_sum[b, nid] = 0, 0.0
        self.num_nodes[b] = nid + 1
        self.max_depth[b] = max(self.max_depth[b], sel.depth[b])
        g, n = v, nid
        while True:
            self.value_sum[b, n] += g
            self.visit[b, n] += 1
            if n == ROOT:
                break
            q = self.reward[b, n] + cfg.discount * (self.value_sum[b, n] / self.visit[b, n])
            self.q[b, n] = q
            self.mm_min[b], self.mm_max[b] = min(self.mm_min[b], q), max(self.mm_max[b], q)
            g = self.reward[b, n] + cfg.discount * g
            n = int(self.parent[b, n])

    def expand_and_backup(self, reward: np.ndarray, value: np.ndarray, logits: np.ndarray, *,
                          select_next: bool = False) -> Selection | None:
        self._need_mode("puct", "gumbel")
        reward, value = self._check_expand(reward, value)
        logits = _f64(logits, (self.batch_size, self.num_actions), "logits")
        if (self.valid.astype(bool) & ~np.isfinite(logits)).any():
            raise SearchInputError("logits of valid actions contain NaN or infinite values")
        for b in range(self.batch_size):
            nid = int(self._sel.node[b])
            self.child[b, nid] = np.where(self.valid[b] != 0, UNVISITED, ILLEGAL)
            self.prior[b, nid] = logits[b]
            if self.logit is not None:
                self.logit[b, nid] = logits[b]
            self.prior_ready[b, nid] = 0
            self.next_kid[b, nid] = -1
            self._link_and_backup(b, float(reward[b]), float(value[b]))
        self._pending = False
        return self.select() if select_next else None

    def expand_and_backup_sampled(self, reward: np.ndarray, value: np.ndarray, *,
                                  mu: np.ndarray | None = None, log_std: np.ndarray | None = None,
                                  actions: np.ndarray | None = None, logp: np.ndarray | None = None,
                                  select_next: bool = False) -> Selection | None:
        self._need_mode("sampled")
        reward, value = self._check_expand(reward, value)
        inputs = self._check_sampled(mu, log_std, actions, logp)
        for b in range(self.batch_size):
            self._fill_samples(b, int(self._sel.node[b]), *inputs)
            self._link_and_backup(b, float(reward[b]), float(value[b]))
        self._pending = False
        return self.select() if select_next else None

    # ------------------------------------------------------------------ results

    def _sample_action(self, b: int, visits: np.ndarray, temperature: float) -> int:
        legal = self.child[b, ROOT] != ILLEGAL
        if visits[legal].max() == 0:
            return int(np.argmax(np.where(legal, self.prior[b, ROOT], -np.inf)))
        best = int(np.argmax(np.where(legal, visits, -1)))
        if temperature == 0.0:
            return best
        most = float(visits[best])
        w = np.array([_pow(v / most, temperature) if (ok and v > 0) else 0.0
                      for v, ok in zip(visits.tolist(), legal.tolist(), strict=True)])
        u = self.streams[b].uniform() * seqsum(w)
        acc, last = 0.0, best
        for a in np.flatnonzero(w > 0.0):
            acc += w[a]
            last = int(a)
            if u < acc:
                return int(a)
        return last

    def result(self, temperature: float = 0.0) -> SearchOutput:
        if not self._is_reset:
            raise SearchStateError("call reset() before select() / result()")
        if not math.isfinite(temperature) or temperature < 0.0:
            raise SearchInputError("temperature must be finite and >= 0")
        B, A = self.batch_size, self.num_actions
        visits = np.zeros((B, A), np.int32)
        policy, action = np.zeros((B, A)), np.zeros(B, np.int32)
        for b in range(B):
            visits[b] = self._child_visits(b, ROOT)
            total = int(visits[b].sum())
            legal = self.child[b, ROOT] != ILLEGAL
            if self.config.mode == "gumbel":
                sigma, _ = self._completed_sigma(b, ROOT)
                policy[b] = self._improved_policy(b, ROOT, sigma)
                on_top = legal & (visits[b] == visits[b][legal].max())
                score = self.gumbel[b] + self.logit[b, ROOT] + sigma
                action[b] = int(np.argmax(np.where(on_top, score, -np.inf)))
            else:
                policy[b] = visits[b] / total if total > 0 else self.prior[b, ROOT]
                action[b] = self._sample_action(b, visits[b], float(temperature))
        value = self.value_sum[:, ROOT] / self.visit[:, ROOT]
        sampled = self.config.mode == "sampled"
        return SearchOutput(
            visit_counts=visits, policy=policy, value=value, action=action,
            max_depth=self.max_depth.copy(),
            action_vec=self.sampled_action[np.arange(B), ROOT, action].copy() if sampled else None,
            sampled_actions=self.sampled_action[:, ROOT].copy() if sampled else None,
            sampled_logp=self.sampled_logp[:, ROOT].copy() if sampled else None,
        )


def _f64(arr: object, shape: tuple[int, ...], name: str) -> np.ndarray:
    if not isinstance(arr, np.ndarray) or arr.dtype != np.float64 or arr.shape != shape:
        raise SearchInputError(f"{name} must be a float64 numpy array of shape {shape}")
    return arr


def _mask(mask: np.ndarray | None, shape: tuple[int, ...], name: str) -> np.ndarray:
    if mask is None:
        return np.ones(shape, bool)
    if not isinstance(mask, np.ndarray) or mask.shape != shape:
        raise SearchInputError(f"{name} must be a numpy array of shape {shape}")
    return mask != 0
