"""ScaleZero as a Stable-Baselines3 algorithm: real SB3 2.9, real envs, the real C core and real torch."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from scalezero_adapters import MultiTaskEnv, make_task, multitask_env_fns
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from scalezero_agents.integrations.sb3 import PredictState, ScaleZero, ScaleZeroReplayBuffer, spec_from_env
from scalezero_agents.learning.replay import STEP, TERMINAL, TRUNCATED

FAST = {"search.num_simulations": 4, "eval_simulations": 4, "learner.batch_size": 8}


def _cartpole(**kwargs) -> ScaleZero:
    env = make_vec_env("CartPole-v1", n_envs=4, seed=0)
    return ScaleZero("MlpPolicy", env, preset="tiny", config_overrides=FAST, learning_starts=64, seed=0, **kwargs)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[ScaleZero, str]:
    """A CartPole model after 192 env steps (4 envs), logging to CSV."""
    folder = str(tmp_path_factory.mktemp("log"))
    model = _cartpole()
    model.set_logger(configure(folder, ["csv"]))
    model.learn(192, log_interval=1)
    return model, folder


def test_learn_updates_at_the_replay_ratio_and_logs_losses(trained):
    model, folder = trained
    assert model.num_timesteps == 192
    # native trainer semantics: floor((steps - learning_starts) * replay_ratio) updates, batches of every task
    assert model.agent.learner.updates == math.floor((192 - 64) * 0.25) == model._n_updates
    # every step stored once, plus one final observation per finished episode
    assert model.replay_buffer.size() == 192 + model._episode_num
    assert isinstance(model.replay_buffer, ScaleZeroReplayBuffer)
    import csv

    rows = list(csv.DictReader(open(f"{folder}/progress.csv")))
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert losses and all(math.isfinite(v) for v in losses)
    assert any(r.get("train/gym/CartPole-v1/value") for r in rows)
    # SB3's lr schedule must not clobber the learner's own learning rate
    lr = model.agent.config.learner.learning_rate
    model._update_learning_rate(model.policy.optimizer)
    assert [g["lr"] for g in model.agent.learner.optimizer.param_groups] == [lr, lr]


def test_save_load_restores_the_full_agent(trained, tmp_path):
    model, _ = trained
    obs = model.env.reset()
    before, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "sz.zip")
    loaded = ScaleZero.load(tmp_path / "sz.zip")  # no env: predict-only
    after, _ = loaded.predict(obs, deterministic=True)
    assert np.array_equal(before, after)
    again, _ = model.predict(obs, deterministic=True)
    assert np.array_equal(before, again)  # predict is a pure function of its inputs
    sa, sb = model.policy.state_dict(), loaded.policy.state_dict()
    assert sa.keys() == sb.keys() and any(k.startswith("target.") for k in sa)
    for key in sa:
        if isinstance(sa[key], torch.Tensor):
            assert torch.equal(sa[key], sb[key]), key
    assert loaded.agent.learner.updates == model.agent.learner.updates
    oa, ob = model.policy.optimizer.state_dict(), loaded.policy.optimizer.state_dict()
    assert len(oa["state"]) == len(ob["state"]) > 0
    for k in oa["state"]:
        assert torch.equal(oa["state"][k]["exp_avg"], ob["state"][k]["exp_avg"])
    assert loaded.agent.rng.bit_generator.state == model.agent.rng.bit_generator.state

    # replay round trip: identical stores, then running episodes are closed
    model.save_replay_buffer(tmp_path / "replay.pkl")
    loaded.load_replay_buffer(tmp_path / "replay.pkl", truncate_last_traj=False)
    assert loaded.replay_buffer.size() == model.replay_buffer.size() > 0
    ra, rb = model.agent.replays[0], loaded.agent.replays[0]
    assert np.array_equal(ra.obs, rb.obs) and np.array_equal(ra.policy, rb.policy)
    loaded.load_replay_buffer(tmp_path / "replay.pkl")
    assert np.array_equal(rb.ep_start, rb.head)  # no unfinished episode left to splice onto

    # continue training on a new env
    loaded.set_env(make_vec_env("CartPole-v1", n_envs=4, seed=1))
    updates = loaded.agent.learner.updates
    loaded.learn(64, reset_num_timesteps=False)
    assert loaded.agent.learner.updates == updates + 16


def test_evaluate_policy_and_predict_state(trained):
    model, _ = trained
    env = DummyVecEnv([lambda: Monitor(gym.make("CartPole-v1", max_episode_steps=30))] * 2)
    rewards, lengths = evaluate_policy(model, env, n_eval_episodes=2, return_episode_rewards=True)
    assert len(rewards) == 2 and all(1 <= n <= 30 for n in lengths)
    obs = env.reset()
    action, state = model.predict(obs, deterministic=True)
    assert isinstance(state, PredictState) and state.steps.tolist() == [1, 1]
    obs, *_ = env.step(action)
    action, state = model.predict(obs, state=state, episode_start=np.array([False, True]), deterministic=True)
    assert state.steps.tolist() == [2, 1]  # env 0 continues its context, env 1 starts afresh
    single, _ = model.predict(obs[0], deterministic=True)
    assert np.ndim(single) == 0 and model.action_space.contains(int(single))
    with pytest.raises(ValueError, match="rows"):
        model.predict(obs[:1], state=state)


def test_evaluate_policy_equals_the_native_greedy_loop(trained):
    """SB3's evaluation (a stateless predict per step, context carried in PredictState) plays the same episodes
    as the native trainer's evaluation loop (one persistent greedy actor): same model, same env seeds."""
    from scalezero_agents.training.episodes import play_episodes

    model, _ = trained
    n, seed = 4, 11
    venv = DummyVecEnv([lambda: Monitor(gym.make("CartPole-v1", max_episode_steps=60))] * n)
    venv.seed(seed)  # sub-env k resets with seed + k
    sb3_returns, sb3_lengths = evaluate_policy(model, venv, n_eval_episodes=n, deterministic=True,
                                               return_episode_rewards=True)
    envs = [gym.make("CartPole-v1", max_episode_steps=60) for _ in range(n)]
    obs = [env.reset(seed=seed + k)[0] for k, env in enumerate(envs)]
    actor = model.agent.actor([0] * n, explore=False, seed=12345)
    returns, lengths = play_episodes(envs, obs, lambda o, rows: actor.act(o, rows).actions)
    # evaluate_policy lists episodes in the order they finish; compare as multisets of (return, length)
    assert sorted(zip(sb3_returns, sb3_lengths, strict=True)) == sorted(
        zip(returns.tolist(), lengths.tolist(), strict=True))
    assert len(set(lengths.tolist())) > 1  # the episodes differ, so the comparison is not vacuous


