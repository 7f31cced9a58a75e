"""Stacked LoRA adapters on the transformer's linear layers, through peft.

Every DPS stage adds one named adapter (``stage1``, ``stage2``, ...) to the same target layers with
``peft.functional.inject_adapter_in_model``; all adapters stay active together (``peft.functional.set_adapter``
with the list of names), so peft's LoRA forward sums them::

    y = W0 x + b + sum_j s_j * (alpha / r) * B_j A_j dropout(x)

The learnable scale ``s_j = scale_init + 0.2 * tanh(theta_j)`` (theta_j = 0 at creation) lives in the
adapter's B module (:class:`ScaledLoRAB`, which replaces peft's plain ``lora_B`` Linear), so peft's own
bookkeeping (active adapters, state dict names) covers it. B starts at zero, so adding an adapter leaves the
output unchanged. Adapters are never merged into the base weights (peft's merge would ignore ``s_j``).

An :class:`AdapterSpec` is plain data: a checkpoint stores the specs, and a loader re-creates the adapters
from them (:func:`add_adapter`) before it loads any weights.

peft is imported on first use (it pulls in ``transformers``, a few seconds).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scalezero_agents.dps.config import TARGET_GROUPS
from scalezero_agents.model.moe import DenseFeedForward, MoEFeedForward
from scalezero_agents.model.transformer import Block

SCALE_SPAN = 0.2
"""An adapter's scale stays in ``scale_init +- SCALE_SPAN``."""


@dataclass(frozen=True, kw_only=True)
class AdapterSpec:
    """One LoRA adapter, as plain data (what a checkpoint stores to rebuild it)."""

    name: str
    """peft adapter name, unique per model (``stage1``, ``stage2``, ...)."""
    targets: tuple[str, ...]
    """Names of the adapted ``nn.Linear`` modules, relative to the module the adapter is injected into."""
    rank: int
    alpha: float
    dropout: float
    scale_init: float

    def __post_init__(self) -> None:
        if not self.name or "." in self.name:
            raise ValueError(f"adapter name must be a non-empty string without dots, got {self.name!r}")
        if not self.targets:
            raise ValueError("an adapter needs at least one target module")
        if self.rank < 1:
            raise ValueError(f"rank must be >= 1, got {self.rank}")
        object.__setattr__(self, "targets", tuple(self.targets))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["targets"] = list(self.targets)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdapterSpec:
        return cls(**{**data, "targets": tuple(data["targets"])})


class ScaledLoRAB(nn.Linear):
    """LoRA's up-projection ``B [out, r]`` (zero at creation), times the adapter's learnable scale.

    ``forward(h) = s * (B h)`` with ``s = scale_init + 0.2 * tanh(scale_logit)``.
    """

    def __init__(self, rank: int, out_features: int, *, scale_init: float) -> None:
        super().__init__(rank, out_features, bias=False)
        nn.init.zeros_(self.weight)
        self.scale_init = float(scale_init)
        self.scale_logit = nn.Parameter(torch.zeros(()))

    @property
    def scale(self) -> Tensor:
        return self.scale_init + SCALE_SPAN * torch.tanh(self.scale_logit)

    def forward(self, h: Tensor) -> Tensor:
        return F.linear(h, self.weight) * self.scale

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scale_init={self.scale_init}"


