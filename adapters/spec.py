"""``TaskSpec``: the contract between an adapter and the learner.

A ``TaskSpec`` says everything the model needs to be built for one task (observation modality, shape and
dtype; action kind and size), everything the training loop needs (discount, episode cap, training-time
reward transform) and everything the evaluation needs (score normalisation, target return, a written
protocol). It is a frozen dataclass, validated at construction: bad values raise ``ValueError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = [
    "ACTION_KINDS",
    "FAMILIES",
    "MODALITIES",
    "REWARD_TRANSFORMS",
    "ActionKind",
    "Family",
    "Modality",
    "RewardTransform",
    "TaskSpec",
]

Family = Literal["atari", "dmc", "jericho", "gym"]
Modality = Literal["image", "vector", "text"]
ActionKind = Literal["discrete", "continuous"]
RewardTransform = Literal["none", "sign", "clip"]

FAMILIES: tuple[str, ...] = ("atari", "dmc", "jericho", "gym")
MODALITIES: tuple[str, ...] = ("image", "vector", "text")
ACTION_KINDS: tuple[str, ...] = ("discrete", "continuous")
REWARD_TRANSFORMS: tuple[str, ...] = ("none", "sign", "clip")

_DTYPE_BY_MODALITY = {"image": "uint8", "vector": "float32", "text": "str"}


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class TaskSpec:
    """Everything the learner needs to know about one task.

    Observation conventions (what the adapter's env returns, and what ``obs_shape`` describes):

    * ``image``: ``uint8`` array, channel-first ``(C, H, W)``; stacked frames are concatenated along ``C``.
    * ``vector``: ``float32`` array of shape ``(d,)``; ``obs_layout`` names its slices in order.
    * ``text``: a ``str`` of at most ``obs_shape[0]`` characters (printable ASCII plus newline).

    When ``has_action_mask`` is true the env's observation is a ``Dict`` with keys ``"action_mask"`` (an
    ``int8`` array of shape ``(num_actions,)``) and the observation itself under ``"text"`` (Jericho) —
    otherwise the observation is the bare array.

    Attributes:
        name: Canonical task name, ``"<family>/<task>"`` (e.g. ``"atari/Pong"``, ``"dmc/walker-walk"``).
        family: One of ``FAMILIES``.
        modality: One of ``MODALITIES``.
        obs_shape: Observation shape (see the conventions above).
        obs_dtype: ``"uint8"`` (image), ``"float32"`` (vector) or ``"str"`` (text).
        action_kind: ``"discrete"`` or ``"continuous"``.
        num_actions: Size of the discrete action set (``None`` for continuous tasks).
        action_dim: Dimension of the continuous action (``None`` for discrete tasks).
        action_low: Lower bound of every continuous action component (adapters use -1).
        action_high: Upper bound of every continuous action component (adapters use +1).
        has_action_mask: Whether the legal actions change with the state (the env then returns a mask).
        discount: The discount factor gamma used for this task.
        max_episode_steps: Upper bound on agent steps per episode (the adapter enforces it).
        action_repeat: Simulator steps (frames) per agent step.
        random_score: Episode return of a uniformly random policy (``None`` if unknown).
        reference_score: Return that normalises to 1.0 (human for Atari, 1000 for DMC, max score for Jericho).
        target_return: Evaluation return at which Dynamic Parameter Scaling calls the task solved.
        reward_transform: Reward transform applied in training mode only: ``"none"``, ``"sign"`` (sign of
            the reward, Atari clipping) or ``"clip"`` (clip to [-1, 1]). Evaluation always sees raw rewards.
        eval_protocol: Human-readable description of the evaluation protocol.
        obs_layout: For vector observations, ``(key, size)`` pairs in concatenation order.
    """

    name: str
    family: Family
    modality: Modality
    obs_shape: tuple[int, ...]
    obs_dtype: str
    action_kind: ActionKind
    num_actions: int | None = None
    action_dim: int | None = None
    action_low: float | None = None
    action_high: float | None = None
    has_action_mask: bool = False
    discount: float
    max_episode_steps: int
    action_repeat: int = 1
    random_score: float | None = None
    reference_score: float | None = None
    target_return: float | None = None
    reward_transform: RewardTransform = "none"
    eval_protocol: str
    obs_layout: tuple[tuple[str, int], ...] = field(default=())

    def __post_init__(self) -> None:
        self._validate_identity()
        self._validate_observation()
        self._validate_action()
        self._validate_numbers()

    # ------------------------------------------------------------------ validation
    def _validate_identity(self) -> None:
        _check_choice("family", self.family, FAMILIES)
        prefix, _, rest = self.name.partition("/")
        if prefix != self.family or not rest:
            raise ValueError(f"name must look like '{self.family}/<task>', got {self.name!r}")
        if not self.eval_protocol.strip():
            raise ValueError("eval_protocol must be a non-empty description")

    def _validate_observation(self) -> None:
        _check_choice("modality", self.modality, MODALITIES)
        if not self.obs_shape or any(not isinstance(s, int) or s <= 0 for s in self.obs_shape):
            raise ValueError(f"obs_shape must be a non-empty tuple of positive ints, got {self.obs_shape!r}")
        expected_rank = {"image": 3, "vector": 1, "text": 1}[self.modality]
        if len(self.obs_shape) != expected_rank:
            raise ValueError(f"{self.modality} observations have rank {expected_rank}, got {self.obs_shape!r}")
        if self.obs_dtype != _DTYPE_BY_MODALITY[self.modality]:
            raise ValueError(
                f"{self.modality} observations must have dtype {_DTYPE_BY_MODALITY[self.modality]!r}, "
                f"got {self.obs_dtype!r}"
            )
        if self.obs_layout:
            if self.modality != "vector":
                raise ValueError("obs_layout is only meaningful for vector observations")
            if sum(size for _, size in self.obs_layout) != self.obs_shape[0]:
                raise ValueError(f"obs_layout sizes {self.obs_layout!r} do not sum to {self.obs_shape[0]}")

    def _validate_action(self) -> None:
        _check_choice("action_kind", self.action_kind, ACTION_KINDS)
        if self.action_kind == "discrete":
            if self.num_actions is None or self.num_actions < 1 or self.action_dim is not None:
                raise ValueError("discrete tasks need num_actions >= 1 and action_dim=None")
            if self.action_low is not None or self.action_high is not None:
                raise ValueError("discrete tasks have no action bounds")
            return
        if self.action_dim is None or self.action_dim < 1 or self.num_actions is not None:
            raise ValueError("continuous tasks need action_dim >= 1 and num_actions=None")
        if self.has_action_mask:
            raise ValueError("action masks are only supported for discrete tasks")
        if self.action_low is None or self.action_high is None or not self.action_low < self.action_high:
            raise ValueError(
                f"continuous tasks need action_low < action_high, got {self.action_low}, {self.action_high}"
            )

    def _validate_numbers(self) -> None:
        if not 0.0 < self.discount <= 1.0:
            raise ValueError(f"discount must be in (0, 1], got {self.discount}")
        if self.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {self.max_episode_steps}")
        if self.action_repeat < 1:
            raise ValueError(f"action_repeat must be >= 1, got {self.action_repeat}")
        _check_choice("reward_transform", self.reward_transform, REWARD_TRANSFORMS)
        for name in ("random_score", "reference_score", "target_return"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value}")
        if (self.random_score is None) != (self.reference_score is None):
            raise ValueError("random_score and reference_score must be given together")
        if self.random_score is not None and self.reference_score == self.random_score:
            raise ValueError("reference_score must differ from random_score")

    # ------------------------------------------------------------------ convenience
    @property
    def is_discrete(self) -> bool:
        """Whether the action space is discrete."""
        return self.action_kind == "discrete"

    @property
    def action_size(self) -> int:
        """``num_actions`` for discrete tasks, ``action_dim`` for continuous ones."""
        size = self.num_actions if self.is_discrete else self.action_dim
        assert size is not None  # guaranteed by validation
        return size

    @property
    def task(self) -> str:
        """The part of ``name`` after the family prefix (e.g. ``"Pong"``)."""
        return self.name.split("/", 1)[1]

    @property
    def has_score_normalisation(self) -> bool:
        """Whether ``normalize`` is available (random and reference scores are known)."""
        return self.random_score is not None

    def normalize(self, score: float) -> float:
        """Normalise an episode return: ``(score - random) / (reference - random)``.

        For Atari this is the human-normalised score; for DMC, ``score / 1000``; for Jericho, the fraction of
        the game's maximum score.

        Raises:
            ValueError: If the task has no random/reference scores.
        """
        if self.random_score is None or self.reference_score is None:
            raise ValueError(f"{self.name} has no random/reference scores; normalisation is undefined")
        return (float(score) - self.random_score) / (self.reference_score - self.random_score)

    def is_solved(self, eval_return: float) -> bool:
        """Whether a mean evaluation return reaches ``target_return`` (``False`` if there is no target)."""
        return self.target_return is not None and float(eval_return) >= self.target_return

    def transform_reward(self, reward: float) -> float:
        """Apply the training-time ``reward_transform`` to one reward."""
        if self.reward_transform == "sign":
            return float(np.sign(reward))
        if self.reward_transform == "clip":
            return float(np.clip(reward, -1.0, 1.0))
        return float(reward)