def test_callbacks_leave_the_training_actor_alone(tmp_path):
    model = _cartpole()
    eval_env = DummyVecEnv([lambda: Monitor(gym.make("CartPole-v1", max_episode_steps=15))] * 2)

    class Probe(BaseCallback):
        """Runs a full evaluation between acting and storing, and checks nothing of the collection moved."""

        def _init_callback(self) -> None:
            self.checks = 0

        def _on_step(self) -> bool:
            if self.n_calls % 15 == 0:
                actor = self.model.training_actor
                before = {k: v.clone() for k, v in actor.state_dict().items() if isinstance(v, torch.Tensor)}
                pending = self.model._pending[1].policy[0].copy()
                evaluate_policy(self.model, eval_env, n_eval_episodes=2)
                for k, v in actor.state_dict().items():
                    if isinstance(v, torch.Tensor):
                        assert torch.equal(v, before[k]), k
                assert np.array_equal(self.model._pending[1].policy[0], pending)
                self.checks += 1
            return True

    evaluation = EvalCallback(eval_env, n_eval_episodes=2, eval_freq=20, best_model_save_path=str(tmp_path),
                              log_path=str(tmp_path), verbose=0)
    checkpoint = CheckpointCallback(save_freq=20, save_path=str(tmp_path / "ckpt"), name_prefix="sz")
    probe = Probe()
    model.learn(160, callback=[evaluation, probe, checkpoint])
    assert probe.checks == 2
    assert len(evaluation.evaluations_results) == 2 and (tmp_path / "best_model.zip").is_file()
    saved = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert saved == ["sz_160_steps.zip", "sz_80_steps.zip"]
    restored = ScaleZero.load(tmp_path / "ckpt" / "sz_160_steps.zip")
    assert restored.agent.learner.updates == math.floor((156 - 64) * 0.25)  # saved before the last update


