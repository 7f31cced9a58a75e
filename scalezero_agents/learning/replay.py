"""Replay of trajectory windows: one store per task, one ring per environment.

Each environment of a task writes its steps contiguously into its own ring, so a training window
(H steps from ``t``) and its bootstrap window (H observations from ``t + n``) are plain index ranges.
An episode ends with one extra *final* record holding the last observation (no action), marked
terminal or truncated; every step of the episode learns that record's index (``last``) when the
episode ends. A step is ready to start a window once everything its targets need is written: its
episode has ended, or ``t + H + n - 1`` is already in the ring.

Sampling is uniform over ready steps, or prioritised (PER, ``p^alpha`` with importance weights
``(N p)^-beta``), using a generator owned by the caller so that runs are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from scalezero_agents.learning.targets import NStepPlan, nstep_plan

STEP, TERMINAL, TRUNCATED = 0, 1, 2
_RUNNING = np.iinfo(np.int64).max // 4


@dataclass(frozen=True, kw_only=True)
class ReplayConfig:
    """Replay buffer settings (per task)."""

    capacity: int = 100_000
    """Transitions kept per task (split evenly across its environments; FIFO)."""
    td_steps: int = 5
    """n of the n-step value target."""
    prioritized: bool = False
    """Prioritised replay on |predicted value - target| of the window's first step."""
    priority_alpha: float = 0.6
    priority_beta: float = 0.4
    priority_eps: float = 1e-6

    def __post_init__(self) -> None:
        if not isinstance(self.capacity, int) or self.capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {self.capacity!r}")
        if not isinstance(self.td_steps, int) or self.td_steps < 1:
            raise ValueError(f"td_steps must be a positive int, got {self.td_steps!r}")
        if not 0.0 <= self.priority_alpha <= 1.0 or not 0.0 <= self.priority_beta <= 1.0:
            raise ValueError("priority_alpha and priority_beta must be in [0, 1]")
        if not self.priority_eps > 0.0:
            raise ValueError("priority_eps must be > 0")


class WindowBatch(NamedTuple):
    """A batch of training windows of one task (NumPy; the learner moves it to torch)."""

    task_id: int
    obs: np.ndarray
    """[b, H+1, *obs_shape] observations o_t .. o_{t+H} (clamped to the episode's last one)."""
    actions: np.ndarray
    """[b, H, P] float32 unified actions."""
    rewards: np.ndarray
    """[b, H] float32."""
    mask: np.ndarray
    """[b, H] float32: 1 where step t+k exists (has an action) in the episode."""
    policy: np.ndarray
    """[b, H, W] float32 search policy targets (W = A_k discrete, K sampled)."""
    sampled_actions: np.ndarray | None
    """[b, H, K, d_k] float32 root sampled actions (continuous tasks)."""
    legal: np.ndarray | None
    """[b, H, A_k] bool legal-action masks (tasks with masks)."""
    boot_obs: np.ndarray
    """[b, H, *obs_shape] bootstrap window o_{min(t+n+p, f)}."""
    boot_actions: np.ndarray
    """[b, H, P] actions of the bootstrap window."""
    plan: NStepPlan
    weights: np.ndarray
    """[b] float32 importance weights (1 without priorities)."""
    env_index: np.ndarray
    step_index: np.ndarray
    """[b] absolute step index t within its environment's ring (for priority updates)."""


