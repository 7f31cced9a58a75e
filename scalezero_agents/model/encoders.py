"""Observation encoders: one latent token ``[n, D]`` per observation, ending in the shared latent norm.

* images (``uint8 [n, C, H, W]``): a conv ResNet (algorithm.md §1.2), one per distinct image shape, shared
  by every task with that shape;
* vectors (``float [n, d_k]``): a per-task stem ``Linear(d_k, D) -> LN -> GELU -> Linear(D, D)``;
* text (``int64 [n, L]`` token ids): one shared text encoder (:mod:`scalezero_agents.model.text`).

Conv blocks use ``GroupNorm(1, C)`` (a LayerNorm over channels and space, like the multi-task reference's LN
option, and independent of the batch, so inference equals training) and tanh-approximated GELU.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scalezero_adapters import TaskSpec
from torch import Tensor, nn

from scalezero_agents.model.config import ModelConfig
from scalezero_agents.model.layers import init_linears, make_latent_norm
from scalezero_agents.model.text import ByteTextEncoder, MiniLMTextEncoder


def _conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _halve(size: int) -> int:
    """Spatial size after a 3x3, stride-2, padding-1 conv or pool."""
    return (size + 1) // 2


class ResBlock(nn.Module):
    """``gelu(norm(conv(gelu(norm(conv x)))) + skip x)``; with ``stride=2`` or new channels the skip is a
    strided 3x3 conv (the reference's down-sampling block)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3(cin, cout, stride)
        self.norm1 = nn.GroupNorm(1, cout)
        self.conv2 = _conv3(cout, cout)
        self.norm2 = nn.GroupNorm(1, cout)
        self.skip = nn.Identity() if cin == cout and stride == 1 else _conv3(cin, cout, stride)

    def forward(self, x: Tensor) -> Tensor:
        """``[n, cin, h, w] -> [n, cout, h / stride, w / stride]``."""
        y = F.gelu(self.norm1(self.conv1(x)), approximate="tanh")
        return F.gelu(self.norm2(self.conv2(y)) + self.skip(x), approximate="tanh")


class ImageEncoder(nn.Module):
    """Conv ResNet: strided conv + block, down-sampling block + block, average pool(s) + block,
    ``conv_res_blocks`` blocks, flatten, ``Linear(C*h*w, D, bias=False)`` (the latent norm comes after).

    Average pools repeat (as the reference does for 84/96 px input) until the feature map is at most 8 wide:
    64 px input gives an 8x8 map.
    """

    def __init__(self, obs_shape: tuple[int, int, int], config: ModelConfig) -> None:
        super().__init__()
        in_ch, height, width = obs_shape
        c, half = config.conv_channels, config.conv_channels // 2
        layers: list[nn.Module] = [
            _conv3(in_ch, half, 2),
            nn.GroupNorm(1, half),
            nn.GELU(approximate="tanh"),
            ResBlock(half, half),
            ResBlock(half, c, 2),
            ResBlock(c, c),
            nn.AvgPool2d(3, stride=2, padding=1),
            ResBlock(c, c),
        ]
        height, width = (_halve(_halve(_halve(s))) for s in (height, width))
        while min(height, width) > 8:
            layers.append(nn.AvgPool2d(3, stride=2, padding=1))
            height, width = _halve(height), _halve(width)
        layers += [ResBlock(c, c) for _ in range(config.conv_res_blocks)]
        self.trunk = nn.Sequential(*layers)
        self.fc = nn.Linear(c * height * width, config.embed_dim, bias=False)
        init_linears(self)

    def forward(self, obs: Tensor) -> Tensor:
        """``uint8 [n, C, H, W] -> [n, D]`` (pixels scaled to [0, 1])."""
        x = obs.to(self.fc.weight.dtype) / 255.0
        return self.fc(self.trunk(x).flatten(1))


class VectorStem(nn.Module):
    """Per-task input stem ``Linear(d_k, D) -> LN -> GELU -> Linear(D, D)`` (Xavier init, not zero-init)."""

    def __init__(self, obs_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(obs_dim, embed_dim), nn.LayerNorm(embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim)
        )
        init_linears(self)

    def forward(self, obs: Tensor) -> Tensor:
        """``[n, d_k] -> [n, D]``."""
        return self.net(obs)


def _shape_key(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


class ObservationEncoder(nn.Module):
    """All observation encoders of a task list, selected by task id, followed by one shared latent norm."""

    def __init__(self, specs: Sequence[TaskSpec], config: ModelConfig) -> None:
        super().__init__()
        self.specs = tuple(specs)
        self.config = config
        self.images = nn.ModuleDict()
        self.vectors = nn.ModuleDict()
        self.text: nn.Module | None = None
        self._keys: list[str] = []
        for index, spec in enumerate(self.specs):
            if spec.modality == "image":
                key = _shape_key(spec.obs_shape)
                if key not in self.images:
                    self.images[key] = ImageEncoder(spec.obs_shape, config)  # type: ignore[arg-type]
            elif spec.modality == "vector":
                key = str(index)
                self.vectors[key] = VectorStem(spec.obs_shape[0], config.embed_dim)
            else:
                key = "text"
                if self.text is None:
                    trainable = config.text_encoder == "trainable"
                    self.text = ByteTextEncoder(config) if trainable else MiniLMTextEncoder(config)
            self._keys.append(key)
        self.norm = make_latent_norm(config)
        init_linears(self.norm)

    def tokenize_text(self, texts: Sequence[str]) -> np.ndarray:
        """Token ids ``int64 [n, text_max_tokens]`` for the text encoder (0 = padding).

        Raises:
            ValueError: If no task has text observations.
        """
        if self.text is None:
            raise ValueError("no task has text observations, so there is no text tokenizer")
        return self.text.tokenize(texts)

    def forward(self, task_id: int, obs: Tensor) -> Tensor:
        """Encode a batch of one task's observations into latents ``[n, D]`` (after the latent norm).

        Raises:
            ValueError: For an unknown task id or an observation of the wrong type, dtype or shape.
        """
        if isinstance(task_id, bool) or not isinstance(task_id, int | np.integer):
            raise ValueError(f"task_id must be an int, got {task_id!r}")
        if not 0 <= task_id < len(self.specs):
            raise ValueError(f"unknown task id {task_id}; the model has {len(self.specs)} tasks")
        if not isinstance(obs, Tensor):
            raise ValueError(f"obs must be a torch.Tensor, got {type(obs).__name__}")
        spec, key = self.specs[task_id], self._keys[task_id]
        if spec.modality == "image":
            self._check(spec, obs, spec.obs_shape, obs.dtype == torch.uint8, "uint8")
            latent = self.images[key](obs)
        elif spec.modality == "vector":
            self._check(spec, obs, spec.obs_shape, obs.is_floating_point(), "floating point")
            stem = self.vectors[key]
            latent = stem(obs.to(stem.net[0].weight.dtype))
        else:
            length = obs.shape[-1] if obs.dim() == 2 else 0
            if not 1 <= length <= self.config.text_max_tokens:
                raise ValueError(
                    f"task {task_id} ({spec.name}): text tokens must be int64 [n, L] with "
                    f"1 <= L <= {self.config.text_max_tokens}, got shape {tuple(obs.shape)}"
                )
            self._check(spec, obs, (length,), obs.dtype == torch.int64, "int64 token ids")
            latent = self.text(obs)  # type: ignore[misc]
        return self.norm(latent)

    @staticmethod
    def _check(spec: TaskSpec, obs: Tensor, shape: tuple[int, ...], dtype_ok: bool, dtype_name: str) -> None:
        if obs.dim() != len(shape) + 1 or tuple(obs.shape[1:]) != tuple(shape):
            raise ValueError(
                f"{spec.name}: expected observations of shape [n, {', '.join(map(str, shape))}], got {tuple(obs.shape)}"
            )
        if not dtype_ok:
            raise ValueError(f"{spec.name}: expected {dtype_name} observations, got {obs.dtype}")
