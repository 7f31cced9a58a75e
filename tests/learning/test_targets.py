"""n-step targets against hand-computed values, and the replay windows that feed them."""

from __future__ import annotations

import numpy as np
import pytest

from scalezero_agents.learning.replay import ReplayConfig, TaskReplay
from scalezero_agents.learning.targets import nstep_plan


def _plan(rel_last: int, truncated: bool):
    # H=3, n=2, gamma=0.5, window from t=1 of an episode with rewards r0..r3 = 1,2,3,4 and o_4 last.
    rewards = np.array([[2.0, 3.0, 4.0, 99.0, 99.0]])  # r1..r5; past the end must be ignored
    return nstep_plan(rewards, np.array([rel_last]), np.array([truncated]), window=3, td_steps=2, discount=0.5)


def test_terminal_episode_by_hand():
    plan = _plan(3, truncated=False)
    np.testing.assert_allclose(plan.reward_sum[0], [2 + 0.5 * 3, 3 + 0.5 * 4, 4])
    np.testing.assert_array_equal(plan.boot_on[0], [1, 0, 0])
    np.testing.assert_allclose(plan.boot_discount[0, 0], 0.25)
    assert plan.boot_pos[0, 0] == 0


def test_truncated_episode_bootstraps_from_last_observation():
    plan = _plan(3, truncated=True)
    np.testing.assert_array_equal(plan.boot_on[0], [1, 1, 1])
    np.testing.assert_allclose(plan.boot_discount[0], [0.25, 0.25, 0.5])
    np.testing.assert_array_equal(plan.boot_pos[0], [0, 1, 1])  # bootstrap window: o3, o4, o4


def test_running_episode_is_plain_nstep():
    rewards = np.arange(1.0, 6.0)[None, :]
    plan = nstep_plan(rewards, np.array([100]), np.array([False]), window=3, td_steps=2, discount=0.9)
    np.testing.assert_allclose(plan.reward_sum[0], [1 + 0.9 * 2, 2 + 0.9 * 3, 3 + 0.9 * 4], rtol=1e-6)
    np.testing.assert_array_equal(plan.boot_on[0], [1, 1, 1])
    np.testing.assert_array_equal(plan.boot_pos[0], [0, 1, 2])
    np.testing.assert_allclose(plan.boot_discount[0], [0.81] * 3, rtol=1e-6)


def test_bad_inputs():
    with pytest.raises(ValueError, match="rel_last"):
        nstep_plan(np.zeros((1, 5)), np.array([0]), np.array([False]), window=3, td_steps=2, discount=0.5)
    with pytest.raises(ValueError, match="rewards must be"):
        nstep_plan(np.zeros((1, 4)), np.array([1]), np.array([False]), window=3, td_steps=2, discount=0.5)


def _replay(capacity=64, num_envs=1, window=3, td=2, prioritized=False):
    return TaskReplay(task_id=0, num_envs=num_envs, config=ReplayConfig(capacity=capacity, td_steps=td,
                      prioritized=prioritized), window=window, discount=0.5, obs_shape=(1,),
                      obs_dtype=np.float32, action_width=1, policy_width=2)


def _episode(replay, env, length, terminated, base=0.0):
    for i in range(length):
        replay.add_step(env, np.array([base + i]), np.array([i % 2]), float(i + 1), np.array([0.5, 0.5]))
    replay.end_episode(env, np.array([base + length]), terminated=terminated)


def test_replay_window_matches_hand_computed_targets():
    replay = _replay()
    _episode(replay, 0, 4, terminated=True)  # rewards 1..4, o_4 final
    batch = replay.gather(np.array([0]), np.array([1]))
    np.testing.assert_array_equal(batch.obs[0, :, 0], [1, 2, 3, 4])
    np.testing.assert_array_equal(batch.mask[0], [1, 1, 1])
    np.testing.assert_array_equal(batch.boot_obs[0, :, 0], [3, 4, 4])
    np.testing.assert_allclose(batch.plan.reward_sum[0], [3.5, 5, 4])
    np.testing.assert_array_equal(batch.plan.boot_on[0], [1, 0, 0])
    late = replay.gather(np.array([0]), np.array([3]))
    np.testing.assert_array_equal(late.mask[0], [1, 0, 0])
    np.testing.assert_array_equal(late.obs[0, :, 0], [3, 4, 4, 4])
    np.testing.assert_array_equal(late.rewards[0], [4, 0, 0])


