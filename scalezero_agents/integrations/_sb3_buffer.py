"""The SB3 face of the agent's per-task replay (``model.replay_buffer``).

ScaleZero learns from windows of whole trajectory segments, which SB3's transition buffers cannot give,
so the algorithm writes every step straight into the agent's :class:`TaskReplay` stores (one ring per
(sub-env, task) pair). This class only wraps those stores so that SB3's ``save_replay_buffer`` /
``load_replay_buffer`` and ``isinstance(model.replay_buffer, ReplayBuffer)`` keep working; it allocates
nothing itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer, ReplayBuffer

from scalezero_agents.learning.replay import TaskReplay

__all__ = ["ScaleZeroReplayBuffer"]


class ScaleZeroReplayBuffer(ReplayBuffer):
    """The agent's per-task replay stores, seen as an SB3 ``ReplayBuffer``.

    Args:
        replays: the agent's ``TaskReplay`` stores (shared, not copied).
        observation_space, action_space, device, n_envs: as for SB3 buffers (informational).

    ``add`` and ``sample`` are not used: the algorithm stores steps with ``Agent.observe`` and the learner
    samples windows itself.
    """

    def __init__(
        self,
        replays: Sequence[TaskReplay],
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "cpu",
        n_envs: int = 1,
    ) -> None:
        capacity = sum(r.cap * r.num_envs for r in replays)
        BaseBuffer.__init__(self, capacity, observation_space, action_space, device=device, n_envs=n_envs)
        self.replays = list(replays)
        self.optimize_memory_usage = False
        self.handle_timeout_termination = True

    def size(self) -> int:
        """Records currently stored over all tasks (steps plus episodes' final observations)."""
        return sum(len(r) for r in self.replays)

    def task_sizes(self) -> list[int]:
        """Records currently stored per task."""
        return [len(r) for r in self.replays]

    def add(self, *args: Any, **kwargs: Any) -> None:
        """Not used: ScaleZero stores steps (with their search statistics) through its agent."""
        raise NotImplementedError("ScaleZero stores steps through Agent.observe, not ReplayBuffer.add")

    def sample(self, *args: Any, **kwargs: Any) -> Any:
        """Not used: the learner samples training windows from the task replays."""
        raise NotImplementedError("ScaleZero samples windows with TaskReplay.sample, not ReplayBuffer.sample")

    def reset(self) -> None:
        """Not supported (the stores are owned by the agent)."""
        raise NotImplementedError("ScaleZero's replay cannot be reset in place")

    def truncate_running_episodes(self) -> None:
        """Close every ring's unfinished episode as truncated (see :meth:`TaskReplay.truncate_running`)."""
        for replay in self.replays:
            for env in range(replay.num_envs):
                replay.truncate_running(env)

    def copy_from(self, other: ScaleZeroReplayBuffer) -> None:
        """Copy the contents of ``other`` (e.g. unpickled by ``load_replay_buffer``) into these stores."""
        if len(other.replays) != len(self.replays):
            raise ValueError(f"the saved replay has {len(other.replays)} tasks, this model {len(self.replays)}")
        for task, (mine, theirs) in enumerate(zip(self.replays, other.replays, strict=True)):
            if theirs.num_envs != mine.num_envs or theirs.cap != mine.cap:
                raise ValueError(f"task {task}: the saved replay has {theirs.num_envs} rings of {theirs.cap} records, "
                                 f"this model {mine.num_envs} of {mine.cap}")
            mine.load_state_dict(theirs.state_dict())
