"""Several tasks behind one Gymnasium env with unified spaces, for SB3 / Tianshou (and native loops).

SB3 and Tianshou drive one vector env whose sub-envs must all share one observation and one action space;
neither accepts gymnasium's own vector envs. ``MultiTaskEnv`` presents any list of tasks with these unified
spaces (computed by ``MultiTaskLayout``):

Observation: ``Dict`` with

* ``"task_id"``: ``Discrete(T)``, the index of the active task in the task list;
* ``"image"`` (if any task is an image task): ``uint8 (C_max, H, W)``; a task with fewer channels fills the
  first ``C_k`` channels, the rest are 0. All image tasks must share ``H, W`` (otherwise ``ValueError``).
* ``"vector"`` (if any vector task): ``float32 (D_max,)``; a task fills its first ``d_k`` entries, the rest 0.
* ``"text"`` (if any text task): ``uint8 (L_max,)``, the ASCII codes of the text, zero-padded.
* ``"action_mask"``: ``int8 (A,)``: for a discrete task, which of the ``A`` action slots are legal (its first
  ``n_k`` slots, intersected with the task's own mask, e.g. Jericho's valid actions); for a continuous task,
  which action dimensions it uses (its first ``d_k``).

Modalities the active task does not have are all zeros.

Action space:

* all tasks discrete: ``Discrete(A)``, ``A = max n_k``. An index ``a >= n_k`` (a padding slot) is played as
  ``a % n_k`` and flagged in ``info["action_remapped"]``; an index inside ``n_k`` goes to the task as is
  (e.g. a masked Jericho index is the Jericho env's explicit no-op).
* all tasks continuous: ``Box(-1, 1, (A,), float32)``, ``A = max d_k``; a task uses the first ``d_k`` entries
  and ignores the rest.
* **mixed discrete + continuous**: ``Box(-1, 1, (A,), float32)`` with ``A = max(max n_k, max d_k)``. A
  continuous task uses the first ``d_k`` entries; a discrete task plays the **argmax of the first ``n_k``
  entries over its legal slots** (ties: lowest index). ``encode_action`` produces the canonical one-hot
  encoding (+1 at the chosen index, -1 elsewhere), so an agent that thinks in native actions never needs
  to know this rule.

Recovering the per-task view: ``MultiTaskLayout.task_view(obs)`` (or ``task_view(obs, layout)``) returns the
task id, the task's native observation (exactly what its own env returns: the ``(C_k, H, W)`` image, the
``(d_k,)`` vector, or Jericho's ``{"text", "action_mask"}`` dict) and its native action mask (``n_k`` slots,
discrete tasks only); ``decode_action`` / ``encode_action`` convert actions. In SB3 / Tianshou the task of a
stored transition is also ``obs["task_id"]``.

Vector forms: ``multitask_env_fns`` returns one picklable constructor per sub-env (sub-env ``i`` runs task
``i % T``) for SB3's ``DummyVecEnv``/``SubprocVecEnv`` or Tianshou's ``DummyVectorEnv``/``SubprocVectorEnv``;
``make_multitask_vector_env`` wraps them in gymnasium's ``SyncVectorEnv`` (``SAME_STEP`` autoreset) for native
loops.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from ._common import Mode, Task, check_mode
from .spec import TaskSpec

__all__ = [
    "MultiTaskEnv",
    "MultiTaskLayout",
    "TaskView",
    "make_multitask_vector_env",
    "multitask_env_fns",
    "task_view",
]

UnifiedActionKind = Literal["discrete", "continuous", "mixed"]
Schedule = Literal["round_robin", "uniform"]
_OBS_KEY = {"image": "image", "vector": "vector", "text": "text"}


class TaskView(NamedTuple):
    """One task's native view of a unified observation."""

    task_id: int
    obs: Any
    """Exactly what the task's own env returns (array, or ``{"text", "action_mask"}`` for Jericho)."""
    action_mask: np.ndarray | None
    """``int8 (n_k,)`` legal-action mask for discrete tasks; ``None`` for continuous tasks."""


def _max_or_none(values: list[int]) -> int | None:
    return max(values) if values else None


