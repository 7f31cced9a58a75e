"""The learner step: targets from the EMA target model, UniZero losses per task, one AdamW step.

One update takes one batch of windows per task, runs the online model over all of them in a single
teacher-forced pass (tasks concatenated along the batch), computes each task's losses with its own
weights (discrete or continuous set), sums the tasks without weights, clips the global gradient norm
and steps AdamW; then the target model follows by EMA. Bootstrap values come from the target model
run teacher-forced over each window's bootstrap observations (algorithm.md 1.8).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from scalezero_agents.learning.losses import (
    CONTINUOUS_WEIGHTS,
    DISCRETE_WEIGHTS,
    LossWeights,
    continuous_policy_loss,
    discrete_policy_loss,
    latent_loss,
    masked_mean,
    soft_cross_entropy,
)
from scalezero_agents.learning.replay import WindowBatch
from scalezero_agents.model.support import decode, two_hot
from scalezero_agents.model.world_model import WorldModel


@dataclass(frozen=True, kw_only=True)
class LearnerConfig:
    """Optimisation settings (defaults follow the released ScaleZero configs, algorithm.md 1.7)."""

    batch_size: int = 64
    """Windows per task per update."""
    learning_rate: float = 1e-4
    adam_betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 1e-4
    """AdamW weight decay, applied to tensors with >= 2 dimensions only."""
    grad_clip: float = 5.0
    """Global gradient-norm clip."""
    target_update: float = 0.05
    """EMA rate of the target model: target <- (1 - rate) * target + rate * online, every update."""
    lr_schedule: str = "constant"
    """``"constant"`` or ``"cosine"`` (to 0 over ``lr_decay_updates``)."""
    lr_decay_updates: int = 100_000
    discrete_weights: LossWeights = field(default_factory=lambda: DISCRETE_WEIGHTS)
    continuous_weights: LossWeights = field(default_factory=lambda: CONTINUOUS_WEIGHTS)
    balance_loss_weight: float = 0.01
    """Weight of the MoE load-balancing loss (trained router only)."""
    label_smoothing: float = 0.0
    """Mixes uniform mass into the two-hot value/reward targets."""

    def __post_init__(self) -> None:
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")
        for name, lo, hi in (("learning_rate", 0.0, 1.0), ("weight_decay", 0.0, 1.0), ("target_update", 0.0, 1.0),
                             ("balance_loss_weight", 0.0, math.inf), ("label_smoothing", 0.0, 1.0)):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not lo <= value <= hi:
                raise ValueError(f"{name} must be in [{lo}, {hi}], got {value!r}")
        if not (isinstance(self.grad_clip, int | float) and self.grad_clip > 0):
            raise ValueError(f"grad_clip must be > 0, got {self.grad_clip!r}")
        if len(self.adam_betas) != 2 or not all(0.0 <= b < 1.0 for b in self.adam_betas):
            raise ValueError(f"adam_betas must be two numbers in [0, 1), got {self.adam_betas!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if not isinstance(self.lr_decay_updates, int) or self.lr_decay_updates < 1:
            raise ValueError(f"lr_decay_updates must be a positive int, got {self.lr_decay_updates!r}")
        for name in ("discrete_weights", "continuous_weights"):
            if not isinstance(getattr(self, name), LossWeights):
                raise ValueError(f"{name} must be a LossWeights")


def _to_torch(x: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).to(device)


def _encode(model: WorldModel, task_id: int, obs: torch.Tensor) -> torch.Tensor:
    """Encode ``[b, T, *obs]`` into ``[b, T, D]``."""
    b, t = obs.shape[:2]
    return model.encode(task_id, obs.reshape(b * t, *obs.shape[2:])).reshape(b, t, -1)


def param_groups(params: Sequence[torch.nn.Parameter], weight_decay: float) -> list[dict[str, object]]:
    """Two AdamW groups: rank >= 2 tensors with ``weight_decay``, the rest (biases, norms, scales) without."""
    return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]


def make_optimizer(model: torch.nn.Module, config: LearnerConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on parameters of rank >= 2 only (not on biases, norms or scales)."""
    groups = param_groups(list(model.parameters()), config.weight_decay)
    return torch.optim.AdamW(groups, lr=config.learning_rate, betas=config.adam_betas)


