"""How a Tianshou env's spaces map onto the agent's tasks, and back (private to the Tianshou integration).

Three layouts are accepted:

* **single task, array observations**: ``Box`` observations of the task's shape; actions ``Discrete(n_k)`` or a
  1-D bounded ``Box`` of ``d_k`` entries (the policy emits ``[-1, 1]``; Tianshou's ``action_scaling`` maps them);
* **single task, Dict observations** ``{<key>: Box, "action_mask": Box}`` (legal-action masks);
* **multi-task**: the unified ``Dict`` observation of :class:`scalezero_adapters.MultiTaskEnv` (``task_id``,
  modality keys, ``action_mask``) and its unified action space. Each row goes to its task by ``obs["task_id"]``.

The codec turns a batch of Tianshou observations into per-row (task id, native observation) for the actor,
native actions into Tianshou ``act`` rows, search results into the ``policy`` sub-batch stored by the buffer,
and stored buffer observations back into the agent's replay form (what :class:`WindowBatch` carries).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from scalezero_adapters import MultiTaskLayout, TaskSpec
from tianshou.data import Batch

from scalezero_agents.agent import ActOutput
from scalezero_agents.model.world_model import WorldModel

ObsSource = np.ndarray | Batch
"""Stored observations: an array (Box spaces) or a Batch of per-key arrays (Dict spaces)."""


def _space_error(what: str, space: gym.Space, need: str) -> ValueError:
    return ValueError(f"unsupported {what} space {space}: {need}")


class SpaceCodec:
    """Conversions between a Tianshou env's spaces and an agent's tasks.

    Args:
        model: the agent's world model (its specs, unified action width and text tokenizer).
        num_samples: K, the root's sampled actions of continuous tasks (``config.search.num_samples``).
        observation_space: the env's observation space.
        action_space: the env's action space.

    Raises:
        ValueError: for spaces the agent cannot act in (with the reason and what is supported).
    """

    def __init__(self, model: WorldModel, num_samples: int, observation_space: gym.Space,
                 action_space: gym.Space) -> None:
        self.model, self.specs = model, tuple(model.specs)
        self.multitask = isinstance(observation_space, gym.spaces.Dict) and "task_id" in observation_space.spaces
        self.layout: MultiTaskLayout | None = None
        self.obs_key: str | None = None
        if self.multitask:
            self._check_multitask(observation_space, action_space)
        else:
            if len(self.specs) != 1:
                raise ValueError(f"{len(self.specs)} tasks need the Dict observations of scalezero_adapters."
                                 f"MultiTaskEnv (with a 'task_id' key); got {observation_space}")
            self._check_single(self.specs[0], observation_space, action_space)
        self.action_space = action_space
        self.continuous_space = isinstance(action_space, gym.spaces.Box)
        self.P = model.action_width
        self.K = num_samples
        self.policy_width = max(s.action_size if s.is_discrete else num_samples for s in self.specs)
        self.has_continuous = any(not s.is_discrete for s in self.specs)

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check_action(spec: TaskSpec, space: gym.Space) -> None:
        if isinstance(space, gym.spaces.Discrete):
            if not spec.is_discrete or int(space.n) != spec.num_actions:
                raise ValueError(f"action space {space} does not match task {spec.name} "
                                 f"({spec.action_kind}, size {spec.action_size})")
            return
        if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
            if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
                raise _space_error("action", space, "a Box action space must be bounded")
            if spec.is_discrete or space.shape[0] != spec.action_dim:
                raise ValueError(f"action space {space} does not match task {spec.name} "
                                 f"({spec.action_kind}, size {spec.action_size})")
            return
        raise _space_error("action", space, "need Discrete or a 1-D bounded Box")

    def _check_single(self, spec: TaskSpec, obs_space: gym.Space, action_space: gym.Space) -> None:
        self._check_action(spec, action_space)
        if spec.modality == "text":
            raise ValueError(f"{spec.name}: text tasks are supported through scalezero_adapters.MultiTaskEnv "
                             "(text as uint8 codes), not as single-task envs")
        box = obs_space
        if isinstance(obs_space, gym.spaces.Dict):
            keys = [k for k in obs_space.spaces if k != "action_mask"]
            if "action_mask" not in obs_space.spaces or len(keys) != 1:
                raise _space_error("observation", obs_space,
                                   "a Dict must hold one observation key plus 'action_mask' (or use MultiTaskEnv)")
            self.obs_key, box = keys[0], obs_space.spaces[keys[0]]
        if not isinstance(box, gym.spaces.Box):
            raise _space_error("observation", obs_space, "need a Box, a Dict with 'action_mask', or MultiTaskEnv's")
        if tuple(box.shape) != tuple(spec.obs_shape):
            raise ValueError(f"observation shape {box.shape} does not match task {spec.name} {spec.obs_shape}")

    def _check_multitask(self, obs_space: gym.spaces.Dict, action_space: gym.Space) -> None:
        layout = MultiTaskLayout.from_specs(self.specs)
        want = layout.observation_space()
        got = {k: getattr(v, "shape", None) for k, v in obs_space.spaces.items()}
        need = {k: getattr(v, "shape", None) for k, v in want.spaces.items()}
        if got != need or obs_space["task_id"] != want["task_id"]:
            raise ValueError(f"observation space {obs_space} is not the MultiTaskEnv space of the agent's tasks {want}")
        unified = layout.action_space()
        same = type(action_space) is type(unified) and getattr(action_space, "shape", None) == unified.shape
        if not same or (isinstance(unified, gym.spaces.Discrete) and action_space.n != unified.n):
            raise ValueError(f"action space {action_space} is not the MultiTaskEnv space of the agent's tasks "
                             f"{unified}")
        self.layout = layout

    # ------------------------------------------------------------------ acting
    def rows(self, obs: ObsSource) -> tuple[np.ndarray, list[Any]]:
        """Task id and native observation (what :meth:`Actor.act` takes) of every row of a batch."""
        if self.layout is not None:
            views = self.layout.task_views({k: obs[k] for k in obs.get_keys()})
            return np.array([v.task_id for v in views], dtype=np.int64), [v.obs for v in views]
        if self.obs_key is not None:
            n = len(obs[self.obs_key])
            natives = [{self.obs_key: obs[self.obs_key][i], "action_mask": obs["action_mask"][i]} for i in range(n)]
            return np.zeros(n, dtype=np.int64), natives
        arr = np.asarray(obs)
        return np.zeros(len(arr), dtype=np.int64), list(arr)

    def to_act(self, task_ids: np.ndarray, native: Sequence[Any]) -> np.ndarray:
        """Native actions -> Tianshou ``act`` rows (indices, or ``[-1, 1]`` vectors of the Box space)."""
        if not self.continuous_space:
            return np.asarray([int(a) for a in native], dtype=np.int64)
        width = self.action_space.shape[0]
        act = np.zeros((len(native), width), dtype=np.float32)
        for r, (t, a) in enumerate(zip(task_ids, native, strict=True)):
            if self.layout is not None and self.specs[int(t)].is_discrete:
                act[r] = self.layout.encode_action(int(t), a)  # mixed suites: +1 at the index, -1 elsewhere
            else:
                vec = np.asarray(a, dtype=np.float32)
                act[r, : vec.size] = vec
        return act

    def search_stats(self, out: ActOutput) -> Batch:
        """The ``policy`` sub-batch the buffer stores: padded search policy, root value, unified action
        (and the root's sampled actions when a task is continuous)."""
        n = len(out.policy)
        policy = np.zeros((n, self.policy_width), dtype=np.float32)
        for r, p in enumerate(out.policy):
            policy[r, : p.size] = p
        stats = Batch(search_policy=policy, root_value=np.asarray(out.root_value, dtype=np.float32),
                      unified_action=np.asarray(out.unified, dtype=np.float32))
        if self.has_continuous:
            sampled = np.zeros((n, self.K, self.P), dtype=np.float32)
            for r, s in enumerate(out.sampled_actions):
                if s is not None:
                    sampled[r, :, : s.shape[1]] = s
            stats.sampled_actions = sampled
        return stats

    # ------------------------------------------------------------------ stored data
    def task_ids(self, obs: ObsSource, index: np.ndarray) -> np.ndarray:
        """Task id of the stored observations at ``index``."""
        if self.layout is None:
            return np.zeros(np.shape(index), dtype=np.int64)
        return np.asarray(obs["task_id"][index], dtype=np.int64)

    def replay_obs(self, task_id: int, obs: ObsSource, index: np.ndarray) -> np.ndarray:
        """Stored observations at ``index`` (any shape) in task ``task_id``'s replay form ``[*index.shape, ...]``."""
        spec = self.specs[task_id]
        if self.layout is None:
            arr = obs[self.obs_key][index] if self.obs_key is not None else obs[index]
            return np.asarray(arr, dtype=spec.obs_dtype)
        size = spec.obs_shape[0]
        if spec.modality == "text":
            codes = np.asarray(obs["text"][index], dtype=np.uint8)
            flat = codes.reshape(-1, codes.shape[-1])
            texts = [bytes(row).split(b"\0", 1)[0].decode("ascii") for row in flat]
            tokens = self.model.tokenize_text(texts)
            return tokens.reshape(*codes.shape[:-1], tokens.shape[-1])
        if spec.modality == "image":
            return np.asarray(obs["image"][index][..., :size, :, :], dtype=spec.obs_dtype)
        return np.asarray(obs["vector"][index][..., :size], dtype=spec.obs_dtype)

    def legal(self, task_id: int, obs: ObsSource, index: np.ndarray) -> np.ndarray | None:
        """Legal-action masks ``bool [*index.shape, n_k]`` of a task with action masks, else None."""
        spec = self.specs[task_id]
        if not spec.has_action_mask:
            return None
        return np.asarray(obs["action_mask"][index][..., : spec.num_actions], dtype=bool)

    def same_obs(self, a: ObsSource, a_index: np.ndarray, b: ObsSource, b_index: np.ndarray) -> np.ndarray:
        """Whether the stored observations ``a[a_index]`` and ``b[b_index]`` are equal, element-wise over the index."""
        sources = [(a[k], b[k]) for k in a.get_keys()] if isinstance(a, Batch) else [(a, b)]
        equal = np.ones(np.shape(a_index), dtype=bool)
        for x, y in sources:
            xa, yb = np.asarray(x[a_index]), np.asarray(y[b_index])
            equal &= (xa == yb).reshape(*np.shape(a_index), -1).all(-1)
        return equal

