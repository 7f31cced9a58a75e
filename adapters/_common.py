"""Pieces shared by every adapter: the env factory, modes, option checking and action rescaling."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

import gymnasium as gym
import numpy as np

from .spec import TaskSpec

__all__ = ["MODES", "EnvFactory", "Mode", "Task", "check_mode", "check_options", "rescale_to_bounds"]

Mode = Literal["train", "eval"]
MODES: tuple[str, ...] = ("train", "eval")


def check_mode(mode: str) -> None:
    """Raise ``ValueError`` unless ``mode`` is ``"train"`` or ``"eval"``."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def check_options(task: str, options: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``options`` over ``defaults``; unknown keys and wrongly typed values are errors.

    Types are checked against the default's type (``int`` is accepted where a ``float`` is expected; a
    default of ``None`` accepts anything, the adapter validates it).

    Raises:
        ValueError: On an unknown option (the message lists the allowed ones).
        TypeError: On a value whose type does not match the default's.
    """
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for {task}; allowed: {sorted(defaults)}")
    merged = dict(defaults)
    for key, value in options.items():
        default = defaults[key]
        if default is not None and not _same_kind(value, default):
            raise TypeError(f"option {key!r} of {task} must be {type(default).__name__}, got {value!r}")
        merged[key] = value
    return merged


def _same_kind(value: Any, default: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def rescale_to_bounds(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map an action in [-1, 1] (clipped first) affinely onto ``[low, high]``."""
    clipped = np.clip(action, -1.0, 1.0)
    return low + (clipped + 1.0) * 0.5 * (high - low)


@dataclass(frozen=True)
class EnvFactory:
    """A picklable callable that builds a task's env: ``factory(mode="eval")``.

    ``mode="train"`` applies the training-only transforms recorded in the task's ``TaskSpec`` (e.g. Atari
    reward clipping and life-loss terminals); ``mode="eval"`` follows the evaluation protocol (raw game
    score, full episodes). Both modes have the same spaces.

    Attributes:
        name: Canonical task name.
        builder: Module-level function ``builder(mode, **options) -> gym.Env``.
        options: The validated options, passed to ``builder`` as keywords.
    """

    name: str
    builder: Callable[..., gym.Env]
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def __call__(self, mode: Mode = "eval") -> gym.Env:
        """Build a fresh env in ``mode`` (``"train"`` or ``"eval"``)."""
        check_mode(mode)
        return self.builder(mode, **self.options)

    def __reduce__(self) -> tuple[Any, ...]:
        return (EnvFactory, (self.name, self.builder, dict(self.options)))


class Task(NamedTuple):
    """A task: its env factory and its ``TaskSpec`` (unpacks as ``factory, spec = task``)."""

    factory: EnvFactory
    spec: TaskSpec

    def make_env(self, mode: Mode = "eval") -> gym.Env:
        """Shorthand for ``task.factory(mode)``."""
        return self.factory(mode)
