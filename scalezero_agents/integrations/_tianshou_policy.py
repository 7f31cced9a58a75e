"""``ScaleZeroPolicy``: the Tianshou 2.x policy that acts by searching the agent's world model."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from scalezero_adapters import Task, TaskSpec
from tianshou.algorithm.algorithm_base import Policy
from tianshou.data import Batch

from scalezero_agents.agent import Actor, Agent
from scalezero_agents.config import AgentConfig
from scalezero_agents.integrations._tianshou_spaces import SpaceCodec


class _Contexts:
    """Env contexts of one acting mode: an :class:`Actor` whose rows are lent to running episodes.

    An episode is known by its *handle* (an int > 0, returned to the Collector as the hidden state); a row is
    reused least-recently-used first once its episode has not acted for longest.
    """

    def __init__(self, agent: Agent, size: int, *, explore: bool, seed: int) -> None:
        self.actor: Actor = agent.actor([0] * size, explore=explore, seed=seed)
        self.size = size
        self.owner = np.zeros(size, dtype=np.int64)  # handle of the episode using each row (0: free)
        self.last_used = np.zeros(size, dtype=np.int64)
        self.clock = 0
        self.row_of: dict[int, int] = {}

    def bind(self, handles: np.ndarray, task_ids: np.ndarray, new_handle: Any) -> tuple[np.ndarray, np.ndarray, int]:
        """Rows for the given episode handles (0: a new episode); returns (rows, handles, unknown handles)."""
        if len(handles) > self.size:
            raise ValueError(f"{len(handles)} envs act at once but the policy keeps {self.size} contexts per mode; "
                             "raise ScaleZeroPolicy(max_envs=...)")
        self.clock += 1
        rows = np.full(len(handles), -1, dtype=np.int64)
        for i, h in enumerate(handles):
            row = self.row_of.get(int(h), -1)
            if row >= 0 and self.actor.task_ids[row] == task_ids[i]:
                rows[i] = row
        unknown = int(np.count_nonzero((rows < 0) & (handles != 0)))
        fresh = np.nonzero(rows < 0)[0]
        if fresh.size:
            busy = np.zeros(self.size, dtype=bool)
            busy[rows[rows >= 0]] = True
            order = np.argsort(np.where(busy, np.iinfo(np.int64).max, self.last_used), kind="stable")
            handles = handles.copy()
            for i, row in zip(fresh, order[: fresh.size], strict=True):
                self.row_of.pop(int(self.owner[row]), None)
                h = new_handle()
                self.owner[row], self.row_of[h] = h, int(row)
                self.actor.task_ids[row] = task_ids[i]  # bind the row to this episode's task
                handles[i], rows[i] = h, row
            self.actor.reset(rows[fresh].tolist())
        self.last_used[rows] = self.clock
        return rows, handles, unknown


class ScaleZeroPolicy(Policy):
    """Acts in Tianshou envs by MCTS over the agent's world model (ScaleZero / UniZero).

    ``forward`` runs one batched search for the rows it is given (any subset of ready envs) under
    ``torch.no_grad`` and returns ``Batch(act, state, policy)``: ``policy`` holds the search statistics the
    buffer stores for training (``search_policy``: the normalised visit distribution, padded to the widest
    task; ``root_value``; ``unified_action``: the agent's action encoding; ``sampled_actions`` when a task is
    continuous). Inside a training step (``is_within_training_step``) it explores (Dirichlet root noise,
    visit-count ``temperature``, ``config.search.num_simulations``); outside it acts greedily (no noise, most
    visited action, ``config.eval_simulations``).

    **Which env is a row.** Each episode's search context (its last real observations and actions) lives in
    a private actor row; the Collector carries the row's *handle* as the hidden ``state`` of that env: it
    slices the state with the ready env ids, and zeroes the entry of an env whose episode ended or that was
    reset, which starts a fresh context. So contexts follow envs through any subset of ready envs and reset
    exactly at episode starts, separately per collector.

    Continuous tasks emit actions in ``[-1, 1]``; the policy uses ``action_scaling=True`` and
    ``action_bound_method="clip"`` for ``Box`` action spaces so Tianshou maps them onto the env's bounds.

    Args:
        action_space: the env's action space.
        observation_space: the env's observation space (see the layouts in ``_tianshou_spaces``).
        tasks: the tasks (``Task`` or ``TaskSpec``, in task-id order) when the agent is built here.
        config: agent configuration (``scalezero_agents.preset(...)``) when the agent is built here.
        agent: an existing :class:`Agent` instead of ``tasks``/``config`` (e.g. one trained natively).
        seed: seeds model initialisation (when built here) and the search trees.
        max_envs: contexts kept per acting mode (at least the number of envs acting at once over all
            collectors of that mode).

    When the agent is built here, its own replay (unused: the Tianshou buffer is the replay) is allocated at
    its minimum size.
    """

    def __init__(
        self,
        *,
        action_space: gym.Space,
        observation_space: gym.Space,
        tasks: Sequence[Task | TaskSpec] | None = None,
        config: AgentConfig | None = None,
        agent: Agent | None = None,
        seed: int = 0,
        max_envs: int = 256,
    ) -> None:
        if not isinstance(action_space, gym.spaces.Discrete | gym.spaces.Box):
            raise ValueError(f"unsupported action space {action_space}: need Discrete or a 1-D bounded Box")
        continuous = isinstance(action_space, gym.spaces.Box)
        super().__init__(action_space=action_space, observation_space=observation_space,
                         action_scaling=continuous, action_bound_method="clip" if continuous else None)
        if agent is None:
            if tasks is None or config is None:
                raise ValueError("pass either agent=... or both tasks=... and config=...")
            agent = make_agent(tasks, config, seed=seed)
        elif tasks is not None or config is not None:
            raise ValueError("pass either agent=... or tasks=/config=, not both")
        if max_envs < 1:
            raise ValueError(f"max_envs must be >= 1, got {max_envs}")
        self.agent = agent
        self.model = agent.model  # registered: the policy's parameters are the world model's
        self.codec = SpaceCodec(agent.model, agent.config.search.num_samples, observation_space, action_space)
        self.seed, self.max_envs = seed, max_envs
        self.temperature = agent.config.collect_temperature(0.0)
        """Visit-count temperature of exploring actions (see :meth:`set_progress`)."""
        self._contexts: dict[bool, _Contexts] = {}
        self._handles = 0
        self._warned = False

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the acting contexts (search trees hold C buffers; contexts are transient and are
        rebuilt on first use), so ``torch.save(algorithm)`` works (Tianshou's high-level persistence)."""
        state = self.__dict__.copy()
        state["_contexts"] = {}
        return state

    @staticmethod
    def _compile() -> None:
        """Skip Tianshou's warm-up JIT of GAE / n-step kernels (seconds per process): nothing here uses them."""

    def set_progress(self, progress: float) -> None:
        """Set the exploration temperature from training progress in [0, 1] (the native schedule)."""
        self.temperature = self.agent.config.collect_temperature(float(np.clip(progress, 0.0, 1.0)))

    def _new_handle(self) -> int:
        self._handles += 1
        return self._handles

    def _pool(self, explore: bool) -> _Contexts:
        pool = self._contexts.get(explore)
        if pool is None:
            seed = self.seed * 2 + (0 if explore else 1)
            pool = self._contexts[explore] = _Contexts(self.agent, self.max_envs, explore=explore, seed=seed)
        return pool

    def forward(self, batch: Batch, state: Any = None, **kwargs: Any) -> Batch:
        """Search from every row of ``batch.obs``; returns ``Batch(act, state, policy)`` (see the class doc)."""
        task_ids, natives = self.codec.rows(batch.obs)
        n = len(task_ids)
        if state is None or (isinstance(state, Batch) and len(state.get_keys()) == 0):
            handles = np.zeros(n, dtype=np.int64)
        else:
            handles = np.asarray(state, dtype=np.int64).reshape(n)
        explore = bool(self.is_within_training_step)
        pool = self._pool(explore)
        rows, handles, unknown = pool.bind(handles, task_ids, self._new_handle)
        if unknown and not self._warned:
            self._warned = True
            warnings.warn(f"{unknown} env(s) passed a state this policy no longer knows (a context was evicted, or "
                          "the acting mode changed mid-episode); they start fresh contexts. Raise max_envs if "
                          "more envs act at once than it allows.", RuntimeWarning, stacklevel=2)
        out = pool.actor.act(natives, rows.tolist(), temperature=self.temperature if explore else 0.0)  # no_grad
        act = self.codec.to_act(task_ids, out.actions)
        return Batch(act=act, state=handles, policy=self.codec.search_stats(out))


def make_agent(tasks: Sequence[Task | TaskSpec], config: AgentConfig, *, seed: int = 0) -> Agent:
    """An :class:`Agent` for Tianshou: its native replay (unused) at the minimum size."""
    specs = [t.spec if isinstance(t, Task) else t for t in tasks]
    for i, spec in enumerate(specs):
        if not isinstance(spec, TaskSpec):
            raise ValueError(f"tasks[{i}] is a {type(spec).__name__}, not a Task or TaskSpec")
    minimum = config.model.train_steps + config.replay.td_steps + 2
    return Agent(specs, config.replace(**{"replay.capacity": minimum}), num_envs=1, seed=seed)
