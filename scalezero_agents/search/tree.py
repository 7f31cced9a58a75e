"""Python face of the C search core: a batch of B trees in NumPy buffers, driven one call per step.

All buffers are allocated once in :class:`SearchTree` (NumPy owns the memory; C only writes into it
through ``ffi.from_buffer`` views, without copies) and are reused by every search.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from scalezero_agents.search._mcts import ffi, lib
from scalezero_agents.search.config import SearchConfig
from scalezero_agents.search.rng import root_seeds

UNVISITED = lib.SZM_UNVISITED
ILLEGAL = lib.SZM_ILLEGAL
ROOT = 0
MODES = {"puct": lib.SZM_MODE_PUCT, "sampled": lib.SZM_MODE_SAMPLED, "gumbel": lib.SZM_MODE_GUMBEL}
_F64 = np.dtype(np.float64)
_DOUBLES = ffi.typeof("double[]")
_ndarray = np.ndarray
_from_buffer = ffi.from_buffer
NEXT_PENDING, NEXT_STALE = lib.SZM_NEXT_PENDING, lib.SZM_NEXT_STALE
# Mirror `szm_node` and `szm_kid` in csrc/mcts.h (checked against cffi's layout at import).
NODE_DTYPE = np.dtype([
    ("value_sum", np.float64), ("q", np.float64), ("edge_prior", np.float64), ("reward", np.float64),
    ("next_prior", np.float64), ("visit", np.int32), ("nkids", np.int32), ("next_kid", np.int32),
    ("parent", np.int32), ("action", np.int32), ("kid_index", np.int32),
])
KID_DTYPE = np.dtype([
    ("q", np.float64), ("prior", np.float64), ("visit", np.int32), ("action", np.int32), ("node", np.int32),
    ("pad", np.int32),
])
for _dtype, _ctype in ((NODE_DTYPE, "szm_node"), (KID_DTYPE, "szm_kid")):
    if _dtype.itemsize != ffi.sizeof(_ctype) or any(
        _dtype.fields[name][1] != ffi.offsetof(_ctype, name) for name in _dtype.names
    ):
        raise ImportError(f"scalezero_agents.search: the NumPy mirror of {_ctype} does not match the compiled layout")
INTERIOR = {"puct": lib.SZM_INTERIOR_PUCT, "deterministic": lib.SZM_INTERIOR_DETERMINISTIC}


class SearchInputError(ValueError):
    """A search input was malformed: wrong type, dtype or shape, NaN/inf, an out-of-range action."""


class SearchStateError(RuntimeError):
    """A search call came out of order (select before reset, expand without select) or overflowed."""


class Selection(NamedTuple):
    """Output of ``select()``, one entry per root. Views of buffers that the next call overwrites.

    parent: ``[B] int32`` node to expand from; action: ``[B] int32`` child slot (an action index,
    or the index of a sampled action); node: ``[B] int32`` id the new node will get; depth: ``[B]
    int32`` its depth; action_vec: ``[B, d] float64`` the chosen continuous action (sampled mode);
    parent_slot, node_slot: ``[B] int32`` ``b * N + parent`` and ``b * N + node``, flat indices into
    model-side state kept as one ``[B * N, ...]`` array (latents, KV-cache slots).
    """

    parent: np.ndarray
    action: np.ndarray
    node: np.ndarray
    depth: np.ndarray
    action_vec: np.ndarray | None
    parent_slot: np.ndarray
    node_slot: np.ndarray


class SearchOutput(NamedTuple):
    """Result of a search (fresh arrays, owned by the caller).

    visit_counts: ``[B, A] int32`` root child visits; policy: ``[B, A] float64`` policy target (visit
    distribution, or the completed-Q improved policy in gumbel mode); value: ``[B]`` root value;
    action: ``[B] int32`` chosen child slot; action_vec: ``[B, d]`` chosen continuous action;
    sampled_actions: ``[B, K, d]`` and sampled_logp: ``[B, K]`` the root's sampled actions;
    max_depth: ``[B] int32``.
    """

    visit_counts: np.ndarray
    policy: np.ndarray
    value: np.ndarray
    action: np.ndarray
    max_depth: np.ndarray
    action_vec: np.ndarray | None = None
    sampled_actions: np.ndarray | None = None
    sampled_logp: np.ndarray | None = None


def tree_sizes(
    config: SearchConfig, batch_size: int, num_actions: int | None, action_dim: int | None
) -> tuple[int, int, int]:
    """Validate the tree shape against the mode; return (B, child slots A, action dim d)."""
    if not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if config.mode == "sampled":
        if action_dim is None or action_dim < 1:
            raise ValueError("sampled mode needs action_dim >= 1 (the continuous action size)")
        if num_actions is not None and num_actions != config.num_samples:
            raise ValueError(
                f"sampled mode has num_samples={config.num_samples} child slots; "
                f"num_actions={num_actions} conflicts (leave it None)"
            )
        return int(batch_size), config.num_samples, int(action_dim)
    if num_actions is None or num_actions < 1:
        raise ValueError(f"{config.mode} mode needs num_actions >= 1")
    if action_dim is not None:
        raise ValueError(f"action_dim is only for sampled mode, not {config.mode!r}")
    return int(batch_size), int(num_actions), 0


class SearchTree:
    """B search trees with a fixed node capacity, in C.

    Args:
        batch_size: number of roots B searched together.
        config: search parameters (mode, simulations, constants).
        num_actions: discrete modes: the action count A (padded across tasks if needed).
        action_dim: sampled mode: the continuous action dimension d.
        seed: seed of the per-root random streams (Dirichlet and Gumbel noise, sampled actions,
            temperature sampling).

    Example:
        >>> tree = SearchTree(2, SearchConfig(num_simulations=4), num_actions=3)
        >>> tree.reset(np.zeros(2), np.zeros((2, 3)))
        >>> sel = tree.select()
        >>> tree.expand_and_backup(np.zeros(2), np.ones(2), np.zeros((2, 3)))
    """

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
        self._keep: list[object] = []  # cdata views that must outlive the struct
        t = self._t = ffi.new("szm_tree *")
        t.batch, t.capacity, t.num_actions, t.action_dim = B, N, A, d
        t.mode, t.interior = MODES[config.mode], INTERIOR[config.interior]
        t.max_considered = config.max_considered
        t.unvisited_parent = int(config.unvisited_value == "parent")
        t.c1, t.c2, t.discount, t.value_floor = config.c1, config.c2, config.discount, config.value_floor
        t.dirichlet_alpha, t.dirichlet_fraction = config.dirichlet_alpha, config.dirichlet_fraction
        t.c_visit, t.c_scale = config.c_visit, config.c_scale
        sampled, gumbel = config.mode == "sampled", config.mode == "gumbel"
        i32, f64, u8 = np.int32, np.float64, np.uint8
        self.nodes = self._alloc_records("nodes", (B, N), NODE_DTYPE)
        for field in NODE_DTYPE.names:  # named views into the node records, e.g. tree.visit[b, node]
            setattr(self, field, self.nodes[field])
        self.kid_stats = self._alloc_records("kids", (B, N, A), KID_DTYPE)
        self.kids = self.kid_stats["node"]  # [B, N, A]: visited children's ids, first nkids[b, n] used
        self.child = self._alloc("child", (B, N, A), i32)
        self.prior = self._alloc("prior", (B, N, A), f64)
        self.logit = self._alloc("logit", (B, N, A), f64) if gumbel else None
        self.raw_value = self._alloc("raw_value", (B, N), f64) if gumbel else None
        self.sampled_action = self._alloc("sampled_action", (B, N, A, d), f64) if sampled else None
        self.sampled_logp = self._alloc("sampled_logp", (B, N, A), f64) if sampled else None
        self.gauss = self._alloc("gauss", (B, N, 2, d), f64) if sampled else None
        self.valid = self._alloc("valid", (B, A), u8)
        self.num_nodes = self._alloc("num_nodes", (B,), i32)
        self.mm_min = self._alloc("mm_min", (B,), f64)
        self.mm_max = self._alloc("mm_max", (B,), f64)
        self.rng = self._alloc("rng", (B,), np.uint64)
        self.max_depth = self._alloc("max_depth", (B,), i32)
        self.num_considered = self._alloc("num_considered", (B,), i32) if gumbel else None
        self.gumbel = self._alloc("gumbel", (B, A), f64) if gumbel else None
        self.sh_visits = self._alloc("sh_visits", (B, max(N - 1, 1)), i32) if gumbel else None
        self._alloc("scratch", (B, 2 * A), f64)
        self.pbc_table = self._alloc("pbc_table", (N + 1,), f64)
        self.recip_table = self._alloc("recip_table", (N + 1,), f64)
        sel = [self._alloc(f"out_{k}", (B,), i32) for k in ("parent", "action", "node", "depth")]
        vec = self._alloc("out_action_vec", (B, d), f64) if sampled else None
        slots = [self._alloc(f"out_{k}_slot", (B,), i32) for k in ("parent", "node")]
        self._selection = Selection(*sel, vec, *slots)
        self._res_visits = self._alloc("res_visits", (B, A), i32)
        self._res_policy = self._alloc("res_policy", (B, A), f64)
        self._res_value = self._alloc("res_value", (B,), f64)
        self._res_action = self._alloc("res_action", (B,), i32)
        self._res_action_vec = self._alloc("res_action_vec", (B, d), f64) if sampled else None
        self._shape_b, self._shape_ba, self._sampled = (B,), (B, A), sampled
        self._legal = np.ones((B, A), dtype=u8)
        self._c_legal = ffi.from_buffer("uint8_t[]", self._legal)
        if lib.szm_init(t) != lib.SZM_OK:
            raise ValueError(f"search core rejected the configuration {config}")
        self.seed(seed)

    def _alloc_records(self, field: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """Zeroed C records (``szm_node``, ``szm_kid``), aligned to 64 bytes: a node record is one
        cache line, a kid record half of one."""
        size = int(np.prod(shape)) * dtype.itemsize
        raw = np.zeros(size + 64, dtype=np.uint8)
        start = -raw.ctypes.data % 64
        records = raw[start:start + size].view(dtype).reshape(shape)
        view = ffi.from_buffer({NODE_DTYPE: "szm_node[]", KID_DTYPE: "szm_kid[]"}[dtype], records)
        self._keep.extend([raw, view])
        setattr(self._t, field, view)
        return records

    def _alloc(self, field: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        arr = np.zeros(shape, dtype=dtype)
        ctype = {np.int32: "int32_t[]", np.float64: "double[]", np.uint8: "uint8_t[]",
                 np.uint64: "uint64_t[]"}[dtype]
        view = ffi.from_buffer(ctype, arr)
        self._keep.append(view)
        setattr(self._t, field, view)
        return arr

    # ------------------------------------------------------------------ public API

    @property
    def num_simulations(self) -> int:
        return self.capacity - 1

    @property
    def prior_ready(self) -> np.ndarray:
        """``[B, N]`` bool: the node's ``prior`` row holds probabilities (it has been selected from)."""
        return self.next_kid != NEXT_PENDING

    def seed(self, seed: int) -> None:
        """Re-seed every root's random stream."""
        self.rng[:] = root_seeds(seed, self.batch_size)

    @property
    def rng_state(self) -> np.ndarray:
        """A copy of the per-root generator states (for checkpoints); assign to restore."""
        return self.rng.copy()

    @rng_state.setter
    def rng_state(self, state: np.ndarray) -> None:
        state = np.asarray(state)
        if state.shape != (self.batch_size,) or state.dtype != np.uint64:
            raise SearchInputError(f"rng_state must be uint64 of shape ({self.batch_size},)")
        self.rng[:] = state

    def reset(
        self,
        value: np.ndarray,
        logits: np.ndarray,
        *,
        legal_mask: np.ndarray | None = None,
        valid_mask: np.ndarray | None = None,
        noise: bool = False,
    ) -> None:
        """Start a new search (discrete modes) from the roots' network outputs.

        Args:
            value: ``[B] float64`` root values.
            logits: ``[B, A] float64`` root prior logits (finite where legal).
            legal_mask: ``[B, A]`` bool, legal actions at the roots (default: all).
            valid_mask: ``[B, A]`` bool, actions that exist below the roots, e.g. a task's real
                actions inside a padded action space (default: all).
            noise: exploration noise at the roots (Dirichlet for pUCT, Gumbel for gumbel mode).
        """
        self._need_mode("puct", "gumbel")
        B, A = self.batch_size, self.num_actions
        c_value = self._in(value, (B,), "value")
        c_logits = self._in(logits, (B, A), "logits")
        self._set_mask(self._legal, legal_mask, "legal_mask")
        self._set_mask(self.valid, valid_mask, "valid_mask")
        self._check(lib.szm_reset(self._t, c_value, c_logits, self._c_legal, int(bool(noise))))

    def reset_sampled(
        self,
        value: np.ndarray,
        *,
        mu: np.ndarray | None = None,
        log_std: np.ndarray | None = None,
        actions: np.ndarray | None = None,
        logp: np.ndarray | None = None,
        noise: bool = False,
    ) -> None:
        """Start a new search (sampled mode): K root actions drawn in C from a tanh-squashed
        diagonal Gaussian (``mu``, ``log_std``: ``[B, d]``), or given (``actions``: ``[B, K, d]`` in
        [-1, 1], ``logp``: ``[B, K]``). ``noise`` mixes Dirichlet noise into the root priors."""
        self._need_mode("sampled")
        c_value = self._in(value, (self.batch_size,), "value")
        args = self._sampled_args(mu, log_std, actions, logp)
        self.valid.fill(1)
        self._check(lib.szm_reset_sampled(self._t, c_value, *args, int(bool(noise))))

    def select(self) -> Selection:
        """Walk every tree from its root to an unexpanded edge (one C call for the batch)."""
        self._check(lib.szm_select(self._t))
        return self._selection

    def expand_and_backup(
        self, reward: np.ndarray, value: np.ndarray, logits: np.ndarray, *, select_next: bool = False
    ) -> Selection | None:
        """Create the selected nodes (discrete modes) and back their values up to the roots.

        Args:
            reward: ``[B] float64`` reward of the selected edges.
            value: ``[B] float64`` value of the new nodes.
            logits: ``[B, A] float64`` prior logits of the new nodes (finite where valid).
            select_next: also run the next :meth:`select` in the same C call and return it.
        """
        # The hot path (one call per simulation): exact-type float64 arrays of the right shapes are
        # viewed in place; anything else goes through the checks (and copies) of `_in`.
        shape_b = self._shape_b
        if (type(reward) is _ndarray and type(value) is _ndarray and type(logits) is _ndarray
                and reward.dtype is _F64 and value.dtype is _F64 and logits.dtype is _F64
                and reward.shape == shape_b and value.shape == shape_b and logits.shape == self._shape_ba
                and not self._sampled):
            try:
                code = lib.szm_expand_backup(self._t, _from_buffer(_DOUBLES, reward), _from_buffer(_DOUBLES, value),
                                             _from_buffer(_DOUBLES, logits), select_next)
            except ValueError:  # a view that is not C-contiguous
                code = self._expand_and_backup_checked(reward, value, logits, select_next)
        else:
            code = self._expand_and_backup_checked(reward, value, logits, select_next)
        if code:
            self._check(code)
        return self._selection if select_next else None

    def _expand_and_backup_checked(self, reward: object, value: object, logits: object, select_next: bool) -> int:
        self._need_mode("puct", "gumbel")
        return lib.szm_expand_backup(
            self._t, self._in(reward, self._shape_b, "reward"), self._in(value, self._shape_b, "value"),
            self._in(logits, self._shape_ba, "logits"), select_next,
        )

    def expand_and_backup_sampled(
        self,
        reward: np.ndarray,
        value: np.ndarray,
        *,
        mu: np.ndarray | None = None,
        log_std: np.ndarray | None = None,
        actions: np.ndarray | None = None,
        logp: np.ndarray | None = None,
        select_next: bool = False,
    ) -> Selection | None:
        """Sampled-mode ``expand_and_backup``: the new nodes' K actions come from ``mu``/``log_std``
        (drawn in C) or from ``actions``/``logp`` (see :meth:`reset_sampled`)."""
        self._need_mode("sampled")
        B = self.batch_size
        c_reward, c_value = self._in(reward, (B,), "reward"), self._in(value, (B,), "value")
        args = self._sampled_args(mu, log_std, actions, logp)
        self._check(lib.szm_expand_backup_sampled(self._t, c_reward, c_value, *args, int(select_next)))
        return self._selection if select_next else None

    def result(self, temperature: float = 0.0) -> SearchOutput:
        """Read the roots: visit counts, policy target, value and the chosen action.

        ``temperature`` 0 takes the most visited action (lowest index on ties); above 0 samples
        proportionally to visits^(1/temperature) from the tree's seeded streams. Gumbel mode always
        returns the sequential-halving winner.
        """
        if not isinstance(temperature, int | float) or isinstance(temperature, bool):
            raise SearchInputError(f"temperature must be a float, got {type(temperature).__name__}")
        self._check(lib.szm_result(self._t, float(temperature)))
        sampled = self.config.mode == "sampled"
        return SearchOutput(
            visit_counts=self._res_visits.copy(),
            policy=self._res_policy.copy(),
            value=self._res_value.copy(),
            action=self._res_action.copy(),
            max_depth=self.max_depth.copy(),
            action_vec=self._res_action_vec.copy() if sampled else None,
            sampled_actions=self.sampled_action[:, ROOT].copy() if sampled else None,
            sampled_logp=self.sampled_logp[:, ROOT].copy() if sampled else None,
        )

    # ------------------------------------------------------------------ helpers

    def _need_mode(self, *modes: str) -> None:
        if self.config.mode not in modes:
            raise SearchStateError(f"this call is for {' / '.join(modes)} mode; the tree is {self.config.mode!r}")

    def _in(self, arr: object, shape: tuple[int, ...], name: str) -> object:
        """A no-copy C view of a float64 input of the given shape (copied only if not contiguous)."""
        if type(arr) is np.ndarray and arr.dtype is _F64 and arr.shape == shape:  # fast path
            try:
                return ffi.from_buffer("double[]", arr)
            except ValueError:  # not C-contiguous
                return ffi.from_buffer("double[]", np.ascontiguousarray(arr))
        if not isinstance(arr, np.ndarray):
            raise SearchInputError(f"{name} must be a numpy float64 array of shape {shape}, got {type(arr).__name__}")
        if arr.dtype != np.float64:
            raise SearchInputError(f"{name} must have dtype float64, got {arr.dtype}")
        if arr.shape != shape:
            raise SearchInputError(f"{name} must have shape {shape}, got {arr.shape}")
        return ffi.from_buffer("double[]", np.ascontiguousarray(arr))

    def _set_mask(self, out: np.ndarray, mask: np.ndarray | None, name: str) -> None:
        if mask is None:
            out.fill(1)
            return
        if not isinstance(mask, np.ndarray) or not (mask.dtype == np.bool_ or np.issubdtype(mask.dtype, np.integer)):
            raise SearchInputError(f"{name} must be a bool or integer numpy array of shape {out.shape}")
        if mask.shape != out.shape:
            raise SearchInputError(f"{name} must have shape {out.shape}, got {mask.shape}")
        np.not_equal(mask, 0, out=out, casting="unsafe")

    def _sampled_args(self, mu: object, log_std: object, actions: object, logp: object) -> tuple:
        B, K, d = self.batch_size, self.num_actions, self.action_dim
        null = ffi.NULL
        if actions is None and logp is None:
            if mu is None or log_std is None:
                raise SearchInputError("give either mu and log_std, or actions and logp")
            return self._in(mu, (B, d), "mu"), self._in(log_std, (B, d), "log_std"), null, null
        if mu is not None or log_std is not None or actions is None or logp is None:
            raise SearchInputError("give either mu and log_std, or actions and logp (not a mix)")
        return null, null, self._in(actions, (B, K, d), "actions"), self._in(logp, (B, K), "logp")

    def _check(self, code: int) -> None:
        if code != lib.SZM_OK:
            raise _error(code, int(self._t.err_root), int(self._t.err_index), self.capacity)


