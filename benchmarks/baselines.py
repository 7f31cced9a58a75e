"""Stable-Baselines3 baselines (DQN, PPO, SAC) under the ScaleZero benchmark protocol.

    python benchmarks/baselines.py --algo dqn --task gym/CartPole-v1 --steps 6000 --out bench_results/x/runs

Same environments as ScaleZero: every env comes from the task's factory (``make_task`` / ``make_suite``,
``factory("train")`` for training and ``factory("eval")`` for evaluation), so both see the same observations,
actions, action repeat, episode caps and training-only transforms (Atari reward clipping and life-loss
terminals). SB3 has no text policy: on Jericho the baselines see a hashed bag of words of the same text
(the valid-action list included) plus the action mask (:class:`HashedText`).

Same protocol as ``MultiTaskTrainer.evaluate``: an evaluation every ``eval_interval`` env steps of the task
(after the vector step that crosses a multiple) and one at the end, each of ``eval_episodes`` episodes run in
parallel on separate eval envs with deterministic actions, episode ``k`` of evaluation ``i`` reset with seed
``(seed * 1000 + i) * 10000 + k``. Training stops at the env-step budget (a PPO rollout is cut there).

Hyper-parameters are the tuned ones of rl-baselines3-zoo where an entry exists (``ZOO``; each names its
source), else SB3's defaults. Two budget rules keep them meaningful at CPU budgets of a few thousand steps,
and are recorded per run under ``config["adjusted"]``: ``learning_starts <= 10%`` of the budget, and a PPO
rollout (``n_steps * n_envs``) ``<= 25%`` of the budget, rounded down to whole mini-batches (``batch_size``
capped at the rollout size); replay buffers are capped at the budget (no effect: they are never filled).
VecNormalize (the zoo's ``normalize``) never normalises image observations, only their rewards.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

ALGOS = ("dqn", "ppo", "sac")
ACTION_KINDS = {"dqn": ("discrete",), "ppo": ("discrete", "continuous"), "sac": ("continuous",)}
TEXT_FEATURES = 512
"""Hash buckets of the Jericho bag-of-words features."""


def _lin(value: float) -> dict[str, float]:
    """The zoo's ``lin_<value>``: linear decay from ``value`` to 0 over training (built in :func:`_schedule`)."""
    return {"linear": value}


