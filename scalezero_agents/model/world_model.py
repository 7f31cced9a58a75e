"""The world model: encoders, action embeddings, the causal transformer and the per-task heads, composed.

Tokens are ``z_0, a_0, z_1, a_1, ...``: value and policy are read at observation tokens, reward and the next
latent at action tokens (UniZero). Training runs :meth:`WorldModel.forward_sequence` teacher-forced over a
window; search runs :meth:`WorldModel.initial_inference` once per root and
:meth:`WorldModel.recurrent_inference` once per simulation, with an explicit :class:`InferenceCache`.

**Unified action tensor** (width ``P = action_width``): a discrete task stores its action index as a float
in column 0 (other columns 0); continuous task k uses columns ``0..d_k-1``.

**Windows.** A cache slot holds at most C = ``context_steps`` latents and the actions between them, at
positions ``0..2*steps-2``. When a recurrent step would make C + 1 latents, the oldest step is dropped and the
row's window is recomputed from its stored tokens by a fresh full forward from position 0 (not re-based
approximately; reference bug 9.g). So a slot's keys/values always equal a fresh forward over its window, and
every inference output equals :meth:`forward_sequence` over the same window tokens.

**Heterogeneous batches.** Rows may belong to any tasks, discrete and continuous mixed. Each call sorts its
rows by (kind, task) internally (see :mod:`scalezero_agents.model.routing`) so that per-task parameters run on
contiguous slices, and returns the outputs in the caller's row order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from scalezero_adapters import TaskSpec
from torch import Tensor, nn

from scalezero_agents.model.cache import InferenceCache, Prediction, SequenceOutput
from scalezero_agents.model.config import ACTION_SIMNORM_GROUP, ModelConfig
from scalezero_agents.model.encoders import ObservationEncoder
from scalezero_agents.model.heads import ActionEmbedding, PredictionHeads
from scalezero_agents.model.routing import Route, TaskTable, inverse_order, permute
from scalezero_agents.model.transformer import Transformer


def _check_tensor(
    name: str,
    x: object,
    shape: tuple[int | None, ...],
    *,
    floating: bool | None = None,
    device: torch.device | None = None,
) -> None:
    """Raise ``ValueError`` unless ``x`` is a tensor of ``shape`` (``None`` = any size), kind and device."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if device is not None and x.device != device:
        raise ValueError(f"{name} is on {x.device}, but the model is on {device}")
    if x.dim() != len(shape) or any(want is not None and got != want for got, want in zip(x.shape, shape, strict=True)):
        pretty = ", ".join("*" if s is None else str(s) for s in shape)
        raise ValueError(f"{name} must have shape [{pretty}], got {list(x.shape)}")
    if floating is True and not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if floating is False and x.dtype != torch.int64:
        raise ValueError(f"{name} must be an int64 tensor, got {x.dtype}")


def _interleave(obs: Tensor, act: Tensor) -> Tensor:
    """``obs [n, T, D]`` and ``act [n, T or T-1, D]`` -> ``z_0, a_0, z_1, ...`` ``[n, T + T', D]``."""
    n, steps, dim = obs.shape
    if act.shape[1] == steps:
        return torch.stack((obs, act), dim=2).reshape(n, 2 * steps, dim)
    act = torch.cat((act, act.new_zeros(n, 1, dim)), dim=1)
    return torch.stack((obs, act), dim=2).reshape(n, 2 * steps, dim)[:, : 2 * steps - 1]


class _Parents(NamedTuple):
    """What a recurrent step reads from its parent slots (copies)."""

    steps: Tensor  # [n]
    keys: Tensor  # [L, n, heads, 2C, dh]
    values: Tensor  # [L, n, heads, 2C, dh]
    latents: Tensor  # [n, C, D]
    actions: Tensor  # [n, C, P]


class _Step(NamedTuple):
    """What a recurrent step adds: the action, the predicted latent and the action token's K/V."""

    actions: Tensor  # [n, P]
    latent: Tensor  # [n, 1, D]
    keys: Tensor  # [L, n, heads, 1, dh]
    values: Tensor  # [L, n, heads, 1, dh]
    child_slots: Tensor  # [n]
    route: Route


