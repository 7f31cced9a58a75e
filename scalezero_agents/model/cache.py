"""Inference state passed explicitly to the world model, and its output records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor


class Prediction(NamedTuple):
    """Outputs of one inference call for ``n`` rows (``None`` where not applicable)."""

    value_logits: Tensor | None
    """``[n, 2S+1]`` at the (last) observation token."""
    policy_logits: Tensor | None
    """``[n, A_max]``; entries beyond a task's ``A_k`` (and rows of continuous tasks) are ``-1e9``.
    ``None`` if the model has no discrete task."""
    mu: Tensor | None
    """``[n, d_max]`` pre-tanh Gaussian mean; padded dimensions and discrete rows are 0. ``None`` if the model
    has no continuous task."""
    log_std: Tensor | None
    """``[n, d_max]`` clamped log standard deviation, 0 where ``mu`` is padded."""
    reward_logits: Tensor | None
    """``[n, 2S+1]`` at the action token (recurrent inference only)."""
    next_latent: Tensor | None
    """``[n, D]`` predicted latent after the action, in the encoder's output space (recurrent only)."""


class SequenceOutput(NamedTuple):
    """Outputs of :meth:`WorldModel.forward_sequence` over ``T`` steps."""

    value_logits: Tensor
    """``[n, T, 2S+1]`` at the observation tokens."""
    policy_logits: Tensor | None
    """``[n, T, A_max]`` at the observation tokens (padding ``-1e9``), or ``None``."""
    mu: Tensor | None
    """``[n, T, d_max]`` at the observation tokens, or ``None``."""
    log_std: Tensor | None
    """``[n, T, d_max]`` at the observation tokens, or ``None``."""
    reward_logits: Tensor
    """``[n, T, 2S+1]`` at the action tokens (reward of taking ``a_t`` after ``z_t``)."""
    next_latent: Tensor
    """``[n, T, D]`` at the action tokens: the prediction of ``z_{t+1}``."""
    aux_loss: Tensor
    """Scalar MoE load-balancing loss summed over layers (0 for a dense FFN or the faithful router)."""
    expert_load: Tensor | None
    """``[L, E]`` fraction of token assignments per expert in this forward, or ``None`` (dense FFN)."""
    router_prob: Tensor | None = None
    """``[L, E]`` mean router probability per expert (differentiable; trained router), or ``None``."""


@dataclass(frozen=True)
class InferenceCache:
    """Per-slot inference windows for search: the window tokens and their keys/values.

    Slot ``s`` holds a window of ``steps[s]`` latents (at most C) with the ``steps[s] - 1`` actions between
    them, i.e. ``2 * steps[s] - 1`` tokens at positions ``0..``; ``keys``/``values`` always equal a fresh full
    forward over exactly those tokens. Entries beyond a slot's length are unspecified. ``steps == 0`` marks an
    empty slot. Create it with :meth:`WorldModel.new_cache`; the tensors are updated in place by the model.
    """

    keys: Tensor
    """``[L, S, heads, 2C, dh]``."""
    values: Tensor
    """``[L, S, heads, 2C, dh]``."""
    latents: Tensor
    """``[S, C, D]`` the window's latents (raw encoder/predicted latents, without task embedding)."""
    actions: Tensor
    """``[S, C, P]`` the window's actions in the unified format (entry j follows latent j)."""
    steps: Tensor
    """``[S]`` int64 number of latents in each window (0 = empty slot)."""
    task_ids: Tensor
    """``[S]`` int64 task of each slot (-1 = empty slot)."""

    @property
    def num_slots(self) -> int:
        """S."""
        return self.steps.shape[0]

    @property
    def device(self) -> torch.device:
        """Device of every tensor."""
        return self.steps.device

    def clear(self, slots: Tensor | None = None) -> None:
        """Mark ``slots`` (a LongTensor; default every slot) as empty."""
        if slots is None:
            self.steps.zero_()
            self.task_ids.fill_(-1)
        else:
            self.steps.index_fill_(0, slots, 0)
            self.task_ids.index_fill_(0, slots, -1)

    def copy_slots(self, src: Tensor, dst: Tensor) -> None:
        """Copy whole windows from slots ``src [m]`` to slots ``dst [m]`` (one indexed copy per tensor)."""
        self.keys.index_copy_(1, dst, self.keys.index_select(1, src))
        self.values.index_copy_(1, dst, self.values.index_select(1, src))
        for tensor in (self.latents, self.actions, self.steps, self.task_ids):
            tensor.index_copy_(0, dst, tensor.index_select(0, src))