@dataclass(frozen=True)
class MultiTaskLayout:
    """The unified spaces of a task list and the conversions between native and unified data."""

    specs: tuple[TaskSpec, ...]
    image_shape: tuple[int, int, int] | None
    vector_dim: int | None
    text_length: int | None
    action_kind: UnifiedActionKind
    action_size: int

    def __post_init__(self) -> None:
        if not self.specs:
            raise ValueError("a multi-task layout needs at least one task")
        if self.action_kind not in ("discrete", "continuous", "mixed"):
            raise ValueError(f"action_kind must be 'discrete', 'continuous' or 'mixed', got {self.action_kind!r}")
        if self.action_size < max(s.action_size for s in self.specs):
            raise ValueError(f"action_size {self.action_size} is smaller than a task's action size")
        for modality, size in (("vector", self.vector_dim), ("text", self.text_length)):
            needed = [s.obs_shape[0] for s in self.specs if s.modality == modality]
            if needed and (size is None or size < max(needed)):
                raise ValueError(f"{modality} size {size} is smaller than a task's observation")

    @classmethod
    def from_specs(cls, specs: Sequence[TaskSpec]) -> MultiTaskLayout:
        """Compute the unified layout; raises ``ValueError`` for an empty list or mismatched image sizes."""
        specs = tuple(specs)
        if not specs:
            raise ValueError("a multi-task layout needs at least one task")
        images = [s.obs_shape for s in specs if s.modality == "image"]
        if len({shape[1:] for shape in images}) > 1:
            raise ValueError(f"image tasks must share (H, W); got {sorted({shape[1:] for shape in images})}")
        image_shape = (max(s[0] for s in images), images[0][1], images[0][2]) if images else None
        kinds = {s.action_kind for s in specs}
        kind: UnifiedActionKind = "mixed" if len(kinds) > 1 else ("discrete" if "discrete" in kinds else "continuous")
        return cls(
            specs=specs,
            image_shape=image_shape,
            vector_dim=_max_or_none([s.obs_shape[0] for s in specs if s.modality == "vector"]),
            text_length=_max_or_none([s.obs_shape[0] for s in specs if s.modality == "text"]),
            action_kind=kind,
            action_size=max(s.action_size for s in specs),
        )

    @property
    def num_tasks(self) -> int:
        """Number of tasks."""
        return len(self.specs)

    # ------------------------------------------------------------------ spaces
    def observation_space(self) -> gym.spaces.Dict:
        """The unified ``Dict`` observation space."""
        spaces: dict[str, gym.Space] = {"task_id": gym.spaces.Discrete(self.num_tasks)}
        if self.image_shape is not None:
            spaces["image"] = gym.spaces.Box(0, 255, self.image_shape, np.uint8)
        if self.vector_dim is not None:
            spaces["vector"] = gym.spaces.Box(-np.inf, np.inf, (self.vector_dim,), np.float32)
        if self.text_length is not None:
            spaces["text"] = gym.spaces.Box(0, 255, (self.text_length,), np.uint8)
        spaces["action_mask"] = gym.spaces.Box(0, 1, (self.action_size,), np.int8)
        return gym.spaces.Dict(spaces)

    def action_space(self) -> gym.Space:
        """``Discrete(A)`` for all-discrete task lists, else ``Box(-1, 1, (A,), float32)``."""
        if self.action_kind == "discrete":
            return gym.spaces.Discrete(self.action_size)
        return gym.spaces.Box(-1.0, 1.0, (self.action_size,), np.float32)

    # ------------------------------------------------------------------ observations
    def native_mask(self, task_id: int, native_obs: Any) -> np.ndarray | None:
        """The task's own legal-action mask (``n_k`` slots); ``None`` for continuous tasks."""
        spec = self.specs[task_id]
        if not spec.is_discrete:
            return None
        if spec.has_action_mask:
            return np.asarray(native_obs["action_mask"], dtype=np.int8)
        return np.ones(spec.action_size, dtype=np.int8)

    def to_unified(self, task_id: int, native_obs: Any) -> dict[str, Any]:
        """Embed task ``task_id``'s native observation into the unified ``Dict`` observation."""
        spec = self.specs[task_id]
        out = self._blank()
        out["task_id"] = np.int64(task_id)
        value = native_obs[_OBS_KEY[spec.modality]] if spec.has_action_mask else native_obs
        if spec.modality == "image":
            out["image"][: spec.obs_shape[0]] = value
        elif spec.modality == "vector":
            out["vector"][: spec.obs_shape[0]] = value
        else:
            encoded = np.frombuffer(str(value).encode("ascii", errors="replace"), dtype=np.uint8)
            out["text"][: min(encoded.size, self.text_length or 0)] = encoded[: self.text_length]
        mask = self.native_mask(task_id, native_obs)
        out["action_mask"][: spec.action_size] = 1 if mask is None else mask
        return out

    def _blank(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task_id": np.int64(0)}
        if self.image_shape is not None:
            out["image"] = np.zeros(self.image_shape, np.uint8)
        if self.vector_dim is not None:
            out["vector"] = np.zeros(self.vector_dim, np.float32)
        if self.text_length is not None:
            out["text"] = np.zeros(self.text_length, np.uint8)
        out["action_mask"] = np.zeros(self.action_size, np.int8)
        return out

    def task_view(self, obs: dict[str, Any]) -> TaskView:
        """Recover the active task's native observation and action mask from a unified observation."""
        task_id = int(obs["task_id"])
        spec = self.specs[task_id]
        if spec.modality == "image":
            native: Any = np.asarray(obs["image"][: spec.obs_shape[0]])
        elif spec.modality == "vector":
            native = np.asarray(obs["vector"][: spec.obs_shape[0]])
        else:
            native = bytes(np.asarray(obs["text"], np.uint8)).split(b"\0", 1)[0].decode("ascii")
        mask = np.asarray(obs["action_mask"][: spec.action_size], np.int8) if spec.is_discrete else None
        if spec.has_action_mask:
            native = {_OBS_KEY[spec.modality]: native, "action_mask": mask.copy()}
        return TaskView(task_id, native, mask)

    def task_views(self, batch: dict[str, Any]) -> list[TaskView]:
        """``task_view`` for every row of a batched unified observation (e.g. from a vector env)."""
        return [self.task_view({k: v[i] for k, v in batch.items()}) for i in range(len(batch["task_id"]))]

    # ------------------------------------------------------------------ actions
    def decode_action(self, task_id: int, action: Any, mask: np.ndarray | None = None) -> tuple[Any, bool]:
        """Unified action -> (native action for task ``task_id``, whether a padding slot was remapped).

        ``mask`` is the unified ``action_mask`` (used by the mixed-suite argmax rule).
        """
        spec = self.specs[task_id]
        if self.action_kind == "discrete":
            index = int(action)
            if index >= spec.action_size:
                return index % spec.action_size, True
            return index, False
        vector = np.asarray(action, dtype=np.float32).reshape(self.action_size)
        if not spec.is_discrete:
            return vector[: spec.action_size].copy(), False
        scores = vector[: spec.action_size].astype(np.float64)
        if mask is not None and np.any(mask[: spec.action_size]):
            scores = np.where(np.asarray(mask[: spec.action_size]) > 0, scores, -np.inf)
        return int(np.argmax(scores)), False

    def encode_action(self, task_id: int, native_action: Any) -> Any:
        """Native action of task ``task_id`` -> a unified action that ``decode_action`` maps back to it."""
        spec = self.specs[task_id]
        if self.action_kind == "discrete":
            return int(native_action)
        out = np.zeros(self.action_size, np.float32)
        if spec.is_discrete:
            out[:] = -1.0
            out[int(native_action)] = 1.0
        else:
            out[: spec.action_size] = np.asarray(native_action, np.float32)
        return out


def task_view(obs: dict[str, Any], layout: MultiTaskLayout) -> TaskView:
    """Function form of ``MultiTaskLayout.task_view``."""
    return layout.task_view(obs)


class MultiTaskEnv(gym.Env[dict, Any]):
    """Several tasks behind one env with unified spaces (rules in the module docstring).

    Args:
        tasks: ``Task`` objects (from ``make_task``/``make_suite``), in task-id order.
        mode: ``"train"`` or ``"eval"``, passed to every task's factory.
        task_id: Pin the env to one task (as the vector forms do); ``None`` switches tasks at every reset.
        schedule: With ``task_id=None``: ``"round_robin"`` (task 0, 1, ...; a seeded reset restarts at 0) or
            ``"uniform"`` (drawn from the env's seeded generator). ``reset(options={"task_id": k})`` overrides
            either for one episode.
    """

    metadata = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        tasks: Sequence[Task],
        *,
        mode: Mode = "train",
        task_id: int | None = None,
        schedule: Schedule = "round_robin",
    ) -> None:
        check_mode(mode)
        if schedule not in ("round_robin", "uniform"):
            raise ValueError(f"schedule must be 'round_robin' or 'uniform', got {schedule!r}")
        self.tasks = tuple(tasks)
        self.layout = MultiTaskLayout.from_specs([t.spec for t in self.tasks])
        if task_id is not None and not 0 <= task_id < self.layout.num_tasks:
            raise ValueError(f"task_id must be in [0, {self.layout.num_tasks}), got {task_id}")
        self.mode, self.schedule, self.pinned_task = mode, schedule, task_id
        self.observation_space = self.layout.observation_space()
        self.action_space = self.layout.action_space()
        self.current_task = task_id if task_id is not None else 0
        self._next_round_robin = 0
        self._envs: dict[int, gym.Env] = {}
        self._seeded = False
        self._seeded_tasks: set[int] = set()
        self._obs: dict[str, Any] | None = None

    def sub_env(self, task_id: int) -> gym.Env:
        """The task's own env (built on first use)."""
        if task_id not in self._envs:
            self._envs[task_id] = self.tasks[task_id].factory(self.mode)
        return self._envs[task_id]

    def _choose_task(self, seed: int | None, options: dict[str, Any] | None) -> int:
        if options and "task_id" in options:
            chosen = int(options["task_id"])
            if not 0 <= chosen < self.layout.num_tasks:
                raise ValueError(f"options['task_id'] must be in [0, {self.layout.num_tasks}), got {chosen}")
            return chosen
        if self.pinned_task is not None:
            return self.pinned_task
        if self.schedule == "uniform":
            return int(self.np_random.integers(self.layout.num_tasks))
        if seed is not None:
            self._next_round_robin = 0
        chosen = self._next_round_robin
        self._next_round_robin = (chosen + 1) % self.layout.num_tasks
        return chosen

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """Pick the task for this episode and reset its env.

        ``seed`` seeds this env and is passed to the task's env; once seeded, a task env reset without a seed
        for the first time gets a seed drawn from this env's generator, so every source is seeded.
        """
        super().reset(seed=seed)
        self._seeded = self._seeded or seed is not None
        self.current_task = self._choose_task(seed, options)
        env = self.sub_env(self.current_task)
        sub_seed = seed
        if sub_seed is None and self._seeded and self.current_task not in self._seeded_tasks:
            sub_seed = int(self.np_random.integers(2**31 - 1))
        native, info = env.reset(seed=sub_seed)
        if sub_seed is not None:
            self._seeded_tasks.add(self.current_task)
        self._obs = self.layout.to_unified(self.current_task, native)
        return self._copy_obs(), {**info, "task_id": self.current_task}

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict[str, Any]]:
        """Decode ``action`` for the active task and step its env."""
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        native_action, remapped = self.layout.decode_action(self.current_task, action, self._obs["action_mask"])
        native, reward, terminated, truncated, info = self.sub_env(self.current_task).step(native_action)
        self._obs = self.layout.to_unified(self.current_task, native)
        info = {**info, "task_id": self.current_task, "action_remapped": remapped}
        return self._copy_obs(), float(reward), bool(terminated), bool(truncated), info

    def _copy_obs(self) -> dict[str, Any]:
        assert self._obs is not None
        return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self._obs.items()}

    def action_masks(self) -> np.ndarray:
        """The unified action mask as booleans (sb3-contrib ``MaskablePPO`` convention)."""
        if self._obs is None:
            return np.ones(self.layout.action_size, dtype=bool)
        return self._obs["action_mask"].astype(bool)

    def close(self) -> None:
        """Close every task env built so far."""
        for env in self._envs.values():
            env.close()
        self._envs.clear()