# Values only (facts), transcribed from DLR-RM/rl-baselines3-zoo hyperparams/*.yml. Keys: a task name or a
# family ("atari", "dmc", "jericho"); "n_envs", "normalize" (VecNormalize) and "policy_kwargs" are ours to apply.
ZOO: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    # rl-baselines3-zoo hyperparams/dqn.yml, CartPole-v1 ("Almost Tuned")
    ("dqn", "gym/CartPole-v1"): ("rl-baselines3-zoo hyperparams/dqn.yml CartPole-v1", {
        "learning_rate": 2.3e-3, "batch_size": 64, "buffer_size": 100_000, "learning_starts": 1_000, "gamma": 0.99,
        "target_update_interval": 10, "train_freq": 256, "gradient_steps": 128, "exploration_fraction": 0.16,
        "exploration_final_eps": 0.04, "policy_kwargs": {"net_arch": [256, 256]}}),
    # rl-baselines3-zoo hyperparams/dqn.yml, Acrobot-v1 ("Tuned")
    ("dqn", "gym/Acrobot-v1"): ("rl-baselines3-zoo hyperparams/dqn.yml Acrobot-v1", {
        "learning_rate": 6.3e-4, "batch_size": 128, "buffer_size": 50_000, "learning_starts": 0, "gamma": 0.99,
        "target_update_interval": 250, "train_freq": 4, "gradient_steps": -1, "exploration_fraction": 0.12,
        "exploration_final_eps": 0.1, "policy_kwargs": {"net_arch": [256, 256]}}),
    # rl-baselines3-zoo hyperparams/dqn.yml, atari (frame_stack 4 and AtariWrapper not applied: the adapter's
    # Atari protocol is shared with ScaleZero; optimize_memory_usage off)
    ("dqn", "atari"): ("rl-baselines3-zoo hyperparams/dqn.yml atari", {
        "learning_rate": 1e-4, "batch_size": 32, "buffer_size": 10_000, "learning_starts": 100_000,
        "target_update_interval": 1_000, "train_freq": 4, "gradient_steps": 1, "exploration_fraction": 0.1,
        "exploration_final_eps": 0.01}),
    # rl-baselines3-zoo hyperparams/ppo.yml, CartPole-v1 ("Tuned")
    ("ppo", "gym/CartPole-v1"): ("rl-baselines3-zoo hyperparams/ppo.yml CartPole-v1", {
        "n_envs": 8, "n_steps": 32, "batch_size": 256, "gae_lambda": 0.8, "gamma": 0.98, "n_epochs": 20,
        "ent_coef": 0.0, "learning_rate": _lin(1e-3), "clip_range": _lin(0.2)}),
    # rl-baselines3-zoo hyperparams/ppo.yml, Acrobot-v1
    ("ppo", "gym/Acrobot-v1"): ("rl-baselines3-zoo hyperparams/ppo.yml Acrobot-v1", {
        "normalize": True, "n_envs": 16, "n_steps": 256, "gae_lambda": 0.94, "gamma": 0.99, "n_epochs": 4,
        "ent_coef": 0.0}),
    # rl-baselines3-zoo hyperparams/ppo.yml, atari (frame_stack 4 and AtariWrapper not applied, as for DQN)
    ("ppo", "atari"): ("rl-baselines3-zoo hyperparams/ppo.yml atari", {
        "n_envs": 8, "n_steps": 128, "n_epochs": 4, "batch_size": 256, "learning_rate": _lin(2.5e-4),
        "clip_range": _lin(0.1), "vf_coef": 0.5, "ent_coef": 0.01}),
    # No DMC entry in the zoo: its MuJoCo defaults (hyperparams/ppo.yml "&mujoco-defaults", Ant-v4):
    # VecNormalize + SB3's PPO defaults
    ("ppo", "dmc"): ("rl-baselines3-zoo hyperparams/ppo.yml mujoco-defaults (no DMC entry)", {"normalize": True}),
    # No DMC entry in the zoo: its MuJoCo defaults (hyperparams/sac.yml "&mujoco-defaults", HalfCheetah-v3):
    # SB3's SAC defaults with learning_starts 10000
    ("sac", "dmc"): ("rl-baselines3-zoo hyperparams/sac.yml mujoco-defaults (no DMC entry)",
                     {"learning_starts": 10_000}),
}


