"""The Tianshou 2.0.1 integration on the stock Collector / buffers / OffPolicyTrainer, real envs, real torch."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch
from scalezero_adapters import TaskSpec, make_task, multitask_env_fns
from tianshou.data import Batch, Collector, PrioritizedVectorReplayBuffer, VectorReplayBuffer
from tianshou.env import DummyVectorEnv
from tianshou.trainer import OffPolicyTrainerParams
from tianshou.utils.torch_utils import policy_within_training_step

from scalezero_agents.config import preset
from scalezero_agents.integrations.tianshou import (
    ScaleZeroAlgorithm,
    ScaleZeroAlgorithmFactory,
    ScaleZeroPolicy,
    ScaleZeroTrainingStats,
    TemperatureSchedule,
    prefill,
    window_batches,
)
from scalezero_agents.learning.replay import ReplayConfig, TaskReplay

FAST = {"search.num_simulations": 4, "eval_simulations": 4, "learner.batch_size": 16, "search.num_samples": 4}


def _config(**extra: object):
    return preset("tiny", **{**FAST, **extra})


def _algorithm(tasks, venv, seed: int = 0, **extra: object) -> ScaleZeroAlgorithm:
    policy = ScaleZeroPolicy(tasks=tasks, config=_config(**extra), seed=seed, action_space=venv.action_space[0],
                             observation_space=venv.observation_space[0])
    return ScaleZeroAlgorithm(policy=policy)


def _params(train: Collector, test: Collector | None = None, **kw: object) -> OffPolicyTrainerParams:
    base = dict(training_collector=train, test_collector=test, max_epochs=1, epoch_num_steps=32,
                collection_step_num_env_steps=4, update_step_num_gradient_steps_per_sample=0.25, batch_size=16,
                test_step_num_episodes=2, verbose=False, show_progress=False)
    return OffPolicyTrainerParams(**{**base, **kw})


# ---------------------------------------------------------------------------------------------- training runs
def test_trainer_epoch_stores_search_statistics():
    task = make_task("gym/CartPole-v1")
    train_envs = DummyVectorEnv([lambda: task.factory("train") for _ in range(2)])
    test_envs = DummyVectorEnv([lambda: task.factory("eval") for _ in range(2)])
    algorithm = _algorithm([task], train_envs)
    buffer = VectorReplayBuffer(2_000, 2)
    train = Collector(algorithm, train_envs, buffer)
    steps = prefill(train, 40)
    assert steps >= 40 and len(buffer) == steps
    assert not buffer.unfinished_index().size  # whole episodes only
    schedule = TemperatureSchedule(algorithm.policy, 64, offset=steps)
    updates_before = algorithm.learner.updates
    result = algorithm.run_training(_params(train, Collector(algorithm, test_envs), training_fn=schedule))
    assert result.update_step > 0 and algorithm.learner.updates - updates_before == 8  # 0.25 per env step
    assert algorithm.policy.temperature == algorithm.policy.agent.config.collect_temperature((32 - 4 + steps) / 64)
    idx = buffer.sample_indices(0)
    stats = buffer.policy
    assert stats.search_policy.shape == (2_000, 2) and stats.unified_action.shape == (2_000, 1)
    probs = stats.search_policy[idx]
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert np.all(probs >= 0) and np.all(np.isfinite(stats.root_value[idx]))
    np.testing.assert_array_equal(stats.unified_action[idx, 0], buffer.act[idx])  # the action that was taken
    assert set(np.unique(buffer.act[idx])) <= {0, 1}


def test_update_returns_training_stats_and_priorities():
    task = make_task("gym/CartPole-v1")
    envs = DummyVectorEnv([lambda: task.factory("train") for _ in range(2)])
    algorithm = _algorithm([task], envs)
    buffer = PrioritizedVectorReplayBuffer(2_000, 2, alpha=0.6, beta=0.4)
    collector = Collector(algorithm, envs, buffer)
    prefill(collector, 30)
    before = buffer.weight[buffer.sample_indices(0)].copy()
    with policy_within_training_step(algorithm.policy):
        stats = algorithm.update(buffer, sample_size=16)
    assert isinstance(stats, ScaleZeroTrainingStats)
    assert np.isfinite(stats.loss) and stats.num_tasks == 1 and stats.lr > 0
    assert "gym/CartPole-v1/value" in stats._metrics
    assert not np.allclose(buffer.weight[buffer.sample_indices(0)], before)  # priorities written back
    with pytest.raises(RuntimeError, match="training step"):
        algorithm.update(buffer, sample_size=16)


def test_continuous_pendulum_epoch_with_action_scaling():
    task = make_task("gym/Pendulum-v1")
    envs = DummyVectorEnv([lambda: gym.make("Pendulum-v1") for _ in range(2)])  # raw env: Box(-2, 2)
    algorithm = _algorithm([task], envs)
    policy = algorithm.policy
    assert policy.action_scaling and policy.action_bound_method == "clip"
    buffer = VectorReplayBuffer(1_000, 2)
    result = algorithm.run_training(_params(Collector(algorithm, envs, buffer), epoch_num_steps=16))
    assert result.update_step > 0
    idx = buffer.sample_indices(0)
    assert np.all(np.abs(buffer.act[idx]) <= 1.0) and buffer.act.shape[1:] == (1,)
    assert buffer.policy.sampled_actions.shape[1:] == (4, 1)  # K = 4 samples of d = 1
    np.testing.assert_allclose(buffer.policy.search_policy[idx].sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(policy.map_action(np.array([[1.0], [-0.5]])), [[2.0], [-1.0]])


def test_two_task_multitask_env_epoch_routes_rows_by_task_id():
    tasks = [make_task("gym/CartPole-v1"), make_task("gym/Acrobot-v1")]
    envs = DummyVectorEnv(multitask_env_fns(tasks, envs_per_task=1))
    algorithm = _algorithm(tasks, envs)
    buffer = VectorReplayBuffer(1_000, 2)
    train = Collector(algorithm, envs, buffer)
    result = algorithm.run_training(_params(train, epoch_num_steps=16))
    assert result.update_step > 0
    idx = buffer.sample_indices(0)
    task_ids = buffer.obs.task_id[idx]
    assert set(np.unique(task_ids)) == {0, 1}
    probs = buffer.policy.search_policy[idx]  # padded to Acrobot's 3 actions; CartPole rows use 2
    assert probs.shape[1] == 3 and np.all(probs[task_ids == 0, 2] == 0)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    with policy_within_training_step(algorithm.policy):
        stats = algorithm.update(buffer, sample_size=32)
    assert stats.num_tasks == 2
    assert {"gym/CartPole-v1/loss", "gym/Acrobot-v1/loss"} <= set(stats._metrics)


def test_mixed_discrete_and_continuous_actions_are_encoded_for_the_unified_space():
    tasks = [make_task("gym/CartPole-v1"), make_task("gym/Pendulum-v1")]
    envs = DummyVectorEnv(multitask_env_fns(tasks, envs_per_task=1))
    algorithm = _algorithm(tasks, envs)
    obs, _ = envs.reset(seed=0)
    batch = Batch(obs=obs, info=Batch())  # as the Collector builds it: Dict observations become a Batch
    out = algorithm.policy(batch)
    layout = envs.get_env_attr("layout", 0)[0]
    assert out.act.shape == (2, 2)
    native, _ = layout.decode_action(0, out.act[0], batch.obs.action_mask[0])
    assert native == int(out.policy.unified_action[0, 0])  # CartPole row: +1 at the chosen index, -1 elsewhere
    np.testing.assert_allclose(out.act[1, :1], out.policy.unified_action[1, :1])  # Pendulum row: its vector


# ---------------------------------------------------------------------------------------------- acting
def test_greedy_outside_training_step_and_exploring_inside():
    task = make_task("gym/CartPole-v1")
    envs = DummyVectorEnv([lambda: task.factory("eval") for _ in range(8)])
    policy = _algorithm([task], envs, **{"eval_simulations": 8, "search.num_simulations": 8}).policy
    obs, _ = envs.reset(seed=3)
    greedy = [policy(Batch(obs=obs, info=Batch())) for _ in range(2)]  # fresh contexts both times
    assert not policy.is_within_training_step
    np.testing.assert_array_equal(greedy[0].act, greedy[0].policy.search_policy.argmax(1))
    np.testing.assert_array_equal(greedy[0].policy.search_policy, greedy[1].policy.search_policy)  # no noise
    policy.temperature = 1.0
    greedy_steps = policy._contexts[False].actor.steps.clone()
    with policy_within_training_step(policy):
        explore = policy(Batch(obs=obs, info=Batch()))
    assert not np.array_equal(explore.policy.search_policy, greedy[0].policy.search_policy)  # root noise
    assert policy._contexts[True] is not policy._contexts[False]  # separate contexts per mode
    assert torch.equal(policy._contexts[False].actor.steps, greedy_steps)  # exploring left greedy ones alone


def test_any_subset_of_ready_envs_keeps_each_envs_context():
    task = make_task("gym/CartPole-v1")
    envs = DummyVectorEnv([lambda: task.factory("eval") for _ in range(3)])
    policy = _algorithm([task], envs).policy
    obs, _ = envs.reset(seed=0)
    first = policy(Batch(obs=obs, info=Batch()))
    handles = first.state
    assert len(set(handles.tolist())) == 3
    pool = policy._contexts[False]
    rows = [pool.row_of[int(h)] for h in handles]
    sub = policy(Batch(obs=obs[[0, 2]], info=Batch()), state=handles[[0, 2]])
    np.testing.assert_array_equal(sub.state, handles[[0, 2]])
    assert pool.actor.steps[rows].tolist() == [2, 1, 2]  # only envs 0 and 2 advanced
    alone = policy(Batch(obs=obs[[1]], info=Batch()), state=np.zeros(1, np.int64))  # env 1 restarts
    assert pool.actor.steps[pool.row_of[int(alone.state[0])]] == 1
    np.testing.assert_allclose(alone.policy.search_policy, first.policy.search_policy[[1]])  # batch-independent
    collector = Collector(policy, envs)  # the Collector shrinks the ready set in n_episode mode
    stats = collector.collect(n_episode=5, reset_before_collect=True)
    assert stats.n_collected_episodes == 5


def test_context_pool_limits_and_eviction_are_reported():
    task = make_task("gym/CartPole-v1")
    envs = DummyVectorEnv([lambda: task.factory("eval") for _ in range(3)])
    policy = ScaleZeroPolicy(tasks=[task], config=_config(), max_envs=2, action_space=envs.action_space[0],
                             observation_space=envs.observation_space[0])
    obs, _ = envs.reset(seed=0)
    with pytest.raises(ValueError, match="max_envs"):
        policy(Batch(obs=obs, info=Batch()))
    first = policy(Batch(obs=obs[:2], info=Batch()))
    policy(Batch(obs=obs[2:], info=Batch()))  # a third episode takes the least recently used row
    with pytest.warns(RuntimeWarning, match="no longer knows"):
        again = policy(Batch(obs=obs[:1], info=Batch()), state=first.state[:1])
    assert again.state[0] != first.state[0]


# ---------------------------------------------------------------------------------------------- windows
def _spec() -> TaskSpec:
    return TaskSpec(name="gym/toy", family="gym", modality="vector", obs_shape=(3,), obs_dtype="float32",
                    action_kind="discrete", num_actions=2, discount=0.9, max_episode_steps=100, eval_protocol="toy")


def _episodes(buffer: VectorReplayBuffer, native: TaskReplay | None) -> dict[str, list[int]]:
    """Write episodes A (terminated, 4 steps), B (truncated, 7) to env 0 and D (3 steps, then interrupted by a
    reset: spliced onto E), E (terminated, 3) and C (12, running) to env 1; the same episodes to a native
    replay (D as truncated, C as truncated at its newest step). Returns the buffer indices of each episode."""
    where: dict[str, list[int]] = {}
    plan = [("A", 0, 4, "term"), ("B", 0, 7, "trunc"), ("D", 1, 3, "cut"), ("E", 1, 3, "term"), ("C", 1, 12, "run")]
    for e, (name, env, length, end) in enumerate(plan):
        for k in range(length):
            last = k == length - 1
            obs, nxt = np.array([e, k, 1.0], np.float32), np.array([e, k + 1, 1.0], np.float32)
            a, r = (k + e) % 2, float(k + 1 + 10 * e)
            probs = np.array([0.2 + 0.1 * (k % 3), 0.8 - 0.1 * (k % 3)], np.float32)
            step = Batch(obs=obs[None], act=np.array([a]), rew=np.array([r]), obs_next=nxt[None],
                         terminated=np.array([last and end == "term"]), truncated=np.array([last and end == "trunc"]),
                         info=Batch(), policy=Batch(search_policy=probs[None], root_value=np.zeros(1, np.float32),
                                                    unified_action=np.array([[a]], np.float32)))
            where.setdefault(name, []).append(int(buffer.add(step, buffer_ids=[env])[0][0]))
            if native is not None:
                native.add_step(e, obs, np.array([a], np.float32), r, probs)
        if native is not None:
            native.end_episode(e, np.array([e, length, 1.0], np.float32), terminated=end == "term")
    return where


def _windows(buffer, indices, spec):
    policy = ScaleZeroPolicy(tasks=[spec], config=_config(), action_space=gym.spaces.Discrete(2),
                             observation_space=gym.spaces.Box(-np.inf, np.inf, (3,), np.float32))
    [(rows, wb)] = window_batches(buffer, np.asarray(indices), codec=policy.codec, window=5, td_steps=5)
    np.testing.assert_array_equal(rows, np.arange(len(indices)))
    return wb


def test_windows_equal_the_native_replay_at_terminations_truncations_splices_and_the_head():
    spec = _spec()
    buffer = VectorReplayBuffer(200, 2)
    native = TaskReplay(task_id=0, num_envs=5, config=ReplayConfig(capacity=500, td_steps=5), window=5, discount=0.9,
                        obs_shape=(3,), obs_dtype=np.float32, action_width=1, policy_width=2)
    where = _episodes(buffer, native)
    for e, name in enumerate("ABDEC"):
        ours = _windows(buffer, where[name], spec)
        steps = np.arange(len(where[name]))
        theirs = native.gather(np.full(len(steps), e), steps)
        for field in ("obs", "actions", "rewards", "mask", "policy", "boot_obs", "boot_actions", "weights"):
            np.testing.assert_array_equal(getattr(ours, field), getattr(theirs, field), err_msg=f"{name}.{field}")
        for field in ours.plan._fields:
            np.testing.assert_allclose(getattr(ours.plan, field), getattr(theirs.plan, field), err_msg=name + field)


def test_windows_hand_checked_around_episode_ends():
    buffer = VectorReplayBuffer(200, 2)
    where = _episodes(buffer, None)
    t2_of_a, t4_of_b, t1_of_d = where["A"][2], where["B"][4], where["D"][1]
    wb = _windows(buffer, [t2_of_a, t4_of_b, t1_of_d], _spec())
    np.testing.assert_array_equal(wb.mask, [[1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]])
    # A terminated after step 3: o_4 is terminal, repeated past the end; no bootstrap anywhere
    np.testing.assert_array_equal(wb.obs[0, :, 1], [2, 3, 4, 4, 4, 4])
    np.testing.assert_array_equal(wb.plan.boot_on[0], 0)
    np.testing.assert_allclose(wb.plan.reward_sum[0, :2], [3 + 0.9 * 4, 4])
    np.testing.assert_array_equal(wb.rewards[0], [3, 4, 0, 0, 0])
    # B truncated after step 6: bootstrap from o_7 = obs_next of the last step
    np.testing.assert_array_equal(wb.plan.boot_on[1], 1)
    np.testing.assert_array_equal(wb.boot_obs[1, :, 1], [7, 7, 7, 7, 7])
    np.testing.assert_allclose(wb.plan.boot_discount[1, :3], [0.9**3, 0.9**2, 0.9])
    # D was cut by a reset and E follows in the same sub-buffer: the link D -> E is not followed
    assert buffer.next(where["D"][2]) == where["E"][0]
    np.testing.assert_array_equal(wb.obs[2, :, :2], [[2, 1], [2, 2], [2, 3], [2, 3], [2, 3], [2, 3]])
    np.testing.assert_array_equal(wb.plan.boot_on[2], 1)
    np.testing.assert_array_equal(wb.actions[2, 2:], 0)


# ---------------------------------------------------------------------------------------------- errors, state, API
def test_clear_errors_for_unsupported_spaces_and_buffers():
    cart = make_task("gym/CartPole-v1")
    box4 = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    cases = [
        (gym.spaces.MultiDiscrete([2, 2]), box4, "unsupported action space"),
        (gym.spaces.Box(-1, 1, (2, 2)), box4, "unsupported action space"),
        (gym.spaces.Discrete(3), box4, "does not match task"),
        (gym.spaces.Discrete(2), gym.spaces.Tuple([box4]), "unsupported observation space"),
        (gym.spaces.Discrete(2), gym.spaces.Box(-1, 1, (5,)), "observation shape"),
        (gym.spaces.Discrete(2), gym.spaces.Dict({"a": box4, "b": box4}), "unsupported observation space"),
    ]
    for action_space, obs_space, message in cases:
        with pytest.raises(ValueError, match=message):
            ScaleZeroPolicy(tasks=[cart], config=_config(), action_space=action_space, observation_space=obs_space)
    with pytest.raises(ValueError, match="MultiTaskEnv"):
        ScaleZeroPolicy(tasks=[cart, make_task("gym/Acrobot-v1")], config=_config(),
                        action_space=gym.spaces.Discrete(3), observation_space=box4)
    with pytest.raises(ValueError, match="either agent"):
        ScaleZeroPolicy(tasks=[cart], action_space=gym.spaces.Discrete(2), observation_space=box4)
    policy = ScaleZeroPolicy(tasks=[cart], config=_config(), action_space=gym.spaces.Discrete(2),
                             observation_space=box4)
    envs = DummyVectorEnv([lambda: cart.factory("train") for _ in range(2)])
    for kwargs, message in (({"ignore_obs_next": True}, "obs_next"), ({}, "no search statistics")):
        buffer = VectorReplayBuffer(100, 2, **kwargs)
        Collector(policy, envs, buffer).collect(n_step=8, random=True, reset_before_collect=True)
        with pytest.raises(ValueError, match=message):
            window_batches(buffer, buffer.sample_indices(4), codec=policy.codec, window=5, td_steps=5)


def test_state_dict_round_trip_restores_model_target_optimizer_and_schedule():
    task = make_task("gym/CartPole-v1")
    envs = DummyVectorEnv([lambda: task.factory("train") for _ in range(2)])
    trained = _algorithm([task], envs, seed=0)
    buffer = VectorReplayBuffer(1_000, 2)
    prefill(Collector(trained, envs, buffer), 20)
    with policy_within_training_step(trained.policy):
        trained.update(buffer, sample_size=16)
    state = trained.state_dict()
    assert {"_optimizers", "learner_updates"} <= set(state) and any(k.startswith("target_model.") for k in state)
    fresh = _algorithm([task], envs, seed=1)
    fresh.load_state_dict(state)
    assert fresh.learner.updates == 1
    for a, b in zip(trained.state_dict().items(), fresh.state_dict().items(), strict=True):
        if isinstance(a[1], torch.Tensor):
            torch.testing.assert_close(a[1], b[1], msg=a[0])
    opt_a, opt_b = trained.learner.optimizer.state_dict(), fresh.learner.optimizer.state_dict()
    torch.testing.assert_close(opt_a["state"][0]["exp_avg"], opt_b["state"][0]["exp_avg"])
    assert not fresh.target_model.training
    clone = pickle.loads(pickle.dumps(trained))  # Tianshou's high-level persistence torch.saves the algorithm
    obs, _ = envs.reset(seed=0)
    np.testing.assert_array_equal(clone.policy(Batch(obs=obs, info=Batch())).act,
                                  trained.policy(Batch(obs=obs, info=Batch())).act)


def test_high_level_algorithm_factory_builds_a_working_algorithm():
    from tianshou.highlevel.config import OffPolicyTrainingConfig
    from tianshou.highlevel.env import Environments, EnvType, VectorEnvType
    from tianshou.highlevel.params.optim import OptimizerFactoryFactoryAdam

    task = make_task("gym/CartPole-v1")
    envs = Environments.from_factory_and_type(lambda mode: task.factory("train"), EnvType.DISCRETE,
                                              VectorEnvType.DUMMY, 2, 1)
    training = OffPolicyTrainingConfig(num_training_envs=2, num_test_envs=1, buffer_size=500)
    factory = ScaleZeroAlgorithmFactory(training, OptimizerFactoryFactoryAdam(), tasks=[task], config=_config())
    algorithm = factory.create_algorithm(envs, "cpu")
    assert isinstance(algorithm, ScaleZeroAlgorithm)
    train, _ = factory.create_train_test_collectors(algorithm, envs)
    with policy_within_training_step(algorithm.policy):
        train.collect(n_step=16)
        stats = algorithm.update(train.buffer, sample_size=8)
    assert np.isfinite(stats.loss)


def test_experiment_builder_needs_the_eval_extra():
    from scalezero_agents.integrations import tianshou as ts

    try:
        import joblib  # noqa: F401
    except ModuleNotFoundError:
        with pytest.raises(ModuleNotFoundError, match=r"tianshou\[eval\]"):
            _ = ts.ScaleZeroExperimentBuilder
        return
    assert ts.ScaleZeroExperimentBuilder.__name__ == "ScaleZeroExperimentBuilder"