class TaskReplay:
    """Replay for one task: ``num_envs`` rings of ``capacity // num_envs`` records.

    Args:
        task_id: index of the task in the agent's task list.
        num_envs: environments writing to this store (each gets its own ring).
        config: capacity, n-step and priority settings.
        window: H, steps per training window.
        discount: gamma of the task.
        obs_shape, obs_dtype: stored observation (text tasks store token ids).
        action_width: P, width of the unified action tensor.
        policy_width: A_k (discrete) or K (sampled search).
        sample_shape: ``(K, d_k)`` for continuous tasks, else None.
        legal_width: A_k when the task has action masks, else None.
    """

    def __init__(
        self,
        *,
        task_id: int,
        num_envs: int,
        config: ReplayConfig,
        window: int,
        discount: float,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | type,
        action_width: int,
        policy_width: int,
        sample_shape: tuple[int, int] | None = None,
        legal_width: int | None = None,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        cap = config.capacity // num_envs
        need = window + config.td_steps + 2
        if cap < need:
            raise ValueError(
                f"capacity {config.capacity} gives {cap} records per env; need at least {need} "
                f"(window {window} + td_steps {config.td_steps} + 2)"
            )
        self.task_id, self.num_envs, self.config = task_id, num_envs, config
        self.window, self.discount, self.cap = window, float(discount), cap
        E = num_envs
        self.obs = np.zeros((E, cap, *obs_shape), dtype=obs_dtype)
        self.action = np.zeros((E, cap, action_width), dtype=np.float32)
        self.reward = np.zeros((E, cap), dtype=np.float32)
        self.policy = np.zeros((E, cap, policy_width), dtype=np.float32)
        self.sampled = np.zeros((E, cap, *sample_shape), dtype=np.float32) if sample_shape else None
        self.legal = np.ones((E, cap, legal_width), dtype=bool) if legal_width else None
        self.root_value = np.zeros((E, cap), dtype=np.float32)
        self.kind = np.zeros((E, cap), dtype=np.int8)
        self.last = np.full((E, cap), _RUNNING, dtype=np.int64)
        self.priority = np.zeros((E, cap), dtype=np.float64)
        self.reanalysed = np.zeros((E, cap), dtype=np.int32)
        self.head = np.zeros(E, dtype=np.int64)
        self.ep_start = np.zeros(E, dtype=np.int64)
        self.max_priority = 1.0

    # ------------------------------------------------------------------ writing
    def add_step(
        self,
        env: int,
        obs: np.ndarray,
        action: np.ndarray,
        reward: float,
        policy: np.ndarray,
        root_value: float = 0.0,
        sampled_actions: np.ndarray | None = None,
        legal: np.ndarray | None = None,
    ) -> None:
        """Record one step of environment ``env``: o_t, the action taken, r_t and the search result."""
        if not np.isfinite(reward):
            raise ValueError(f"non-finite reward {reward!r} for task {self.task_id}")
        j = self._write(env, obs, STEP)
        self.action[env, j] = action
        self.reward[env, j] = reward
        self.policy[env, j] = policy
        self.root_value[env, j] = root_value
        if self.sampled is not None:
            if sampled_actions is None:
                raise ValueError("continuous tasks must store the root's sampled actions")
            self.sampled[env, j] = sampled_actions
        if self.legal is not None and legal is not None:
            self.legal[env, j] = legal
        if self.config.prioritized:
            self.priority[env, j] = self.max_priority

    def end_episode(self, env: int, final_obs: np.ndarray, *, terminated: bool) -> None:
        """Close the running episode of ``env`` with its last observation (terminal or truncated)."""
        start = self.ep_start[env]
        if self.head[env] == start:
            raise ValueError(f"env {env} of task {self.task_id}: an episode needs at least one step")
        j = self._write(env, final_obs, TERMINAL if terminated else TRUNCATED)
        self.action[env, j] = 0.0
        self.reward[env, j] = 0.0
        self.policy[env, j] = 0.0
        final = self.head[env] - 1
        first = max(start, self.head[env] - self.cap)
        self.last[env, np.arange(first, final + 1) % self.cap] = final
        self.ep_start[env] = self.head[env]

    def truncate_running(self, env: int) -> None:
        """Close ``env``'s running episode as truncated when its next observation was never seen.

        The newest step's record becomes the episode's final (truncated) observation, so every kept step keeps
        its true successor and value targets bootstrap where the episode was cut. Nothing moves (a ring that
        has wrapped keeps every other record); a one-step episode leaves a lone final record that no window
        samples.
        """
        start, head = int(self.ep_start[env]), int(self.head[env])
        if head == start:
            return
        final = head - 1
        j = final % self.cap
        self.kind[env, j] = TRUNCATED
        self.action[env, j] = 0.0
        self.reward[env, j] = 0.0
        self.policy[env, j] = 0.0
        self.priority[env, j] = 0.0
        first = max(start, head - self.cap)
        self.last[env, np.arange(first, final + 1) % self.cap] = final
        self.ep_start[env] = head

    def _write(self, env: int, obs: np.ndarray, kind: int) -> int:
        j = int(self.head[env] % self.cap)
        self.obs[env, j] = obs
        self.kind[env, j] = kind
        self.last[env, j] = _RUNNING
        self.priority[env, j] = 0.0
        self.reanalysed[env, j] = 0
        self.head[env] += 1
        return j

    # ------------------------------------------------------------------ sampling
    def _ranges(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.maximum(0, self.head - self.cap)
        hi = np.maximum(self.ep_start, self.head - self.window - self.config.td_steps + 1)
        return lo, np.maximum(hi, lo)

    def num_ready(self) -> int:
        """Upper bound on the windows that can be sampled now (ready steps incl. a few final records)."""
        lo, hi = self._ranges()
        return int((hi - lo).sum())

    def _candidates(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self._ranges()
        envs = np.concatenate([np.full(h - lo_, e) for e, (lo_, h) in enumerate(zip(lo, hi, strict=True))])
        steps = np.concatenate([np.arange(lo_, h) for lo_, h in zip(lo, hi, strict=True)])
        keep = self.kind[envs, steps % self.cap] == STEP
        return envs[keep].astype(np.int64), steps[keep].astype(np.int64)

    def sample(self, batch_size: int, rng: np.random.Generator) -> WindowBatch:
        """Sample ``batch_size`` windows (uniformly over ready steps, or by priority)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if self.config.prioritized:
            envs, steps = self._candidates()
            if envs.size == 0:
                raise RuntimeError(f"task {self.task_id}: no ready windows to sample yet")
            p = self.priority[envs, steps % self.cap] ** self.config.priority_alpha
            p = p / p.sum()
            pick = rng.choice(envs.size, size=batch_size, p=p)
            weights = (envs.size * p[pick]) ** (-self.config.priority_beta)
            return self.gather(envs[pick], steps[pick], (weights / weights.max()).astype(np.float32))
        lo, hi = self._ranges()
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            raise RuntimeError(f"task {self.task_id}: no ready windows to sample yet")
        envs_out, steps_out, have = [], [], 0
        for _ in range(64):  # rejection of the (rare) final-observation records
            flat = rng.integers(0, total, size=2 * batch_size)
            envs = np.searchsorted(np.cumsum(counts), flat, side="right")
            steps = lo[envs] + flat - (np.cumsum(counts) - counts)[envs]
            keep = self.kind[envs, steps % self.cap] == STEP
            envs_out.append(envs[keep])
            steps_out.append(steps[keep])
            have += int(keep.sum())
            if have >= batch_size:
                break
        else:
            raise RuntimeError(f"task {self.task_id}: no ready windows to sample yet")
        envs = np.concatenate(envs_out)[:batch_size].astype(np.int64)
        steps = np.concatenate(steps_out)[:batch_size].astype(np.int64)
        return self.gather(envs, steps)

    def gather(self, envs: np.ndarray, steps: np.ndarray, weights: np.ndarray | None = None) -> WindowBatch:
        """Build the windows starting at absolute steps ``steps`` of rings ``envs``."""
        H, n, cap = self.window, self.config.td_steps, self.cap
        e = envs[:, None]
        last = self.last[envs, steps % cap]
        last = np.where(last >= _RUNNING, steps + H + n + 1, last)[:, None]  # running: beyond the windows
        truncated = self.kind[envs, last[:, 0] % cap] == TRUNCATED
        ext = steps[:, None] + np.arange(H + n)[None, :]
        ext_idx = np.minimum(ext, last) % cap
        obs_idx = ext_idx[:, : H + 1]
        act_idx = ext_idx[:, :H]
        boot_idx = np.minimum(steps[:, None] + n + np.arange(H)[None, :], last) % cap
        mask = (ext[:, :H] < last).astype(np.float32)
        rewards = self.reward[e, ext_idx]
        plan = nstep_plan(rewards, (last[:, 0] - steps), truncated, window=H, td_steps=n, discount=self.discount)
        return WindowBatch(
            task_id=self.task_id,
            obs=self.obs[e, obs_idx],
            actions=self.action[e, act_idx],
            rewards=rewards[:, :H] * mask,
            mask=mask,
            policy=self.policy[e, act_idx],
            sampled_actions=None if self.sampled is None else self.sampled[e, act_idx],
            legal=None if self.legal is None else self.legal[e, act_idx],
            boot_obs=self.obs[e, boot_idx],
            boot_actions=self.action[e, boot_idx],
            plan=plan,
            weights=np.ones(len(envs), dtype=np.float32) if weights is None else weights,
            env_index=envs.copy(),
            step_index=steps.copy(),
        )

    def update_priorities(self, envs: np.ndarray, steps: np.ndarray, priorities: np.ndarray) -> None:
        """Set the priorities of sampled windows (ignored entries already overwritten)."""
        if not self.config.prioritized:
            return
        alive = steps >= self.head[envs] - self.cap
        pr = np.abs(priorities[alive]) + self.config.priority_eps
        self.priority[envs[alive], steps[alive] % self.cap] = pr
        if pr.size:
            self.max_priority = max(self.max_priority, float(pr.max()))

    # ------------------------------------------------------------------ reanalysis
    def oldest_steps(self, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        """(env, absolute step) of every action step in the oldest ``fraction`` of each ring."""
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        lo = np.maximum(0, self.head - self.cap)
        hi = lo + np.floor((self.head - lo) * fraction).astype(np.int64)
        envs = np.concatenate([np.full(h - a, e) for e, (a, h) in enumerate(zip(lo, hi, strict=True))])
        steps = np.concatenate([np.arange(a, h) for a, h in zip(lo, hi, strict=True)])
        keep = self.kind[envs, steps % self.cap] == STEP
        return envs[keep].astype(np.int64), steps[keep].astype(np.int64)

    def contexts(self, envs: np.ndarray, steps: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The real context of each step: up to ``length`` observations of its episode ending at the step
        (left-aligned, zero-padded), the actions between them, and the number of observations."""
        n, cap = len(envs), self.cap
        lo = np.maximum(0, self.head[envs] - cap)
        count = np.ones(n, dtype=np.int64)
        for back in range(1, length):  # extend backwards while the previous record is a step of the episode
            prev = steps - back
            ok = (count == back) & (prev >= lo) & (self.kind[envs, prev % cap] == STEP)
            count += ok
        first = steps - count + 1
        offs = np.arange(length)[None, :]
        idx = np.minimum(first[:, None] + offs, steps[:, None]) % cap
        obs = self.obs[envs[:, None], idx]
        actions = self.action[envs[:, None], idx]
        actions[offs >= (count[:, None] - 1)] = 0.0  # no action after the last observation (or padding)
        return obs, actions, count

    # ------------------------------------------------------------------ state
    _ARRAYS = ("obs", "action", "reward", "policy", "sampled", "legal", "root_value", "kind", "last",
               "priority", "reanalysed", "head", "ep_start")

    def state_dict(self) -> dict[str, object]:
        """Everything needed to continue exactly (arrays are copied)."""
        state: dict[str, object] = {k: getattr(self, k).copy() for k in self._ARRAYS if getattr(self, k) is not None}
        state["max_priority"] = self.max_priority
        return state

    def load_state_dict(self, state: dict[str, object]) -> None:
        for k in self._ARRAYS:
            mine = getattr(self, k)
            if mine is None:
                continue
            value = np.asarray(state[k])
            if value.shape != mine.shape or value.dtype != mine.dtype:
                raise ValueError(f"replay state {k!r}: expected {mine.shape} {mine.dtype}, got {value.shape} "
                                 f"{value.dtype}")
            mine[...] = value
        self.max_priority = float(state["max_priority"])  # type: ignore[arg-type]

    def __len__(self) -> int:
        """Records currently stored (steps plus final observations)."""
        return int(np.minimum(self.head, self.cap).sum())