class WorldModel(nn.Module):
    """ScaleZero / UniZero world model for a list of tasks (built from their :class:`TaskSpec`).

    Attributes:
        specs: the tasks, indexed by task id.
        config: the :class:`ModelConfig`.
        action_width: P = max(1, largest continuous ``action_dim``), width of the unified action tensor.
        num_actions: A_max over discrete tasks (0 if none).
        action_dim: d_max over continuous tasks (0 if none).
    """

    def __init__(self, specs: Sequence[TaskSpec], config: ModelConfig) -> None:
        super().__init__()
        specs = tuple(specs)
        if not specs:
            raise ValueError("a WorldModel needs at least one TaskSpec")
        for i, spec in enumerate(specs):
            if not isinstance(spec, TaskSpec):
                raise ValueError(f"specs[{i}] is a {type(spec).__name__}, not a TaskSpec")
        if not isinstance(config, ModelConfig):
            raise ValueError(f"config must be a ModelConfig, got {type(config).__name__}")
        if any(not s.is_discrete for s in specs) and config.embed_dim % ACTION_SIMNORM_GROUP:
            raise ValueError(
                f"continuous action tokens end in SimNorm({ACTION_SIMNORM_GROUP}): embed_dim={config.embed_dim} "
                f"must be a multiple of {ACTION_SIMNORM_GROUP}"
            )
        self.specs = specs
        self.config = config
        self.table = TaskTable(specs)
        self.num_actions = max((s.action_size for s in specs if s.is_discrete), default=0)
        self.action_dim = max((s.action_size for s in specs if not s.is_discrete), default=0)
        self.action_width = max(1, self.action_dim)
        self.encoder = ObservationEncoder(specs, config)
        self.action_embed = ActionEmbedding(specs, config, self.table)
        self.task_embed = nn.Embedding(len(specs), config.embed_dim) if config.task_embedding else None
        if self.task_embed is not None:
            nn.init.normal_(self.task_embed.weight, std=0.02)
        self.transformer = Transformer(config)
        self.heads = PredictionHeads(specs, config, self.table)

    # ------------------------------------------------------------------ encoding
    def encode(self, task_id: int, obs: Tensor) -> Tensor:
        """Latents ``[n, D]`` of one task's observations: ``uint8 [n, C, H, W]`` images, ``float [n, d_k]``
        vectors or ``int64 [n, L]`` text tokens (see :meth:`tokenize_text`).

        Raises:
            ValueError: For an unknown task id or a badly shaped/typed observation.
        """
        return self.encoder(task_id, obs)

    def tokenize_text(self, texts: list[str]) -> np.ndarray:
        """Token ids ``int64 [n, text_max_tokens]`` (0 = padding) for :meth:`encode` of text tasks."""
        return self.encoder.tokenize_text(texts)

    # ------------------------------------------------------------------ shared pieces
    @property
    def device(self) -> torch.device:
        """Device of the model's parameters (every input tensor must be on it)."""
        return self.transformer.pos.weight.device

    def _route(self, task_ids: Tensor) -> tuple[Route, Tensor | None, Tensor | None]:
        """Validate ``task_ids`` and return ``(route, order, inverse)``: the routing of the batch sorted by
        (kind, task), and the permutation that sorts it and its inverse (``None`` when already sorted)."""
        _check_tensor("task_ids", task_ids, (None,), floating=False, device=self.device)
        ids = self.table.check(task_ids)
        order = self.table.order(ids)
        if order is None:
            return self.table.route(ids, task_ids), None, None
        perm, inverse = inverse_order(order, task_ids.device)
        return self.table.route([ids[i] for i in order], task_ids.index_select(0, perm)), perm, inverse

    @property
    def max_steps(self) -> int:
        """Longest sequence :meth:`forward_sequence` accepts: ``max(context_steps, train_steps)``."""
        return max(self.config.context_steps, self.config.train_steps)

    def _obs_tokens(self, latents: Tensor, route: Route) -> Tensor:
        if self.task_embed is None:
            return latents
        if len(route.segments) == 1:
            return latents + self.task_embed.weight[route.segments[0].task]
        return latents + self.task_embed(route.ids).unsqueeze(1)

    def _window_tokens(self, latents: Tensor, actions: Tensor, route: Route) -> Tensor:
        """Tokens of windows with latents ``[n, T, D]`` and ``T`` or ``T - 1`` actions ``[n, *, P]``."""
        return _interleave(self._obs_tokens(latents, route), self.action_embed(actions, route))

    def _obs_heads(self, h: Tensor, route: Route) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor | None]:
        """Value logits, policy logits, mu and log_std from observation-token states ``[n, t, D]``."""
        mu, log_std = self.heads.continuous_policy(h, route)
        return self.heads.value(h, route.segments), self.heads.discrete_policy(h, route), mu, log_std

    def _action_heads(self, h: Tensor, route: Route) -> tuple[Tensor, Tensor]:
        """Reward logits and the (normalised) next latent from action-token states ``[n, t, D]``."""
        return self.heads.reward(h, route.segments), self.encoder.norm(self.heads.latent(h, route.segments))

    def _check_actions(self, name: str, actions: Tensor, shape: tuple[int | None, ...]) -> None:
        _check_tensor(name, actions, (*shape, self.action_width), floating=True, device=self.device)

    # ------------------------------------------------------------------ training
    def forward_sequence(self, latents: Tensor, actions: Tensor, task_ids: Tensor) -> SequenceOutput:
        """Teacher-forced forward over ``z_0, a_0, ..., z_{T-1}, a_{T-1}`` (positions ``0..2T-1``).

        Args:
            latents: ``[n, T, D]`` with ``1 <= T <= max(context_steps, train_steps)``.
            actions: ``[n, T, P]`` unified action tensor.
            task_ids: ``[n]`` int64.

        Dropout applies when the module is in training mode.
        """
        route, order, inverse = self._route(task_ids)
        n, dim = task_ids.shape[0], self.config.embed_dim
        _check_tensor("latents", latents, (n, None, dim), floating=True, device=self.device)
        steps = latents.shape[1]
        if not 1 <= steps <= self.max_steps:
            raise ValueError(f"latents must have 1..{self.max_steps} steps, got {steps}")
        self._check_actions("actions", actions, (n, steps))
        latents, actions = permute(latents, order), permute(actions, order)
        out = self.transformer(self._window_tokens(latents, actions, route), dropout=self.training, stats=True)
        h = out.hidden.view(n, steps, 2, dim)
        value, logits, mu, log_std = self._obs_heads(h[:, :, 0], route)
        reward, next_latent = self._action_heads(h[:, :, 1], route)
        aux = out.aux_loss if out.aux_loss is not None else out.hidden.new_zeros(())
        rows = (permute(x, inverse) for x in (value, logits, mu, log_std, reward, next_latent))
        return SequenceOutput(*rows, aux, out.expert_load, out.router_prob)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ inference
    def new_cache(self, num_slots: int, device: torch.device | str | None = None) -> InferenceCache:
        """An empty :class:`InferenceCache` with ``num_slots`` slots, allocated on the model's device.

        ``device``, if given, must name the model's device (the cache is only usable there).
        """
        if isinstance(num_slots, bool) or not isinstance(num_slots, int) or num_slots < 1:
            raise ValueError(f"num_slots must be a positive int, got {num_slots!r}")
        weight = self.transformer.pos.weight
        if device is not None:
            wanted = torch.device(device)
            if wanted.type != weight.device.type or wanted.index not in (None, weight.device.index):
                raise ValueError(f"the cache must live on the model's device {weight.device}, not {wanted}")
        device = weight.device
        cfg = self.config
        c = cfg.context_steps
        kv_shape = (cfg.num_layers, num_slots, cfg.num_heads, 2 * c, cfg.head_dim)
        return InferenceCache(
            keys=torch.zeros(kv_shape, dtype=weight.dtype, device=device),
            values=torch.zeros(kv_shape, dtype=weight.dtype, device=device),
            latents=torch.zeros(num_slots, c, cfg.embed_dim, dtype=weight.dtype, device=device),
            actions=torch.zeros(num_slots, c, self.action_width, dtype=weight.dtype, device=device),
            steps=torch.zeros(num_slots, dtype=torch.long, device=device),
            task_ids=torch.full((num_slots,), -1, dtype=torch.long, device=device),
        )

    def _check_cache(self, cache: InferenceCache) -> None:
        if not isinstance(cache, InferenceCache):
            raise ValueError(f"cache must be an InferenceCache, got {type(cache).__name__}")
        if cache.device != self.device:
            raise ValueError(f"cache is on {cache.device}, but the model is on {self.device}")
        cfg = self.config
        want = (cfg.num_layers, cache.num_slots, cfg.num_heads, 2 * cfg.context_steps, cfg.head_dim)
        if tuple(cache.keys.shape) != want or tuple(cache.actions.shape[1:]) != (cfg.context_steps, self.action_width):
            raise ValueError("cache was not made by this model's new_cache (shapes differ)")

    def _check_slots(self, name: str, slots: Tensor, n: int, cache: InferenceCache) -> None:
        _check_tensor(name, slots, (n,), floating=False, device=cache.device)
        low, high = (int(v) for v in torch.aminmax(slots))
        if low < 0 or high >= cache.num_slots:
            raise ValueError(f"{name} must be in 0..{cache.num_slots - 1}, got {slots.tolist()}")

    @torch.no_grad()
    def initial_inference(
        self,
        cache: InferenceCache,
        slots: Tensor,
        latents: Tensor,
        actions: Tensor,
        steps: Tensor,
        task_ids: Tensor,
    ) -> Prediction:
        """Start search roots from their real context and store it in ``cache``.

        Row i's context is ``latents[i, :steps[i]]`` with ``actions[i, :steps[i] - 1]`` between them
        (positions from 0); the rest of each row is padding and ignored.

        Args:
            cache: from :meth:`new_cache`.
            slots: ``[n]`` int64 distinct slots to write.
            latents: ``[n, T, D]``, ``1 <= T <= context_steps``, right-padded.
            actions: ``[n, T - 1, P]`` or ``[n, T, P]`` (the last column is then ignored).
            steps: ``[n]`` int64, ``1 <= steps <= T``.
            task_ids: ``[n]`` int64.

        Returns:
            :class:`Prediction` with value/policy at each row's last latent (reward, next latent ``None``).
            Runs without gradient and without dropout.
        """
        self._check_cache(cache)
        route, order, inverse = self._route(task_ids)
        n, cfg = task_ids.shape[0], self.config
        _check_tensor("latents", latents, (n, None, cfg.embed_dim), floating=True, device=self.device)
        length = latents.shape[1]
        if not 1 <= length <= cfg.context_steps:
            raise ValueError(f"latents must have 1..context_steps={cfg.context_steps} steps, got {length}")
        if isinstance(actions, Tensor) and actions.dim() == 3 and actions.shape[1] == length:
            actions = actions[:, : length - 1]
        self._check_actions("actions", actions, (n, length - 1))
        _check_tensor("steps", steps, (n,), floating=False, device=cache.device)
        if bool(((steps < 1) | (steps > length)).any()):
            raise ValueError(f"steps must be in 1..{length} (the latents' length), got {steps.tolist()}")
        self._check_slots("slots", slots, n, cache)
        if slots.unique().numel() != n:
            raise ValueError("slots must be distinct")
        slots, latents, actions, steps = (permute(x, order) for x in (slots, latents, actions, steps))
        if length > 1:  # zero the padding actions so that they are valid (and ignored) indices
            actions = actions * (torch.arange(length - 1, device=steps.device) < (steps - 1)[:, None]).unsqueeze(-1)
        out = self.transformer(self._window_tokens(latents, actions, route))
        last = out.hidden[torch.arange(n, device=steps.device), 2 * (steps - 1)].unsqueeze(1)
        value, logits, mu, log_std = self._obs_heads(last, route)
        tokens = 2 * length - 1
        cache.keys[:, slots, :, :tokens] = out.keys
        cache.values[:, slots, :, :tokens] = out.values
        cache.latents[slots, :length] = latents.to(cache.latents.dtype)
        cache.actions[slots, : length - 1] = actions.to(cache.actions.dtype)
        cache.steps[slots] = steps
        cache.task_ids[slots] = route.ids
        outputs = (permute(None if x is None else x[:, 0], inverse) for x in (value, logits, mu, log_std))
        return Prediction(*outputs, None, None)

    @torch.no_grad()
    def recurrent_inference(
        self, cache: InferenceCache, parent_slots: Tensor, child_slots: Tensor, actions: Tensor, task_ids: Tensor
    ) -> Prediction:
        """One search expansion per row: ``action`` after the parent's window, then the predicted latent.

        Feeds the action token (-> reward logits, next latent), then the next latent as an observation token
        (-> value, policy), and writes the child's window (parent window + action + next latent, oldest step
        dropped beyond C latents, with its keys/values recomputed) into ``child_slots``. Parent slots are only
        read (before any write), so a child slot may be another row's parent slot.

        Args:
            cache: from :meth:`new_cache`, parents filled by earlier calls.
            parent_slots: ``[n]`` int64 filled slots.
            child_slots: ``[n]`` int64 distinct slots to write (not checked for distinctness: duplicates leave
                the slot's content unspecified).
            actions: ``[n, P]`` unified action tensor.
            task_ids: ``[n]`` int64; must match the parents' tasks.

        Runs without gradient and without dropout.
        """
        self._check_cache(cache)
        route, order, inverse = self._route(task_ids)
        n = task_ids.shape[0]
        self._check_actions("actions", actions, (n,))
        _check_tensor("parent_slots", parent_slots, (n,), floating=False, device=cache.device)
        _check_tensor("child_slots", child_slots, (n,), floating=False, device=cache.device)
        low, high = (int(v) for v in torch.aminmax(child_slots))
        if low < 0 or high >= cache.num_slots:
            raise ValueError(f"child_slots must be in 0..{cache.num_slots - 1}, got {child_slots.tolist()}")
        try:
            parent_tasks = cache.task_ids.index_select(0, parent_slots)
        except IndexError:
            raise ValueError(f"parent_slots must be in 0..{cache.num_slots - 1}, got {parent_slots.tolist()}") from None
        if not torch.equal(parent_tasks, task_ids):
            raise ValueError(
                f"task_ids {task_ids.tolist()} do not match the parent slots' tasks {parent_tasks.tolist()} "
                "(-1 = empty slot)"
            )
        parent_slots, child_slots, actions = (permute(x, order) for x in (parent_slots, child_slots, actions))
        # Read everything of the parents before writing any child (a child slot may be a parent slot).
        parent = _Parents(
            steps=cache.steps.index_select(0, parent_slots),
            keys=cache.keys.index_select(1, parent_slots),
            values=cache.values.index_select(1, parent_slots),
            latents=cache.latents.index_select(0, parent_slots),
            actions=cache.actions.index_select(0, parent_slots),
        )
        pos_a = 2 * parent.steps - 1
        tokens = self.action_embed(actions.unsqueeze(1), route)
        out_a = self.transformer(tokens, pos_a[:, None], (parent.keys, parent.values), pos_a)
        reward, latent = self._action_heads(out_a.hidden, route)
        step = _Step(actions.to(parent.actions.dtype), latent, out_a.keys, out_a.values, child_slots, route)
        c = self.config.context_steps
        full = parent.steps >= c
        n_full = int(full.sum())
        parts: list[tuple[Tensor | None, Tensor]] = []
        if n_full < n:  # the window grows by one step: two more cached tokens
            rows = None if n_full == 0 else (~full).nonzero().squeeze(1)
            parts.append((rows, self._grow(cache, *self._select(parent, step, rows))))
        if n_full:  # the window slides: recompute it from its tokens at positions 0..
            rows = None if n_full == n else full.nonzero().squeeze(1)
            parts.append((rows, self._slide(cache, *self._select(parent, step, rows))))
        if len(parts) == 1:
            h_obs = parts[0][1]
        else:
            h_obs = latent.new_empty(n, 1, self.config.embed_dim)
            for rows, part in parts:
                h_obs = h_obs.index_copy(0, rows, part)  # type: ignore[arg-type]
        value, logits, mu, log_std = self._obs_heads(h_obs, route)
        cache.steps.index_copy_(0, child_slots, torch.clamp(parent.steps + 1, max=c))
        cache.task_ids.index_copy_(0, child_slots, route.ids)
        outputs = (None if x is None else x[:, 0] for x in (value, logits, mu, log_std, reward, latent))
        return Prediction(*(permute(x, inverse) for x in outputs))

    def _select(self, parent: _Parents, step: _Step, rows: Tensor | None) -> tuple[_Parents, _Step]:
        """The rows ``rows`` (``None`` = all) of a recurrent call's parents and step."""
        if rows is None:
            return parent, step
        return (
            _Parents(
                steps=parent.steps.index_select(0, rows),
                keys=parent.keys.index_select(1, rows),
                values=parent.values.index_select(1, rows),
                latents=parent.latents.index_select(0, rows),
                actions=parent.actions.index_select(0, rows),
            ),
            _Step(
                actions=step.actions.index_select(0, rows),
                latent=step.latent.index_select(0, rows),
                keys=step.keys.index_select(1, rows),
                values=step.values.index_select(1, rows),
                child_slots=step.child_slots.index_select(0, rows),
                route=self.table.subset(step.route, rows),
            ),
        )

    def _grow(self, cache: InferenceCache, parent: _Parents, step: _Step) -> Tensor:
        """Rows whose window has room: append the action's and the new latent's K/V to the parent's, write
        the child's window, and return the new latent's hidden state ``[k, 1, D]``."""
        keys, values = parent.keys, parent.values  # fresh copies (index_select), safe to update in place
        layers, rows, heads, _, head_dim = keys.shape
        pos_a = 2 * parent.steps - 1
        index = pos_a.view(1, rows, 1, 1, 1).expand(layers, rows, heads, 1, head_dim)
        keys.scatter_(3, index, step.keys)
        values.scatter_(3, index, step.values)
        pos_z = pos_a + 1
        out = self.transformer(self._obs_tokens(step.latent, step.route), pos_z[:, None], (keys, values), pos_z)
        keys.scatter_(3, index + 1, out.keys)
        values.scatter_(3, index + 1, out.values)
        cache.keys.index_copy_(1, step.child_slots, keys)
        cache.values.index_copy_(1, step.child_slots, values)
        at = parent.steps.view(rows, 1, 1)
        latents = parent.latents.scatter(1, at.expand(-1, 1, step.latent.shape[2]), step.latent)
        actions = parent.actions.scatter(1, (at - 1).expand(-1, 1, step.actions.shape[1]), step.actions[:, None])
        cache.latents.index_copy_(0, step.child_slots, latents)
        cache.actions.index_copy_(0, step.child_slots, actions)
        return out.hidden

    def _slide(self, cache: InferenceCache, parent: _Parents, step: _Step) -> Tensor:
        """Rows whose window is full: drop its oldest step, run a fresh forward over the C latents and C - 1
        actions of the new window at positions 0.., write it and its K/V to the child slots, and return the
        last latent's hidden state ``[k, 1, D]``."""
        c = self.config.context_steps
        latents = torch.cat((parent.latents[:, 1:], step.latent), dim=1)
        actions = torch.cat((parent.actions[:, 1 : c - 1], step.actions[:, None]), dim=1)[:, : c - 1]
        out = self.transformer(self._window_tokens(latents, actions, step.route), last_only=True)
        tokens = out.keys.shape[3]
        cache.keys[:, step.child_slots, :, :tokens] = out.keys
        cache.values[:, step.child_slots, :, :tokens] = out.values
        cache.latents.index_copy_(0, step.child_slots, latents)
        cache.actions.narrow(1, 0, c - 1).index_copy_(0, step.child_slots, actions)
        return out.hidden