def test_continuous_actions_pendulum():
    model = ScaleZero("MlpPolicy", make_vec_env("Pendulum-v1", n_envs=4, seed=0), preset="tiny",
                      config_overrides=FAST, learning_starts=64, seed=0)
    grad_enabled = []
    search_step = model.agent.model.recurrent_inference

    def recording(*args, **kwargs):
        grad_enabled.append(torch.is_grad_enabled())
        return search_step(*args, **kwargs)

    model.agent.model.recurrent_inference = recording
    model.learn(128)
    assert len(grad_enabled) == 32 * 4 and not any(grad_enabled)  # autograd off in every simulation
    assert model.agent.learner.updates == 16
    replay = model.agent.replays[0]
    assert replay.sampled is not None and np.abs(replay.sampled[:, :32]).max() <= 1.0
    # the agent acts in [-1, 1]; the env gets its own bounds [-2, 2]
    np.testing.assert_allclose(model.policy.env_actions(np.zeros(2, np.int64), [np.ones(1), -np.ones(1)]),
                               [[2.0], [-2.0]])
    action, _ = model.predict(np.zeros(3, np.float32), deterministic=True)
    assert action.shape == (1,) and np.abs(action).max() <= 2.0
    again, _ = model.predict(np.zeros(3, np.float32), deterministic=True)
    assert np.array_equal(action, again)  # sampled search, yet greedy predict is reproducible


class ImageEnv(gym.Env):
    """Channel-last 16x16 RGB frames; 10-step episodes."""

    observation_space = spaces.Box(0, 255, (16, 16, 3), np.uint8)
    action_space = spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.integers(0, 256, (16, 16, 3), dtype=np.uint8), {}

    def step(self, action):
        self.t += 1
        frame = self.np_random.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        return frame, float(action == 1), self.t == 10, False, {}


def test_cnn_policy_on_channel_last_images():
    model = ScaleZero("CnnPolicy", make_vec_env(ImageEnv, n_envs=2, seed=0), preset="tiny", config_overrides=FAST,
                      learning_starts=16, seed=0)
    assert model.task_specs[0].modality == "image" and model.task_specs[0].obs_shape == (3, 16, 16)
    model.learn(48)
    assert model.agent.learner.updates == 8
    assert model.agent.replays[0].obs.dtype == np.uint8
    action, _ = model.predict(np.zeros((16, 16, 3), np.uint8), deterministic=True)  # transposed like SB3 does
    assert 0 <= int(action) < 3


def test_multi_input_policy_routes_sub_envs_to_their_tasks():
    tasks = [make_task("gym/CartPole-v1"), make_task("gym/Pendulum-v1")]
    env = DummyVecEnv(multitask_env_fns(tasks, envs_per_task=1))
    model = ScaleZero("MultiInputPolicy", env, preset="tiny", config_overrides=FAST, learning_starts=64, seed=0)
    assert [s.name for s in model.task_specs] == ["gym/CartPole-v1", "gym/Pendulum-v1"]
    assert model.agent.config.model.ffn == "moe"  # several tasks: the ScaleZero variant
    model.learn(96)
    sizes = model.replay_buffer.task_sizes()
    assert sizes[0] >= 48 and sizes[1] == 48  # each sub-env writes only into its own task
    assert model.agent.learner.updates == math.floor((96 - 64) / 2 * 0.25)
    obs = env.reset()
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (2, 2) and model.action_space.contains(actions[1].astype(np.float32))
    assert sorted(actions[0].tolist()) == [-1.0, 1.0]  # CartPole's action, one-hot in the mixed Box


def test_unpinned_multitask_env_switches_tasks_per_episode():
    tasks = [make_task("gym/CartPole-v1", max_episode_steps=12), make_task("gym/Acrobot-v1", max_episode_steps=12)]
    env = DummyVecEnv([lambda: MultiTaskEnv(tasks, schedule="round_robin")])
    model = ScaleZero("MultiInputPolicy", env, preset="tiny", config_overrides=FAST, learning_starts=10_000, seed=0)
    assert model._rings.tolist() == [[0, 0]]  # the sub-env has a ring in every task
    model.learn(50)
    sizes = model.replay_buffer.task_sizes()
    assert model._episode_num >= 4 and sizes[0] > 12 and sizes[1] > 12
    assert sum(sizes) == 50 + model._episode_num


