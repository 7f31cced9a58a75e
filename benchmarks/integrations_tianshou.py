"""Learning through Tianshou 2.0.1 with the native trainer's protocol, for comparison with ``benchmarks/learning.py``.

    python benchmarks/integrations_tianshou.py --seed 0 --steps 30000 [--task gym/CartPole-v1] [--preset small]

The same agent settings as ``MultiTaskTrainer`` (``TrainerConfig`` defaults): 8 training envs, a pre-fill of
1,000 env steps (by whole episodes, with the exploring policy: the native ``learning_starts``), then 8 env
steps per training step and ``0.25`` updates per env step (``update_step_num_gradient_steps_per_sample``),
64 windows per update, the native temperature schedule over the budget. Everything runs in the stock
``Collector``, ``VectorReplayBuffer(100_000, 8)`` and ``OffPolicyTrainer`` (driven epoch by epoch, one training
step per epoch, so that evaluations fall on the native grid). Evaluation as the native trainer's: every 2,500
env steps (pre-fill included), 10 greedy episodes (no root noise, most visited action, ``eval_simulations``)
in parallel on ``mode="eval"`` envs, stopping once the mean reaches the task's target return (475 for
CartPole-v1). Writes ``<out>/ts_<task>_s<seed>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


def _evaluate(collector: Any, envs: Any, episodes: int, seed: int, index: int) -> tuple[dict[str, float], float]:
    import numpy as np

    t0 = time.perf_counter()
    base = (seed * 1_000 + index) * 10_000  # the native trainer's evaluation seeds
    envs.seed([base + k for k in range(len(envs))])
    stats = collector.collect(n_episode=episodes, reset_before_collect=True)
    r = np.asarray(stats.returns, dtype=np.float64)
    res = {"mean": float(r.mean()), "std": float(r.std()), "min": float(r.min()), "max": float(r.max()),
           "length": float(np.mean(stats.lens))}
    return res, time.perf_counter() - t0


def run_tianshou(seed: int = 0, steps: int = 30_000, *, task: str = "gym/CartPole-v1", preset: str = "small",
                 num_envs: int = 8, replay_ratio: float = 0.25, learning_starts: int = 1_000,
                 eval_interval: int = 2_500, eval_episodes: int = 10, stop_at: float | None = None,
                 verbose: bool = True, **overrides: Any) -> dict[str, Any]:
    """Train through Tianshou; returns ``{env_steps_to_195, env_steps_to_475, wall, history, ...}``.

    ``env_steps_to_<x>`` is the env step count of the first evaluation whose mean return reached ``x`` (None if
    none did). ``overrides`` are ``preset`` overrides (``{"learner.learning_rate": 3e-4}``).
    """
    import numpy as np
    import torch
    from scalezero_adapters import make_task
    from tianshou.data import Collector, VectorReplayBuffer
    from tianshou.env import DummyVectorEnv
    from tianshou.trainer import OffPolicyTrainerParams

    from scalezero_agents.config import preset as make_preset
    from scalezero_agents.integrations.tianshou import (
        ScaleZeroAlgorithm,
        ScaleZeroPolicy,
        TemperatureSchedule,
        prefill,
        seed_buffer,
    )

    torch.set_num_threads(1)
    np.random.seed(seed)  # noqa: NPY002  (Tianshou draws some randomness from NumPy's global stream)
    t_start = time.perf_counter()
    the_task = make_task(task)
    spec = the_task.spec
    stop_at = spec.target_return if stop_at is None else stop_at
    config = make_preset(preset, "unizero", **overrides)
    train_envs = DummyVectorEnv([lambda: the_task.factory("train") for _ in range(num_envs)])
    test_envs = DummyVectorEnv([lambda: the_task.factory("eval") for _ in range(eval_episodes)])
    train_envs.seed([seed * 100_003 + i for i in range(num_envs)])
    policy = ScaleZeroPolicy(tasks=[the_task], config=config, seed=seed, action_space=train_envs.action_space[0],
                             observation_space=train_envs.observation_space[0])
    algorithm = ScaleZeroAlgorithm(policy=policy)
    buffer = VectorReplayBuffer(config.replay.capacity, num_envs)
    seed_buffer(buffer, seed)
    train = Collector(algorithm, train_envs, buffer)
    test = Collector(algorithm, test_envs)
    history: list[dict[str, Any]] = []
    train_time = 0.0
    t0 = time.perf_counter()
    start = prefill(train, learning_starts)
    train_time += time.perf_counter() - t0
    params = OffPolicyTrainerParams(
        training_collector=train, test_collector=None, max_epochs=10**9, epoch_num_steps=num_envs,
        collection_step_num_env_steps=num_envs, update_step_num_gradient_steps_per_sample=replay_ratio,
        batch_size=config.learner.batch_size, training_fn=TemperatureSchedule(policy, steps, offset=start),
        verbose=False, show_progress=False)
    trainer = algorithm.create_trainer(params)
    trainer.reset(reset_collectors=False)
    env_steps, marker = start, start // eval_interval
    while env_steps < steps:
        t0 = time.perf_counter()
        trainer.execute_epoch()
        train_time += time.perf_counter() - t0
        env_steps = train.collect_step  # every env step of the training collector, pre-fill included
        if env_steps // eval_interval <= marker and env_steps < steps:
            continue
        marker = env_steps // eval_interval
        res, eval_time = _evaluate(test, test_envs, eval_episodes, seed, len(history))
        res.update(env_steps=env_steps, solved=bool(res["mean"] >= stop_at))
        history.append({"env_steps": env_steps, "updates": algorithm.learner.updates,
                        "train_time": round(train_time, 2), "eval_time": round(eval_time, 2),
                        "tasks": {spec.name: res}})
        if verbose:
            print(f"[tianshou s{seed}] steps={env_steps} upd={algorithm.learner.updates} t={train_time:.0f}s "
                  f"mean={res['mean']:.1f}", flush=True)
        if res["solved"]:
            break

    def first(threshold: float) -> int | None:
        return next((h["env_steps"] for h in history if h["tasks"][spec.name]["mean"] >= threshold), None)

    return {"framework": "tianshou", "task": spec.name, "seed": seed, "preset": preset, "budget": steps,
            "env_steps_to_195": first(195.0), "env_steps_to_475": first(475.0),
            "wall": time.perf_counter() - t_start, "train_time": train_time, "env_steps": env_steps,
            "updates": algorithm.learner.updates, "prefill_steps": start, "history": history}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--task", default="gym/CartPole-v1")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--out", default="bench_results/integrations")
    args = parser.parse_args(argv)
    record = run_tianshou(args.seed, args.steps, task=args.task, preset=args.preset)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"ts_{args.task.replace('/', '_')}_s{args.seed}.json"
    path.write_text(json.dumps(record, indent=1))
    print(json.dumps({k: record[k] for k in ("env_steps_to_195", "env_steps_to_475", "wall", "updates")}), flush=True)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