class GradientSync(Protocol):
    """Combines gradients across processes (set as :attr:`Learner.grad_sync` by distributed training).

    Every process calls both methods once per update, in this order, with the same parameter list.
    """

    def shared_weight(self, local_rows: int) -> float:
        """Weight of this process's share of terms computed over the whole batch (the MoE balance loss):
        ``local_rows / rows over all processes``."""
        ...

    def row_average(self, local: torch.Tensor, local_rows: int) -> torch.Tensor:
        """``sum_p rows_p * local_p / sum_p rows_p`` over processes (the global batch's MoE expert load).
        Called after :meth:`shared_weight` in the same update, by every process (``local`` is zeros on a
        process without batches)."""
        ...

    def reduce(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Replace each local gradient by the **sum** over processes (``None`` where no process has one)."""
        ...


class Learner:
    """Owns the online model's optimiser and the EMA target model.

    Args:
        model: the online world model (trained in place).
        config: optimisation settings.

    Attributes:
        grad_sync: ``None`` (one process), or a :class:`GradientSync` that sums the gradients over processes
            after the backward pass and before clipping (distributed training). With it, :meth:`update` also
            accepts an empty batch list: the process then contributes no gradient but takes the same step.
    """

    def __init__(self, model: WorldModel, config: LearnerConfig) -> None:
        self.model, self.config = model, config
        self.target = copy.deepcopy(model)
        self.target.requires_grad_(False)
        self.target.eval()
        self.optimizer = make_optimizer(model, config)
        self.updates = 0
        self.scale = model.config.support_scale
        self.grad_sync: GradientSync | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def add_params(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Register parameters the online model gained after the optimiser was made (DPS adapters).

        They join as new param groups (weight decay on rank >= 2 tensors only, like :func:`make_optimizer`) at
        the current learning rate; every update sets the schedule's rate on all groups. Frozen parameters may
        be registered: AdamW skips a parameter while its gradient is ``None``. A loader must re-add the same
        parameters in the same order before :meth:`load_state_dict`.
        """
        known = {id(p) for group in self.optimizer.param_groups for p in group["params"]}
        owned = {id(p) for p in self.model.parameters()}
        for p in params:
            if id(p) in known:
                raise ValueError(f"parameter of shape {tuple(p.shape)} is already in the optimiser")
            if id(p) not in owned:
                raise ValueError(f"parameter of shape {tuple(p.shape)} is not a parameter of the online model")
        names = {n for n, _ in self.model.named_parameters()}
        if names != {n for n, _ in self.target.named_parameters()}:  # the EMA pairs parameters by name
            raise ValueError("the target model's parameters differ from the online model's; add the same "
                             "modules (adapters) to both before registering them")
        lr = self._lr()
        for group in param_groups(list(params), self.config.weight_decay):
            if group["params"]:
                self.optimizer.add_param_group({**group, "lr": lr})

    def _lr(self) -> float:
        base = self.config.learning_rate
        if self.config.lr_schedule == "cosine":
            frac = min(self.updates / self.config.lr_decay_updates, 1.0)
            return 0.5 * base * (1.0 + math.cos(math.pi * frac))
        return base

    @torch.no_grad()
    def _value_targets(self, batches: Sequence[WindowBatch], dev: torch.device) -> list[torch.Tensor]:
        """z = reward_sum + boot_on * boot_discount * V_target(o_b), per task ``[b, H]``."""
        latents, actions, task_ids = [], [], []
        for wb in batches:
            latents.append(_encode(self.target, wb.task_id, _to_torch(wb.boot_obs, dev)))
            actions.append(_to_torch(wb.boot_actions, dev))
            task_ids.append(torch.full((len(wb.boot_obs),), wb.task_id, dtype=torch.long, device=dev))
        out = self.target.forward_sequence(torch.cat(latents), torch.cat(actions), torch.cat(task_ids))
        values = decode(out.value_logits, self.scale)
        targets, row = [], 0
        for wb in batches:
            b = len(wb.boot_obs)
            v = values[row:row + b]
            row += b
            plan = wb.plan
            boot = torch.gather(v, 1, _to_torch(plan.boot_pos, dev))
            on = _to_torch(plan.boot_on, dev) * _to_torch(plan.boot_discount, dev)
            z = _to_torch(plan.reward_sum, dev) + on * boot
            targets.append(z)
        return targets

    def update(self, batches: Sequence[WindowBatch]) -> tuple[dict[str, float], list[np.ndarray]]:
        """One gradient step on one batch per task. Returns (metrics, per-batch priorities |V - z| at step 0).

        The objective is the unweighted sum of the tasks' losses plus the MoE balance loss of the whole batch.
        With :attr:`grad_sync` set, the gradients are summed over processes before clipping, so the step is the
        one a single process would take on all processes' batches. The balance loss
        ``E * sum_e f_e * P_e`` is exact too: the expert loads ``f`` are averaged over processes (weighted by
        rows), and each process contributes ``E * sum_e f_e * P_e^local`` times its share of the rows, which
        sums over processes to the global batch's loss and gradient. ``metrics["aux_loss"]`` is this process's
        contribution (the whole loss in one process).
        """
        if not batches and self.grad_sync is None:
            raise ValueError("update needs at least one batch")
        model, cfg = self.model, self.config
        model.train()
        rows = sum(len(wb.obs) for wb in batches)
        share = 1.0 if self.grad_sync is None else self.grad_sync.shared_weight(rows)
        total: torch.Tensor | None = None
        metrics: dict[str, float] = {}
        priorities: list[np.ndarray] = []
        load = prob = None
        if batches:
            total, load, prob, metrics, priorities = self._loss(batches)
        aux = self._balance_loss(load, prob, rows, share)
        aux_loss = 0.0
        if aux is not None:
            aux_loss = float(aux.detach())
            weighted = aux * cfg.balance_loss_weight  # * 0.0 still connects the router (a zero, not a None, grad)
            total = weighted if total is None else total + weighted
        lr = self._lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        if total is not None:
            total.backward()
        if self.grad_sync is not None:
            self.grad_sync.reduce([p for p in model.parameters() if p.requires_grad])
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        self._ema()
        self.updates += 1
        metrics.update(loss=0.0 if total is None else float(total.detach()), grad_norm=float(grad_norm), lr=lr,
                       aux_loss=aux_loss)
        return metrics, priorities

    def _balance_loss(self, load: torch.Tensor | None, prob: torch.Tensor | None, rows: int, share: float
                      ) -> torch.Tensor | None:
        """This process's term of the MoE balance loss (``None`` without a trained router or without batches).

        ``load``/``prob``: ``[L, E]`` expert load and mean router probability of the local batch. With
        :attr:`grad_sync` every process joins the load average, batches or not.
        """
        mcfg = self.model.config
        if mcfg.ffn != "moe" or mcfg.router != "trained":
            return None
        if self.grad_sync is not None:
            local = (load.detach() if load is not None else
                     torch.zeros(mcfg.num_layers, mcfg.num_experts, device=self.device))
            load = self.grad_sync.row_average(local, rows)
        if prob is None or load is None:
            return None
        return mcfg.num_experts * (load * prob).sum() * share

    def _loss(self, batches: Sequence[WindowBatch]
              ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, dict[str, float], list[np.ndarray]]:
        """(sum of the task losses, ``[L, E]`` expert load, ``[L, E]`` mean router probability, per-task metrics,
        priorities) of one batch per task."""
        model, dev, cfg = self.model, self.device, self.config
        z_targets = self._value_targets(batches, dev)
        latents, target_latents, actions, task_ids = [], [], [], []
        for wb in batches:
            obs = _to_torch(wb.obs, dev)
            latents.append(_encode(model, wb.task_id, obs[:, :-1]))
            with torch.no_grad():
                target_latents.append(_encode(self.target, wb.task_id, obs[:, 1:]))
            actions.append(_to_torch(wb.actions, dev))
            task_ids.append(torch.full((len(wb.obs),), wb.task_id, dtype=torch.long, device=dev))
        out = model.forward_sequence(torch.cat(latents), torch.cat(actions), torch.cat(task_ids))
        mcfg = model.config
        total = out.value_logits.new_zeros(())
        metrics: dict[str, float] = {}
        priorities: list[np.ndarray] = []
        row = 0
        for wb, z, target_latent in zip(batches, z_targets, target_latents, strict=True):
            b = len(wb.obs)
            rows = slice(row, row + b)
            row += b
            spec = model.specs[wb.task_id]
            weights = cfg.discrete_weights if spec.is_discrete else cfg.continuous_weights
            mask = _to_torch(wb.mask, dev)
            isw = _to_torch(wb.weights, dev)
            smooth = cfg.label_smoothing
            r_target = two_hot(_to_torch(wb.rewards, dev), self.scale)
            v_target = two_hot(z, self.scale)
            if smooth:
                r_target = (1 - smooth) * r_target + smooth / r_target.shape[-1]
                v_target = (1 - smooth) * v_target + smooth / v_target.shape[-1]
            l_latent = masked_mean(latent_loss(out.next_latent[rows], target_latent, mcfg.latent_norm,
                                               mcfg.simnorm_group), mask, isw)
            l_reward = masked_mean(soft_cross_entropy(out.reward_logits[rows], r_target), mask, isw)
            l_value = masked_mean(soft_cross_entropy(out.value_logits[rows], v_target), mask, isw)
            policy = _to_torch(wb.policy, dev)
            if spec.is_discrete:
                logits = out.policy_logits[rows][..., : spec.num_actions]
                legal = None if wb.legal is None else _to_torch(wb.legal, dev)
                per_step, entropy = discrete_policy_loss(logits, policy, legal, weights.entropy)
            else:
                d = spec.action_dim
                per_step, entropy = continuous_policy_loss(
                    out.mu[rows][..., :d], out.log_std[rows][..., :d],
                    _to_torch(wb.sampled_actions, dev), policy, weights.entropy)
            l_policy = masked_mean(per_step, mask, isw)
            task_loss = (weights.latent * l_latent + weights.reward * l_reward + weights.value * l_value
                         + weights.policy * l_policy)
            total = total + task_loss
            with torch.no_grad():
                v0 = decode(out.value_logits[rows][:, 0], self.scale)
                priorities.append((v0 - z[:, 0]).abs().cpu().numpy())
                name = spec.name
                metrics[f"{name}/loss"] = float(task_loss)
                metrics[f"{name}/latent"] = float(l_latent)
                metrics[f"{name}/reward"] = float(l_reward)
                metrics[f"{name}/value"] = float(l_value)
                metrics[f"{name}/policy"] = float(l_policy)
                metrics[f"{name}/entropy"] = float(masked_mean(entropy, mask, torch.ones_like(isw)))
                metrics[f"{name}/target_value"] = float(masked_mean(z, mask, torch.ones_like(isw)))
        if not torch.isfinite(total):
            raise FloatingPointError(f"non-finite loss at update {self.updates}: {metrics}")
        return total, out.expert_load, out.router_prob, metrics, priorities

    @torch.no_grad()
    def _ema(self) -> None:
        rate = self.config.target_update
        online = dict(self.model.named_parameters())
        for name, p in self.target.named_parameters():
            p.lerp_(online[name].detach(), rate)
        buffers = dict(self.model.named_buffers())
        for name, b in self.target.named_buffers():
            b.copy_(buffers[name])

    def state_dict(self) -> dict[str, object]:
        return {"target": self.target.state_dict(), "optimizer": self.optimizer.state_dict(),
                "updates": self.updates}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.target.load_state_dict(state["target"])  # type: ignore[arg-type]
        self.optimizer.load_state_dict(state["optimizer"])  # type: ignore[arg-type]
        self.updates = int(state["updates"])  # type: ignore[arg-type]