class CounterEnv(gym.Env):
    """obs = [t, episode]; terminates at t == 7 (a TimeLimit below 7 truncates instead)."""

    observation_space = spaces.Box(-1e6, 1e6, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self) -> None:
        self.t, self.episode = 0, -1

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.episode = 0, self.episode + 1
        return np.array([self.t, self.episode], np.float32), {}

    def step(self, action):
        self.t += 1
        return np.array([self.t, self.episode], np.float32), 1.0, self.t == 7, False, {}


def _episodes(replay, ring):
    """Split ring ``ring`` into episodes: (list of step counters, final counter or None, kind of the end)."""
    out, steps = [], []
    for j in range(int(replay.head[ring])):
        t, kind = int(replay.obs[ring, j, 0]), int(replay.kind[ring, j])
        if kind == STEP:
            steps.append(t)
        else:
            out.append((steps, t, kind))
            steps = []
    return out


def test_episodes_end_with_their_real_last_observation_and_never_splice():
    env = DummyVecEnv([CounterEnv, lambda: gym.wrappers.TimeLimit(CounterEnv(), max_episode_steps=5)])
    model = ScaleZero("MlpPolicy", env, preset="tiny", config_overrides=FAST, learning_starts=10_000, seed=0)

    class StopAt(BaseCallback):
        def _on_step(self) -> bool:
            return self.n_calls != 11  # stop between acting and storing

    model.learn(30)  # 15 vector steps; the new learn below cuts the running episodes
    model.learn(30, callback=StopAt(), reset_num_timesteps=True)
    model.learn(20, reset_num_timesteps=False)
    for ring, (length, end_kind) in enumerate([(7, TERMINAL), (5, TRUNCATED)]):
        episodes = _episodes(model.agent.replays[0], ring)
        assert len(episodes) >= 4
        for steps, final, kind in episodes:
            assert steps == list(range(len(steps)))  # starts at reset, consecutive: no splicing
            assert final == len(steps)  # the final record is the real next observation
            if len(steps) == length:
                assert kind == end_kind
            else:  # cut by a restart: closed as truncated one step early
                assert kind == TRUNCATED and len(steps) < length
    assert any(len(steps) < 7 for steps, _, _ in _episodes(model.agent.replays[0], 0))  # a cut happened


def test_same_seed_same_run():
    params = []
    for _ in range(2):
        model = ScaleZero("MlpPolicy", make_vec_env("CartPole-v1", n_envs=4, seed=3), preset="tiny",
                          config_overrides=FAST, learning_starts=32, seed=3)
        model.learn(64)
        assert model.agent.learner.updates == 8
        params.append(torch.cat([p.detach().flatten() for p in model.agent.model.parameters()]))
    assert torch.equal(params[0], params[1])


def test_spec_from_env_and_bad_inputs():
    spec = spec_from_env(gym.make("CartPole-v1"))
    assert (spec.name, spec.num_actions, spec.obs_shape, spec.discount, spec.max_episode_steps) == (
        "gym/CartPole-v1", 2, (4,), 0.997, 500)
    assert spec_from_env(gym.make("Pendulum-v1"), discount=0.99).action_dim == 1

    class TupleEnv(CounterEnv):
        observation_space = spaces.Tuple((spaces.Box(-1, 1, (2,), np.float32), spaces.Discrete(3)))

    with pytest.raises(ValueError, match="unsupported observation space"):
        ScaleZero("MlpPolicy", TupleEnv(), preset="tiny")
    tasks = [make_task("gym/CartPole-v1"), make_task("gym/Acrobot-v1")]
    with pytest.raises(ValueError, match="MultiInputPolicy"):
        ScaleZero("MlpPolicy", DummyVecEnv(multitask_env_fns(tasks)), preset="tiny")
    with pytest.raises(ValueError, match="MultiTaskEnv"):
        ScaleZero("MultiInputPolicy", "CartPole-v1", preset="tiny")
    with pytest.raises(ValueError, match="image"):
        ScaleZero("CnnPolicy", "CartPole-v1", preset="tiny")
    with pytest.raises(ValueError, match="replay_ratio"):
        ScaleZero("MlpPolicy", "CartPole-v1", preset="tiny", replay_ratio=0)
    with pytest.raises(ValueError, match="given twice"):
        ScaleZero("MlpPolicy", "CartPole-v1", preset="tiny", learning_rate=1e-3,
                  config_overrides={"learner.learning_rate": 3e-4})
    with pytest.raises(ValueError, match="unknown config key"):
        ScaleZero("MlpPolicy", "CartPole-v1", preset="tiny", config_overrides={"search.simulations": 4})
