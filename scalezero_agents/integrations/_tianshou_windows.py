"""Training windows from a Tianshou replay buffer (private to the Tianshou integration).

The learner consumes :class:`~scalezero_agents.learning.replay.WindowBatch` es: for a sampled step ``t``, the
observations ``o_t .. o_{t+H}``, the H actions, rewards and search policies, a mask of the steps that exist,
and the n-step plan with its bootstrap window ``o_{min(t+n+p, f)}`` (``f``: the episode's last observation).
Here they are built from the trainer's own buffer:

* the step chain ``t, next(t), next(next(t)), ...`` (``H + n`` steps) comes from ``buffer.next``, which stays
  put at a ``done`` step and at the newest step of an unfinished episode;
* a link ``i -> next(i)`` also counts as broken when ``obs_next[i] != obs[next(i)]``: an episode interrupted
  by a collector reset is otherwise spliced onto the next one (integration.md E4);
* the chain ends at step ``t + L - 1``; ``o_f`` is that step's ``obs_next``. A termination ends the episode
  (no bootstrap); a truncation, the newest stored step and a broken link all leave ``o_f`` a real
  non-terminal state, so the targets bootstrap from it (as after a time limit). A chain of all ``H + n``
  steps is a running episode.

Positions past the chain's end are filled as the native replay fills them (the last observation, zero
actions, rewards and policies), so the two replays give the same windows for the same episodes.
"""

from __future__ import annotations

import numpy as np
from tianshou.data import Batch, ReplayBuffer

from scalezero_agents.integrations._tianshou_spaces import SpaceCodec
from scalezero_agents.learning.replay import WindowBatch
from scalezero_agents.learning.targets import nstep_plan


class StepChain:
    """The unrolled step chains of a batch of sampled buffer indices.

    Attributes:
        index: ``[B, H+n]`` buffer index of step ``t + k`` (only meaningful where ``valid``).
        valid: ``[B, H+n]`` bool, step ``t + k`` exists in the same episode.
        length: ``[B]`` L, the number of valid steps (>= 1).
        end: ``[B]`` buffer index of the last valid step (its ``obs_next`` is ``o_f``).
        terminal: ``[B]`` bool, the chain ends with a termination inside the ``H + n`` steps.
    """

    def __init__(self, buffer: ReplayBuffer, indices: np.ndarray, steps: int, codec: SpaceCodec) -> None:
        index = [np.asarray(indices, dtype=np.int64)]
        for _ in range(steps - 1):
            index.append(np.asarray(buffer.next(index[-1]), dtype=np.int64))
        self.index = np.stack(index, axis=1)
        prev, cur = self.index[:, :-1], self.index[:, 1:]
        linked = (cur != prev) & codec.same_obs(buffer.obs_next, prev, buffer.obs, cur)
        self.valid = np.cumprod(np.concatenate([np.ones_like(linked[:, :1]), linked], axis=1), axis=1).astype(bool)
        self.length = self.valid.sum(axis=1)
        rows = np.arange(len(self.index))
        self.end = self.index[rows, self.length - 1]
        self.terminal = (self.length < steps) & np.asarray(buffer.terminated[self.end], dtype=bool)


def _where(valid: np.ndarray, values: np.ndarray, fill: np.ndarray | float) -> np.ndarray:
    """``values`` where ``valid`` (broadcast over trailing axes), else ``fill``."""
    v = valid.reshape(valid.shape + (1,) * (values.ndim - valid.ndim))
    return np.where(v, values, fill)