class TrainingDropout(nn.Dropout):
    """Dropout only in a training forward: module in training mode **and** autograd on.

    The world model applies dropout only in its teacher-forced training pass; the searches run the online
    model (possibly still in training mode) under ``torch.no_grad``, and stay deterministic.
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.training and torch.is_grad_enabled():
            return F.dropout(x, self.p, training=True)
        return x


def find_targets(root: nn.Module, groups: Sequence[str]) -> tuple[str, ...]:
    """Names (relative to ``root``) of the linear layers in ``groups`` in every transformer block of ``root``.

    ``attention``: q, k, v, o. ``feed_forward``: w1, w2, w3 of each routed MoE expert (not the router, not the
    shared expert), or fc1, fc2 of a dense feed-forward.
    """
    unknown = [g for g in groups if g not in TARGET_GROUPS]
    if unknown or not groups:
        raise ValueError(f"unknown or empty target group(s) {list(groups)}; choose from {TARGET_GROUPS}")
    names: list[str] = []
    for prefix, block in root.named_modules():
        if not isinstance(block, Block):
            continue
        p = f"{prefix}." if prefix else ""
        if "attention" in groups:
            names += [f"{p}attn.{x}" for x in ("q", "k", "v", "o")]
        if "feed_forward" in groups:
            if isinstance(block.ffn, MoEFeedForward):
                names += [f"{p}ffn.experts.{e}.{w}" for e in range(len(block.ffn.experts)) for w in ("w1", "w2", "w3")]
            elif isinstance(block.ffn, DenseFeedForward):
                names += [f"{p}ffn.fc1", f"{p}ffn.fc2"]
    if not names:
        raise ValueError(f"no layer of {type(root).__name__} matches the target groups {list(groups)} "
                         "(DPS adapts the linear layers of transformer blocks)")
    return tuple(names)


def _lora_layer_type() -> type:
    from peft.tuners.lora import LoraLayer

    return LoraLayer


def adapter_names(root: nn.Module) -> list[str]:
    """Names of the adapters in ``root``, oldest first (empty if none)."""
    lora = _lora_layer_type()
    for module in root.modules():
        if isinstance(module, lora):
            return list(module.lora_A.keys())
    return []


def _target_layers(root: nn.Module, targets: Sequence[str]) -> list[Any]:
    lora = _lora_layer_type()
    layers = []
    for name in targets:
        try:
            layer = root.get_submodule(name)
        except AttributeError:
            raise ValueError(f"adapter target {name!r} is not a module of {type(root).__name__}") from None
        if not isinstance(layer, lora | nn.Linear):
            raise ValueError(f"adapter target {name!r} is a {type(layer).__name__}, not an nn.Linear")
        layers.append(layer)
    return layers


def add_adapter(root: nn.Module, spec: AdapterSpec) -> list[nn.Parameter]:
    """Inject ``spec`` into ``root`` with peft and activate it together with the earlier adapters.

    The other parameters of ``root`` keep their ``requires_grad`` (peft's freezing is undone); every adapter
    is left trainable (peft's ``set_adapter``), so call :func:`set_stage_trainable` (online model) or
    ``requires_grad_(False)`` (target model) afterwards. Returns the new parameters, per target layer ``A``,
    ``B``, ``scale_logit`` (the order :func:`adapter_parameters` uses).
    """
    from peft import LoraConfig
    from peft.functional import inject_adapter_in_model, set_adapter

    existing = adapter_names(root)
    if spec.name in existing:
        raise ValueError(f"{type(root).__name__} already has an adapter named {spec.name!r}")
    lora = _lora_layer_type()
    if existing and {n for n, m in root.named_modules() if isinstance(m, lora)} != set(spec.targets):
        raise ValueError(f"adapter {spec.name!r} targets other layers than the existing adapters {existing}; "
                         "stacked adapters must adapt the same layers")
    _target_layers(root, spec.targets)
    trainable = [(p, p.requires_grad) for p in root.parameters()]
    config = LoraConfig(r=spec.rank, lora_alpha=spec.alpha, lora_dropout=0.0, target_modules=list(spec.targets),
                        bias="none")
    with warnings.catch_warnings():  # peft warns that a second adapter makes the model multi-adapter: intended
        warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
        inject_adapter_in_model(config, root, adapter_name=spec.name)
    layers = _target_layers(root, spec.targets)
    if sum(isinstance(m, lora) for m in root.modules()) != len(layers) or any(
            not isinstance(layer, lora) or list(layer.lora_A) != [*existing, spec.name] for layer in layers):
        raise RuntimeError(f"peft did not add adapter {spec.name!r} to exactly the target layers")
    for layer in layers:
        weight = layer.get_base_layer().weight
        b = ScaledLoRAB(spec.rank, layer.out_features, scale_init=spec.scale_init)
        layer.lora_B[spec.name] = b.to(device=weight.device, dtype=weight.dtype)
        if spec.dropout:
            layer.lora_dropout[spec.name] = TrainingDropout(spec.dropout)
    set_adapter(root, [*existing, spec.name])
    adapters = _adapter_parameter_ids(root)
    for p, flag in trainable:
        if id(p) not in adapters:
            p.requires_grad_(flag)
    return adapter_parameters(root, spec.name, spec.targets)


def _adapter_parameter_ids(root: nn.Module) -> set[int]:
    lora = _lora_layer_type()
    return {id(p) for m in root.modules() if isinstance(m, lora) for d in (m.lora_A, m.lora_B) for p in d.parameters()}


def adapter_parameters(root: nn.Module, name: str, targets: Sequence[str]) -> list[nn.Parameter]:
    """Adapter ``name``'s parameters: per target layer ``A``, ``B``, ``scale_logit``."""
    params: list[nn.Parameter] = []
    for layer in _target_layers(root, targets):
        b = layer.lora_B[name]
        params += [layer.lora_A[name].weight, b.weight, b.scale_logit]
    return params


def adapter_scales(root: nn.Module, name: str, targets: Sequence[str]) -> list[float]:
    """Adapter ``name``'s current scale ``s_j`` in each target layer."""
    return [float(layer.lora_B[name].scale.detach()) for layer in _target_layers(root, targets)]


def set_stage_trainable(root: nn.Module) -> None:
    """Trainability at stage s >= 1, the clean semantics of algorithm.md 4.3.

    Trains ``A_s, B_s`` of the newest adapter and the scales ``s_j`` of the earlier ones. Freezes every other
    parameter of ``root`` (base weights and biases, LayerNorms, router, shared expert, ``A_j, B_j`` for j < s
    and ``s_s``) except embeddings (the position table keeps training, like the encoders and heads outside
    ``root``).
    """
    lora = _lora_layer_type()
    embeddings = {id(p) for m in root.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    for p in root.parameters():
        if id(p) not in embeddings:
            p.requires_grad_(False)
    for module in root.modules():
        if not isinstance(module, lora):
            continue
        names = list(module.lora_A.keys())
        for j, name in enumerate(names):
            newest = j == len(names) - 1
            b = module.lora_B[name]
            module.lora_A[name].weight.requires_grad_(newest)
            b.weight.requires_grad_(newest)
            b.scale_logit.requires_grad_(not newest)
