"""nanoGPT-style pre-LN causal transformer with a learned absolute position table and an explicit KV cache.

The transformer holds no inference state: past keys/values come in as arguments and the new tokens' keys
and values go out in the result, so the caller (:mod:`scalezero_agents.model.world_model`) owns the cache.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scalezero_agents.model.config import ModelConfig
from scalezero_agents.model.layers import init_linears
from scalezero_agents.model.moe import DenseFeedForward, MoEFeedForward, MoEOutput


class SelfAttention(nn.Module):
    """Multi-head attention with separate biased q/k/v/o projections (kept separate for LoRA adapters)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"heads={heads} must divide dim={dim}")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)

    def _split(self, x: Tensor) -> Tensor:
        n, t, d = x.shape
        return x.view(n, t, self.heads, d // self.heads).transpose(1, 2)

    def forward(
        self,
        x: Tensor,
        *,
        past_k: Tensor | None = None,
        past_v: Tensor | None = None,
        mask: Tensor | None = None,
        causal: bool = True,
        dropout_p: float = 0.0,
        last_only: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Attend ``x [n, t, D]`` over ``past (+) x``.

        Args:
            past_k, past_v: ``[n, heads, T_past, dh]`` keys/values before ``x``, or ``None``.
            mask: boolean ``[n, 1, t, T_past + t]`` (True = may attend); if given, ``causal`` is ignored.
            causal: without a mask, whether ``x`` attends causally to itself.
            last_only: only the last token queries (it sees every key); needs ``past=None`` and no mask.

        Returns:
            ``(y [n, t or 1, D], k [n, heads, t, dh], v [n, heads, t, dh])`` with ``k, v`` those of ``x`` alone.
        """
        n, t, d = x.shape
        k, v = self._split(self.k(x)), self._split(self.v(x))
        keys, values = (k, v) if past_k is None else (torch.cat((past_k, k), 2), torch.cat((past_v, v), 2))
        if last_only:
            x, t, causal = x[:, -1:], 1, False
        q = self._split(self.q(x))
        y = F.scaled_dot_product_attention(
            q, keys, values, attn_mask=mask, dropout_p=dropout_p, is_causal=mask is None and causal and t > 1
        )
        return self.o(y.transpose(1, 2).reshape(n, t, d)), k, v


class Block(nn.Module):
    """Pre-LN block: ``x + attn(ln1 x)`` then ``x + ffn(ln2 x)``, with residual dropout."""

    def __init__(self, dim: int, heads: int, ffn: nn.Module) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.ffn = ffn

    def forward(
        self,
        x: Tensor,
        *,
        past_k: Tensor | None = None,
        past_v: Tensor | None = None,
        mask: Tensor | None = None,
        causal: bool = True,
        dropout_p: float = 0.0,
        stats: bool = False,
        last_only: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor, MoEOutput | None]:
        """Return ``(x, k, v, moe)``; ``moe`` (the MoE output with its statistics) is ``None`` for a dense FFN.

        With ``last_only`` the keys/values cover every token but ``x`` only the last one (``[n, 1, D]``).
        """
        a, k, v = self.attn(
            self.ln1(x),
            past_k=past_k,
            past_v=past_v,
            mask=mask,
            causal=causal,
            dropout_p=dropout_p,
            last_only=last_only,
        )
        if last_only:
            x = x[:, -1:]
        x = x + (F.dropout(a, dropout_p, training=True) if dropout_p else a)
        moe = None
        if isinstance(self.ffn, MoEFeedForward):
            moe = self.ffn(self.ln2(x), stats=stats)
            f = moe.out
        else:
            f = self.ffn(self.ln2(x))
        return x + (F.dropout(f, dropout_p, training=True) if dropout_p else f), k, v, moe


class TransformerOutput(NamedTuple):
    """Result of :meth:`Transformer.forward`."""

    hidden: Tensor
    """``[n, t, D]`` final-LN hidden states of the new tokens."""
    keys: Tensor
    """``[L, n, heads, t, dh]`` keys of the new tokens (every layer)."""
    values: Tensor
    """``[L, n, heads, t, dh]`` values of the new tokens."""
    aux_loss: Tensor | None
    """MoE balance loss summed over layers (``stats=True``, trained router), else ``None``."""
    expert_load: Tensor | None
    """``[L, E]`` MoE load fractions (``stats=True``, MoE), else ``None``."""
    router_prob: Tensor | None = None
    """``[L, E]`` mean router probabilities, differentiable (``stats=True``, trained router), else ``None``."""


def _make_ffn(config: ModelConfig) -> nn.Module:
    hidden = config.ffn_mult * config.embed_dim
    if config.ffn == "moe":
        return MoEFeedForward(
            config.embed_dim,
            hidden,
            num_experts=config.num_experts,
            experts_per_token=config.experts_per_token,
            shared_expert=config.shared_expert,
            router=config.router,
        )
    return DenseFeedForward(config.embed_dim, hidden)


class Transformer(nn.Module):
    """Causal transformer over pre-embedded tokens, with positions added from a learned table."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.pos = nn.Embedding(config.max_tokens, config.embed_dim)
        self.blocks = nn.ModuleList(
            Block(config.embed_dim, config.num_heads, _make_ffn(config)) for _ in range(config.num_layers)
        )
        self.ln_f = nn.LayerNorm(config.embed_dim)
        init_linears(self)

    def forward(
        self,
        tokens: Tensor,
        positions: Tensor | None = None,
        past: tuple[Tensor, Tensor] | None = None,
        past_lengths: Tensor | None = None,
        *,
        dropout: bool = False,
        stats: bool = False,
        last_only: bool = False,
    ) -> TransformerOutput:
        """Run new tokens, optionally after cached ones.

        Args:
            tokens: ``[n, t, D]`` token embeddings (without positions).
            positions: ``[n, t]`` LongTensor of absolute positions; ``None`` means ``0..t-1`` (only without
                ``past``).
            past: ``(keys, values)``, each ``[L, n, heads, T_past, dh]``; row i's first ``past_lengths[i]``
                entries are real, the rest are masked out.
            past_lengths: ``[n]`` LongTensor, required with ``past``.
            dropout: apply the configured dropout (training forward only).
            stats: compute the MoE load and balance loss.
            last_only: return only the last token's hidden state (``[n, 1, D]``) and skip the last block's
                query, output and FFN work for the other tokens (keys/values still cover every token).
                Only without ``past``.
        """
        n, t, _ = tokens.shape
        if past is None:
            if positions is not None:
                raise ValueError("explicit positions are only supported together with past keys/values")
            x = tokens + self.pos.weight[:t]
            mask = None
        elif last_only:
            raise ValueError("last_only is only supported without past keys/values")
        else:
            if positions is None or past_lengths is None:
                raise ValueError("past keys/values need positions and past_lengths")
            x = tokens + self.pos(positions)
            t_past = past[0].shape[3]
            arange = torch.arange(t_past, device=tokens.device)
            key_ok = (arange < past_lengths[:, None])[:, None, None, :].expand(n, 1, t, t_past)
            if t == 1:
                mask = torch.cat((key_ok, key_ok.new_ones(n, 1, 1, 1)), dim=-1)
            else:
                causal = torch.ones(t, t, dtype=torch.bool, device=tokens.device).tril()
                mask = torch.cat((key_ok, causal.expand(n, 1, t, t)), dim=-1)
        p = self.config.dropout if dropout else 0.0
        if p:
            x = F.dropout(x, p, training=True)
        keys, values, auxes, loads, probs = [], [], [], [], []
        for layer, block in enumerate(self.blocks):
            past_k = past_v = None
            if past is not None:
                past_k, past_v = past[0][layer], past[1][layer]
            x, k, v, moe = block(
                x,
                past_k=past_k,
                past_v=past_v,
                mask=mask,
                dropout_p=p,
                stats=stats,
                last_only=last_only and layer == len(self.blocks) - 1,
            )
            keys.append(k)
            values.append(v)
            if moe is not None and moe.aux_loss is not None:
                auxes.append(moe.aux_loss)
                probs.append(moe.router_prob)
            if moe is not None and moe.load is not None:
                loads.append(moe.load)
        return TransformerOutput(
            hidden=self.ln_f(x),
            keys=torch.stack(keys),
            values=torch.stack(values),
            aux_loss=torch.stack(auxes).sum() if auxes else None,
            expert_load=torch.stack(loads) if loads else None,
            router_prob=torch.stack(probs) if probs else None,
        )