def hyperparameters(algo: str, spec: Any, budget: int) -> tuple[dict[str, Any], str, dict[str, list[Any]]]:
    """The settings for ``algo`` on the task of ``spec`` at an env-step ``budget``.

    Returns ``(settings, source, adjusted)``: settings include ``n_envs`` and ``normalize``; ``adjusted`` maps
    each setting changed by the budget rules to ``[zoo value, value used]``.

    Raises:
        ValueError: unknown algorithm, or an algorithm that cannot act in the task's action space.
    """
    if algo not in ALGOS:
        raise ValueError(f"unknown baseline {algo!r}; choose from {ALGOS}")
    if spec.action_kind not in ACTION_KINDS[algo]:
        raise ValueError(f"{algo} cannot act on {spec.name} ({spec.action_kind} actions); "
                         f"it needs {' or '.join(ACTION_KINDS[algo])} actions")
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    source, values = ZOO.get((algo, spec.name)) or ZOO.get((algo, spec.family)) or ("SB3 defaults (no zoo entry)", {})
    hp: dict[str, Any] = {"n_envs": 1, "normalize": False, **values}
    adjusted: dict[str, list[Any]] = {}
    if algo in ("dqn", "sac"):
        starts = hp.get("learning_starts", 100)  # SB3's default for both
        if starts > budget // 10:
            adjusted["learning_starts"] = [starts, budget // 10]
            hp["learning_starts"] = budget // 10
        buffer = hp.get("buffer_size", 1_000_000)  # SB3's default for both
        if buffer > budget:  # no effect on learning (never filled), but image buffers are allocated up front
            adjusted["buffer_size"] = [buffer, budget]
            hp["buffer_size"] = budget
    else:
        n_steps, n_envs, batch = hp.get("n_steps", 2048), hp["n_envs"], hp.get("batch_size", 64)
        cap = max(8, budget // (4 * n_envs))
        if n_steps > cap:
            if cap * n_envs >= batch:  # whole mini-batches per rollout
                cap = (cap * n_envs // batch) * batch // n_envs
            adjusted["n_steps"] = [n_steps, cap]
            hp["n_steps"] = n_steps = cap
        if batch > n_steps * n_envs:
            adjusted["batch_size"] = [batch, n_steps * n_envs]
            hp["batch_size"] = n_steps * n_envs
    return hp, source, adjusted


def _schedule(value: Any) -> Any:
    from stable_baselines3.common.utils import LinearSchedule

    if isinstance(value, dict) and set(value) == {"linear"}:
        return LinearSchedule(start=float(value["linear"]), end=0.0, end_fraction=1.0)
    return value


# ---------------------------------------------------------------------------------------------- envs
def _hashed_text_wrapper() -> type:
    import gymnasium as gym

    class HashedText(gym.ObservationWrapper):
        """Jericho ``Dict(text, action_mask)`` -> ``float32`` vector: log(1 + count) of the text's lower-case word
        tokens hashed (CRC-32) into ``TEXT_FEATURES`` buckets, followed by the action mask."""

        def __init__(self, env: gym.Env, buckets: int = TEXT_FEATURES) -> None:
            super().__init__(env)
            self.buckets = buckets
            self.num_actions = int(env.action_space.n)
            self.observation_space = gym.spaces.Box(0.0, np.inf, (buckets + self.num_actions,), np.float32)

        def observation(self, observation: Mapping[str, Any]) -> np.ndarray:
            out = np.zeros(self.buckets + self.num_actions, dtype=np.float32)
            for token in re.findall(r"[a-z][a-z'-]*", observation["text"].lower()):
                out[zlib.crc32(token.encode()) % self.buckets] += 1.0
            np.log1p(out[:self.buckets], out=out[:self.buckets])
            out[self.buckets:] = observation["action_mask"]
            return out

    return HashedText


def make_env(task: Any, mode: str) -> Any:
    """The task's env in ``mode``, with text observations turned into features for SB3."""
    env = task.factory(mode)
    if task.spec.modality == "text":
        env = _hashed_text_wrapper()(env)
    return env


def curve_eval_base(seed: int, eval_index: int) -> int:
    """First episode seed of evaluation ``eval_index`` of a run seeded ``seed`` (``MultiTaskTrainer.evaluate``)."""
    return (seed * 1_000 + eval_index) * 10_000


def final_eval_base(seed: int) -> int:
    """First episode seed of a final evaluation (``scalezero_agents.evaluation.evaluate_checkpoint(seed=seed)``)."""
    return seed * 10_000


def evaluate_protocol(act: Callable[[np.ndarray], np.ndarray], envs: Sequence[Any], *, base: int) -> dict[str, Any]:
    """Greedy evaluation of any policy as ``MultiTaskTrainer.evaluate`` does it: all episodes in parallel.

    ``act`` maps a stacked batch of observations to a batch of (deterministic) actions. Episode ``k`` is reset
    with seed ``base + k`` (see :func:`curve_eval_base`, :func:`final_eval_base`).
    """
    from scalezero_agents.training.episodes import play_episodes

    obs = [env.reset(seed=base + k)[0] for k, env in enumerate(envs)]
    returns, lengths = play_episodes(envs, obs, lambda o, rows: act(np.stack(o)))
    return {"mean": float(returns.mean()), "std": float(returns.std()), "min": float(returns.min()),
            "max": float(returns.max()), "length": float(lengths.mean()), "episodes": len(envs)}


# ---------------------------------------------------------------------------------------------- runs
@dataclass
class _Evaluator:
    """Evaluates a model on the task's eval envs and keeps the curve."""

    task: Any
    seed: int
    episodes: int
    model: Any = None
    vecnorm: Any = None
    eval_time: float = 0.0
    num_evals: int = 0

    def __post_init__(self) -> None:
        self.envs: dict[int, list[Any]] = {}
        self.curve: list[dict[str, Any]] = []

    def act(self, obs: np.ndarray) -> np.ndarray:
        if self.vecnorm is not None and self.vecnorm.norm_obs:
            obs = self.vecnorm.normalize_obs(obs)
        actions, _ = self.model.predict(obs, deterministic=True)
        return actions

    def run(self, episodes: int, base: int) -> dict[str, Any]:
        if episodes not in self.envs:
            self.envs[episodes] = [make_env(self.task, "eval") for _ in range(episodes)]
        t0 = time.perf_counter()
        res = evaluate_protocol(self.act, self.envs[episodes], base=base)
        self.eval_time += time.perf_counter() - t0
        if self.task.spec.has_score_normalisation:
            res["normalized"] = self.task.spec.normalize(res["mean"])
        return res

    def close(self) -> None:
        for envs in self.envs.values():
            for env in envs:
                env.close()
        self.envs.clear()

    def evaluate(self, env_steps: int, train_time: float) -> dict[str, Any]:
        res = self.run(self.episodes, curve_eval_base(self.seed, self.num_evals))
        self.num_evals += 1
        point = {"env_steps": int(env_steps), **res, "train_time": round(train_time, 2)}
        self.curve.append(point)
        return point


def run_baseline(algo: str, task: Any, *, seed: int, steps: int, eval_interval: int, eval_episodes: int,
                 name: str | None = None, benchmark: str | None = None, runs_dir: str | Path | None = None,
                 device: str | None = None, final_episodes: int | None = None, save_model: str | Path | None = None,
                 verbose: bool = True) -> dict[str, Any]:
    """Train ``algo`` on ``task`` for ``steps`` env steps under the benchmark protocol; returns the run record.

    Args:
        algo: ``dqn``, ``ppo`` or ``sac``.
        task: a ``scalezero_adapters.Task``.
        seed: seeds the model, the training envs and the evaluation episodes.
        steps: env-step budget (agent steps of this task).
        eval_interval: evaluate every this many env steps (0: only at the end).
        eval_episodes: episodes per evaluation.
        name: run name (file ``<runs_dir>/<name>.json``); default ``sb3-<algo>_<task>_s<seed>``.
        runs_dir: where to write the record (None: not written).
        device: torch device (default: ``auto`` for image observations, else ``cpu``).
        final_episodes: also run a final evaluation of this many episodes (stored as ``final_eval``; episode
            seeds as ``evaluate_checkpoint(seed=seed)``).
        save_model: write the trained model (``.zip``, plus ``.vecnorm.pkl`` when observations are normalised).
    """
    import stable_baselines3 as sb3
    import torch
    from report import package_versions, write_run
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    spec = task.spec
    if steps < 1 or eval_interval < 0 or eval_episodes < 1:
        raise ValueError(f"need steps >= 1, eval_interval >= 0, eval_episodes >= 1; got {steps}, {eval_interval}, "
                         f"{eval_episodes}")
    hp, source, adjusted = hyperparameters(algo, spec, steps)
    settings = dict(hp)
    n_envs, normalize = int(hp.pop("n_envs")), bool(hp.pop("normalize"))
    policy = "CnnPolicy" if spec.modality == "image" else "MlpPolicy"
    device = device or ("auto" if spec.modality == "image" else "cpu")
    name = name or f"sb3-{algo}_{spec.name.replace('/', '_')}_s{seed}"
    torch.manual_seed(seed)

    venv: Any = DummyVecEnv([lambda: Monitor(make_env(task, "train")) for _ in range(n_envs)])
    venv.seed(seed)
    if normalize:  # the zoo's `normalize: true`; images are never normalised (only their rewards)
        venv = VecNormalize(venv, norm_obs=spec.modality != "image", gamma=float(hp.get("gamma", 0.99)))
    kwargs = {k: _schedule(v) for k, v in hp.items()}
    model = {"dqn": sb3.DQN, "ppo": sb3.PPO, "sac": sb3.SAC}[algo](policy, venv, seed=seed, device=device, verbose=0,
                                                                  **kwargs)
    evaluator = _Evaluator(task, seed, eval_episodes, model, venv if normalize else None)
    start = time.perf_counter()

    def train_time() -> float:
        return time.perf_counter() - start - evaluator.eval_time

    def report(point: dict[str, Any]) -> None:
        if verbose:
            print(f"[{name}] steps={point['env_steps']} t={point['train_time']:.0f}s "
                  f"{spec.task}={point['mean']:.1f}", flush=True)

    class Protocol(BaseCallback):
        """Evaluate after the vector step that crosses each multiple of ``eval_interval``; stop at the budget."""

        def _init_callback(self) -> None:
            self.marker = 0

        def _on_step(self) -> bool:
            n = self.num_timesteps
            if eval_interval and n // eval_interval > self.marker:
                self.marker = n // eval_interval
                report(evaluator.evaluate(n, train_time()))
            return n < steps

    model.learn(total_timesteps=steps, callback=Protocol())
    if not evaluator.curve or evaluator.curve[-1]["env_steps"] != model.num_timesteps:
        report(evaluator.evaluate(model.num_timesteps, train_time()))
    wall = time.perf_counter() - start
    record: dict[str, Any] = {
        "schema": 1, "name": name, "method": f"sb3-{algo}", "benchmark": benchmark, "seed": seed,
        "tasks": [spec.name], "budget_per_task": steps,
        "protocol": {"eval_interval": eval_interval, "eval_episodes": eval_episodes, "deterministic": True},
        "config": {"algo": algo, "policy": policy, "device": str(model.device), "source": source,
                   "settings": settings, "adjusted": adjusted,
                   "observation": "hashed bag of words + action mask" if spec.modality == "text" else spec.modality},
        "versions": package_versions(),
        "curves": {spec.name: evaluator.curve},
        "env_steps": {spec.name: int(model.num_timesteps)},
        "updates": int(getattr(model, "_n_updates", 0)),
        "train_time": train_time(), "eval_time": evaluator.eval_time, "wall_time": wall,
    }
    if final_episodes:
        record["final_eval"] = {spec.name: evaluator.run(final_episodes, final_eval_base(seed))}
    evaluator.close()
    venv.close()
    if save_model is not None:
        save_model = Path(save_model)
        save_model.parent.mkdir(parents=True, exist_ok=True)
        model.save(save_model)
        record["model_path"] = str(save_model)
        if normalize:
            venv.save(str(save_model.with_suffix(".vecnorm.pkl")))
    if runs_dir is not None:
        write_run(record, runs_dir)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", choices=ALGOS, required=True)
    parser.add_argument("--task", required=True, help="task name, e.g. gym/CartPole-v1 or dmc/cartpole-balance")
    parser.add_argument("--suite", default="classic", help="take the task's options from this suite if it is in it")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=6_000)
    parser.add_argument("--eval-interval", type=int, default=2_000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="bench_results/baselines/runs")
    args = parser.parse_args(argv)
    import torch
    from scalezero_adapters import make_task
    from scalezero_adapters.suites import SUITES

    torch.set_num_threads(args.threads)
    options = dict(SUITES.get(args.suite, ())).get(args.task, {})
    record = run_baseline(args.algo, make_task(args.task, **options), seed=args.seed, steps=args.steps,
                          eval_interval=args.eval_interval, eval_episodes=args.eval_episodes, runs_dir=args.out)
    print(f"{record['name']}: final {record['curves'][args.task][-1]['mean']:.1f}, "
          f"train {record['train_time']:.0f}s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