def window_batches(
    buffer: ReplayBuffer,
    indices: np.ndarray,
    *,
    codec: SpaceCodec,
    window: int,
    td_steps: int,
    weights: np.ndarray | None = None,
) -> list[tuple[np.ndarray, WindowBatch]]:
    """One :class:`WindowBatch` per task present in the sample, with the sample rows it holds.

    Args:
        buffer: the Tianshou buffer (``ReplayBuffer`` or a vector buffer), filled by a ``Collector`` with this
            integration's policy (its ``policy`` sub-batch holds the search statistics).
        indices: ``[B]`` sampled buffer indices (window starts).
        codec: the policy's space codec (tasks, observation conversion).
        window: H. td_steps: n.
        weights: ``[B]`` importance weights (prioritised replay), or None.

    Returns:
        ``[(rows, batch), ...]``: ``rows`` are positions in ``indices``; ``batch.step_index`` holds the buffer
        indices (``env_index`` is 0).
    """
    check_buffer(buffer)
    H, n = window, td_steps
    chain = StepChain(buffer, indices, H + n, codec)
    stats: Batch = buffer.policy
    tasks = codec.task_ids(buffer.obs, chain.index[:, 0])
    weights = np.ones(len(indices), np.float32) if weights is None else np.asarray(weights, np.float32)
    out = []
    for task in np.unique(tasks):
        rows = np.nonzero(tasks == task)[0]
        out.append((rows, _task_batch(buffer, stats, chain, rows, int(task), codec, H, n, weights[rows])))
    return out


def _task_batch(buffer: ReplayBuffer, stats: Batch, chain: StepChain, rows: np.ndarray, task: int,
                codec: SpaceCodec, H: int, n: int, weights: np.ndarray) -> WindowBatch:
    spec = codec.specs[task]
    idx, valid, end = chain.index[rows], chain.valid[rows], chain.end[rows]
    length = chain.length[rows]
    act_valid = valid[:, :H]
    search_policy = np.asarray(stats.search_policy[idx[:, :H]], dtype=np.float32)
    searched = search_policy.sum(-1) > 0
    if np.any(act_valid & ~searched):
        raise ValueError("the buffer holds steps without search statistics (all-zero search_policy): steps "
                         "collected with collect(random=True) or by another policy cannot train ScaleZero")
    final_obs = codec.replay_obs(task, buffer.obs_next, end)[:, None]  # o_f, repeated past the chain's end
    seq_obs = _where(valid, codec.replay_obs(task, buffer.obs, idx), final_obs)
    actions = _where(valid, np.asarray(stats.unified_action[idx], np.float32), 0.0).astype(np.float32)
    rewards = _where(valid, np.asarray(buffer.rew[idx], np.float64), 0.0).astype(np.float32)
    width = spec.action_size if spec.is_discrete else codec.K
    policy = _where(act_valid, search_policy[..., :width], 0.0)
    sampled = None
    if not spec.is_discrete:
        raw = np.asarray(stats.sampled_actions[idx[:, :H]][..., : spec.action_dim], np.float32)
        sampled = _where(act_valid, raw, 0.0).astype(np.float32)
    legal = codec.legal(task, buffer.obs, idx[:, :H])
    if legal is not None:
        legal = _where(act_valid, legal, True)
    plan = nstep_plan(rewards, length, ~chain.terminal[rows], window=H, td_steps=n, discount=spec.discount)
    mask = act_valid.astype(np.float32)
    return WindowBatch(
        task_id=task, obs=seq_obs[:, : H + 1], actions=actions[:, :H], rewards=rewards[:, :H] * mask, mask=mask,
        policy=policy.astype(np.float32), sampled_actions=sampled, legal=legal, boot_obs=seq_obs[:, n: n + H],
        boot_actions=actions[:, n: n + H], plan=plan, weights=weights, env_index=np.zeros(len(rows), np.int64),
        step_index=idx[:, 0].copy())


def check_buffer(buffer: ReplayBuffer) -> None:
    """Raise ``ValueError`` for buffers the windows cannot be built from."""
    opts = buffer.options
    if opts["ignore_obs_next"] or opts["save_only_last_obs"] or opts["stack_num"] != 1:
        raise ValueError("ScaleZero needs a buffer that stores obs_next and no frame stack "
                         f"(ignore_obs_next=False, stack_num=1, save_only_last_obs=False), got {opts}")
    if len(buffer) == 0:
        raise ValueError("the buffer is empty; collect steps before updating")
    try:
        keys = set(buffer.policy.get_keys())
    except AttributeError:
        keys = set()
    if not {"search_policy", "unified_action"} <= keys:
        raise ValueError("the buffer holds no search statistics (policy.search_policy): fill it with a "
                         "Collector over ScaleZeroPolicy, not collect(random=True)")
