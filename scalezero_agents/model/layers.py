"""Small building blocks shared by the model files: SimNorm, the latent norm factory, initialisers."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from scalezero_agents.model.config import ModelConfig


class SimNorm(nn.Module):
    """Simplicial normalisation: split the last dimension into groups and softmax within each group."""

    def __init__(self, group: int) -> None:
        super().__init__()
        if group < 1:
            raise ValueError(f"SimNorm group must be >= 1, got {group}")
        self.group = group

    def forward(self, x: Tensor) -> Tensor:
        """``x [..., D]`` (D divisible by ``group``) -> same shape, each group summing to 1."""
        shape = x.shape
        if shape[-1] % self.group:
            raise ValueError(f"SimNorm: last dimension {shape[-1]} is not divisible by group {self.group}")
        return torch.softmax(x.reshape(*shape[:-1], shape[-1] // self.group, self.group), dim=-1).reshape(shape)

    def extra_repr(self) -> str:
        return f"group={self.group}"


def make_latent_norm(config: ModelConfig) -> nn.Module:
    """The final norm of every latent: ``LayerNorm(D)`` or ``SimNorm(simnorm_group)``."""
    if config.latent_norm == "simnorm":
        return SimNorm(config.simnorm_group)
    return nn.LayerNorm(config.embed_dim)


def init_linears(module: nn.Module) -> None:
    """Reference initialisation: Xavier-uniform Linear weights with zero bias, N(0, 0.02) embeddings,
    LayerNorm (1, 0). Convolutions keep PyTorch's default."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
            if m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()
        elif isinstance(m, nn.LayerNorm) and m.elementwise_affine:
            nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def xavier_stack_(weight: Tensor, fan_in: int | list[int], fan_out: int | list[int]) -> None:
    """Xavier-uniform init of a stacked per-task weight ``[K, out, in]``, task by task (in place).

    ``fan_in`` / ``fan_out`` may be per-task lists (the real, unpadded sizes); entries beyond a task's real
    sizes are zeroed.
    """
    num = weight.shape[0]
    fan_ins = fan_in if isinstance(fan_in, list) else [fan_in] * num
    fan_outs = fan_out if isinstance(fan_out, list) else [fan_out] * num
    with torch.no_grad():
        weight.zero_()
        for k in range(num):
            nn.init.xavier_uniform_(weight[k, : fan_outs[k], : fan_ins[k]])