_MESSAGES = {
    lib.SZM_ERR_CONFIG: (SearchStateError, "invalid call for this tree's configuration"),
    lib.SZM_ERR_NOT_RESET: (SearchStateError, "call reset() before select() / result()"),
    lib.SZM_ERR_NOT_SELECTED: (SearchStateError, "expand_and_backup() needs a select() first"),
    lib.SZM_ERR_CAPACITY: (SearchStateError, "root {b}: node capacity {cap} is full "
                           "(more simulations than num_simulations={sims}; reset() first)"),
    lib.SZM_ERR_NONFINITE_VALUE: (SearchInputError, "value of root {b} is NaN or infinite"),
    lib.SZM_ERR_NONFINITE_REWARD: (SearchInputError, "reward of root {b} is NaN or infinite"),
    lib.SZM_ERR_NONFINITE_LOGIT: (SearchInputError, "logit [{b}, {i}] of a legal action is NaN or infinite"),
    lib.SZM_ERR_NO_LEGAL_ACTION: (SearchInputError, "root {b} has no legal action ({what})"),
    lib.SZM_ERR_NONFINITE_ACTION: (SearchInputError, "action (or mu) [{b}, {i}] is NaN or infinite"),
    lib.SZM_ERR_ACTION_RANGE: (SearchInputError, "sampled action [{b}, {i}] is outside [-1, 1]"),
    lib.SZM_ERR_NONFINITE_STD: (SearchInputError, "log_std [{b}, {i}] is NaN or infinite"),
    lib.SZM_ERR_NONFINITE_LOGP: (SearchInputError, "logp [{b}, {i}] is NaN or infinite"),
    lib.SZM_ERR_TEMPERATURE: (SearchInputError, "temperature must be finite and >= 0"),
}


def _error(code: int, b: int, i: int, capacity: int) -> Exception:
    cls, template = _MESSAGES.get(code, (RuntimeError, "search core error {code}"))
    what = "legal_mask" if i == -1 else "valid_mask"
    return cls(template.format(b=b, i=i, cap=capacity, sims=capacity - 1, code=code, what=what))