def multitask_env_fns(
    tasks: Sequence[Task], *, mode: Mode = "train", envs_per_task: int = 1
) -> list[Callable[[], MultiTaskEnv]]:
    """One picklable constructor per sub-env; sub-env ``i`` is a ``MultiTaskEnv`` pinned to task ``i % T``.

    Pass the list to SB3's ``DummyVecEnv``/``SubprocVecEnv`` or Tianshou's ``DummyVectorEnv``/
    ``SubprocVectorEnv``; all sub-envs share the unified spaces.
    """
    check_mode(mode)
    if envs_per_task < 1:
        raise ValueError(f"envs_per_task must be >= 1, got {envs_per_task}")
    tasks = tuple(tasks)
    return [
        functools.partial(MultiTaskEnv, tasks, mode=mode, task_id=i % len(tasks))
        for i in range(len(tasks) * envs_per_task)
    ]


def make_multitask_vector_env(
    tasks: Sequence[Task], *, mode: Mode = "train", envs_per_task: int = 1
) -> gym.vector.SyncVectorEnv:
    """A gymnasium ``SyncVectorEnv`` (``SAME_STEP`` autoreset) over ``multitask_env_fns(...)``.

    For native training loops; SB3 and Tianshou need their own vector envs over ``multitask_env_fns``.
    """
    return gym.vector.SyncVectorEnv(
        multitask_env_fns(tasks, mode=mode, envs_per_task=envs_per_task),
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