def test_only_ready_steps_are_sampled_and_final_records_never():
    replay = _replay(window=3, td=2)
    rng = np.random.default_rng(0)
    with pytest.raises(RuntimeError, match="no ready"):
        replay.sample(4, rng)
    _episode(replay, 0, 5, terminated=False)
    for i in range(7):  # a running episode: steps 6.. ; ready while t + H + n - 1 < head
        replay.add_step(0, np.array([100.0 + i]), np.array([0]), 1.0, np.array([1.0, 0.0]))
    batch = replay.sample(500, rng)
    starts = set(batch.step_index.tolist())
    assert 5 not in starts  # the final record of the first episode
    assert starts == {0, 1, 2, 3, 4, 6, 7, 8}  # head 13: running steps t <= 13 - 3 - 2 = 8


def test_ring_eviction_keeps_windows_consistent():
    replay = _replay(capacity=16, window=3, td=2)
    for ep in range(6):
        _episode(replay, 0, 4, terminated=ep % 2 == 0, base=10.0 * ep)
    batch = replay.sample(200, np.random.default_rng(1))
    first = batch.obs[:, 0, 0]
    # every window starts inside an episode and its observations count up until the episode's last one
    for row in range(len(first)):
        seq = batch.obs[row, :, 0]
        ep_base = 10.0 * np.floor(first[row] / 10.0)
        expected = np.minimum(first[row] + np.arange(4), ep_base + 4)
        np.testing.assert_array_equal(seq, expected)
    assert batch.step_index.min() >= replay.head[0] - replay.cap


def test_prioritized_sampling_prefers_high_priority():
    replay = _replay(prioritized=True)
    _episode(replay, 0, 10, terminated=True)
    rng = np.random.default_rng(0)
    replay.update_priorities(np.zeros(10, dtype=np.int64), np.arange(10), np.full(10, 1e-3))
    replay.update_priorities(np.array([0]), np.array([4]), np.array([10.0]))
    batch = replay.sample(400, rng)
    assert np.mean(batch.step_index == 4) > 0.9
    assert batch.weights.max() == pytest.approx(1.0)
    assert batch.weights[batch.step_index == 4].max() < 0.5  # importance weights correct the bias


def test_state_round_trip():
    replay = _replay()
    _episode(replay, 0, 6, terminated=False)
    other = _replay()
    other.load_state_dict(replay.state_dict())
    a = replay.gather(np.array([0, 0]), np.array([0, 2]))
    b = other.gather(np.array([0, 0]), np.array([0, 2]))
    for x, y in zip(a.plan, b.plan, strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.obs, b.obs)


def test_contexts_stop_at_episode_start():
    replay = _replay()
    _episode(replay, 0, 3, terminated=True)  # records 0,1,2 + final 3
    _episode(replay, 0, 5, terminated=True, base=10.0)  # records 4..8 + final 9
    obs, actions, count = replay.contexts(np.array([0, 0, 0]), np.array([1, 4, 7]), 4)
    np.testing.assert_array_equal(count, [2, 1, 4])
    np.testing.assert_array_equal(obs[0, :2, 0], [0, 1])
    np.testing.assert_array_equal(obs[1, :1, 0], [10])
    np.testing.assert_array_equal(obs[2, :, 0], [10, 11, 12, 13])
    np.testing.assert_array_equal(actions[2, :, 0], [0, 1, 0, 0])  # a_0..a_2 between them; none after o_3
    np.testing.assert_array_equal(actions[0, :, 0], [0, 0, 0, 0])


@pytest.mark.parametrize("cut_length", [1, 3])
def test_truncate_running_closes_in_place_even_after_the_ring_wrapped(cut_length):
    replay = _replay(capacity=12, window=2, td=1)
    for ep in range(3):  # 18 records in a 12-record ring: it has wrapped
        _episode(replay, 0, 5, terminated=True, base=10.0 * ep)
    for i in range(cut_length):
        replay.add_step(0, np.array([900.0 + i]), np.array([0]), 1.0, np.array([0.5, 0.5]))
    head = int(replay.head[0])
    replay.truncate_running(0)
    assert replay.head[0] == head and replay.ep_start[0] == head  # nothing moved; the episode is closed
    batch = replay.sample(300, np.random.default_rng(0))
    for row in range(len(batch.obs)):
        seq = batch.obs[row, :, 0]
        # windows never splice: each counts up inside one episode (a cut episode's last step is now its end)
        base = 900.0 if seq[0] >= 900 else 10.0 * np.floor(seq[0] / 10.0)
        last = base + (cut_length - 1 if base == 900.0 else 5)
        np.testing.assert_array_equal(seq, np.minimum(seq[0] + np.arange(len(seq)), last))
    if cut_length > 1:  # the cut episode's steps are sampled and bootstrap from its last observation
        assert (batch.obs[:, 0, 0] >= 900).any()
        assert replay.kind[0, (head - 1) % replay.cap] == 2  # TRUNCATED
