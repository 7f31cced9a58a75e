"""Integration benchmark: CartPole-v1 learned natively, through Stable-Baselines3 and through Tianshou.

    python benchmarks/integrations.py --framework sb3 --seed 0 --steps 50000
    python benchmarks/integrations.py --framework native --seed 0 --steps 50000
    python benchmarks/integrations.py --framework tianshou --seed 0 --steps 50000
    python benchmarks/integrations.py --framework all --seeds 0 1 2   # the 9 runs, one after another
    python benchmarks/integrations.py --report                        # table.md from the run records

Every framework runs the same agent (preset ``small``, 8 training envs, replay ratio 0.25, learning starts
after 1,000 env steps) under the same protocol: a greedy evaluation of 10 episodes (in parallel) every
2,500 env steps, stopping once the mean return reaches 475. The acceptance: each integration reaches 475
within +-20% of the native trainer's env steps. Each run writes ``<out>/<framework>_s<seed>.json`` with the
evaluation history and the first env step at which 195 and 475 were reached; the report (printed after every
run, and written to ``<out>/table.md``) compares the frameworks' mean env steps to 475 over the seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ENV_ID = "gym/CartPole-v1"
THRESHOLDS = (195.0, 475.0)


def _summary(history: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    def first(threshold: float) -> int | None:
        return next((h["env_steps"] for h in history if h["mean"] >= threshold), None)

    return {"env_steps_to_195": first(195.0), "env_steps_to_475": first(475.0), "wall": wall, "history": history}


def run_native(seed: int, steps: int, *, preset: str = "small", num_envs: int = 8, replay_ratio: float = 0.25,
               learning_starts: int = 1_000, eval_interval: int = 2_500, eval_episodes: int = 10,
               stop_at: float = THRESHOLDS[-1], progress: bool = False) -> dict[str, Any]:
    """The native ``MultiTaskTrainer`` under the benchmark protocol."""
    from scalezero_adapters import make_task

    from scalezero_agents.config import preset as make_preset
    from scalezero_agents.training import Callback, MultiTaskTrainer, TrainerConfig

    history: list[dict[str, Any]] = []

    class Record(Callback):
        def on_eval(self, trainer: MultiTaskTrainer, results: dict[str, dict[str, float]]) -> None:
            res = results[ENV_ID]
            history.append({"env_steps": int(res["env_steps"]), "mean": res["mean"], "std": res["std"],
                            "updates": trainer.updates, "train_time": round(trainer.train_time, 1)})
            print(f"[native s{seed}] steps={res['env_steps']} upd={trainer.updates} mean={res['mean']:.1f}", flush=True)
            if res["mean"] >= stop_at:
                trainer.stop_task(0)

    tcfg = TrainerConfig(num_envs=num_envs, replay_ratio=replay_ratio, learning_starts=learning_starts,
                         eval_interval=eval_interval, eval_episodes=eval_episodes)
    trainer = MultiTaskTrainer([make_task(ENV_ID)], config=make_preset(preset, "unizero"), trainer=tcfg, seed=seed,
                               callbacks=[Record()], progress_bar=progress)
    t0 = time.perf_counter()
    trainer.train(steps)
    return _summary(history, time.perf_counter() - t0)


def run_sb3(seed: int, steps: int, *, preset: str = "small", num_envs: int = 8, replay_ratio: float = 0.25,
            learning_starts: int = 1_000, eval_interval: int = 2_500, eval_episodes: int = 10,
            stop_at: float = THRESHOLDS[-1], progress: bool = False) -> dict[str, Any]:
    """``ScaleZero`` through Stable-Baselines3 (``learn`` + a greedy ``evaluate_policy`` callback)."""
    import gymnasium as gym
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from scalezero_agents.integrations.sb3 import ScaleZero

    env_id = ENV_ID.split("/", 1)[1]
    history: list[dict[str, Any]] = []
    eval_env = DummyVecEnv([lambda: Monitor(gym.make(env_id))] * eval_episodes)

    class Evaluate(BaseCallback):
        """Greedy evaluation every ``eval_interval`` env steps (after the vector step that crosses it)."""

        def _init_callback(self) -> None:
            self.done_evals, self.eval_time, self.start = 0, 0.0, time.perf_counter()

        def _on_step(self) -> bool:
            if self.num_timesteps // eval_interval <= self.done_evals:
                return True
            self.done_evals = self.num_timesteps // eval_interval
            t0 = time.perf_counter()
            eval_env.seed(seed * 1_000 + self.done_evals)
            returns, _ = evaluate_policy(self.model, eval_env, n_eval_episodes=eval_episodes, deterministic=True,
                                         return_episode_rewards=True)
            self.eval_time += time.perf_counter() - t0
            mean = float(sum(returns) / len(returns))
            updates = self.model.agent.learner.updates
            train_time = time.perf_counter() - self.start - self.eval_time
            history.append({"env_steps": self.num_timesteps, "mean": mean,
                            "std": float((sum((r - mean) ** 2 for r in returns) / len(returns)) ** 0.5),
                            "updates": updates, "train_time": round(train_time, 1)})
            print(f"[sb3 s{seed}] steps={self.num_timesteps} upd={updates} mean={mean:.1f}", flush=True)
            return mean < stop_at

    model = ScaleZero("MlpPolicy", make_vec_env(env_id, n_envs=num_envs, seed=seed), preset=preset,
                      learning_starts=learning_starts, replay_ratio=replay_ratio, seed=seed)
    start = time.perf_counter()
    model.learn(steps, callback=Evaluate(), progress_bar=progress)
    return _summary(history, time.perf_counter() - start)


def run_tianshou(seed: int, steps: int, *, progress: bool = False, **kwargs: Any) -> dict[str, Any]:
    """``ScaleZero`` through Tianshou 2.x: the stock ``Collector`` / ``VectorReplayBuffer`` / ``OffPolicyTrainer``
    (see ``benchmarks/integrations_tianshou.py``; its history nests results under ``tasks``)."""
    from integrations_tianshou import run_tianshou as run

    return run(seed, steps, verbose=True, **kwargs)


RUNNERS = {"native": run_native, "sb3": run_sb3, "tianshou": run_tianshou}
TOLERANCE = 0.2  # the acceptance: within +-20% of the native env steps to 475


def _throughput(record: dict[str, Any]) -> tuple[float | None, float | None]:
    """Env steps and learner updates per second of training time (evaluation excluded), at the last evaluation."""
    history = record.get("history") or []
    if not history or not history[-1].get("train_time"):
        return None, None
    last = history[-1]
    return last["env_steps"] / last["train_time"], last["updates"] / last["train_time"]


def report(records: list[dict[str, Any]]) -> str:
    """Markdown: one row per run, then per framework the mean env steps to 475 and its ratio to native's.

    A run that never reached 475 counts as its budget in the mean (a lower bound, marked ``>=``) and makes the
    framework fail the comparison.
    """
    def fmt(x: float | None, spec: str = ",.0f") -> str:
        return "-" if x is None else format(x, spec)

    order = {name: i for i, name in enumerate(RUNNERS)}
    records = sorted(records, key=lambda r: (order.get(r["framework"], 99), r["seed"]))
    lines = ["| framework | seed | env steps to 195 | env steps to 475 | wall s | env steps/s | updates/s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        steps_s, upd_s = _throughput(r)
        to_475 = fmt(r["env_steps_to_475"]) if r["env_steps_to_475"] is not None else f"not in {r['budget']:,}"
        lines.append(f"| {r['framework']} | {r['seed']} | {fmt(r['env_steps_to_195'])} | {to_475} | "
                     f"{fmt(r.get('wall'))} | {fmt(steps_s, '.1f')} | {fmt(upd_s, '.2f')} |")
    means: dict[str, tuple[float, bool, list[int]]] = {}
    for name in RUNNERS:
        runs = [r for r in records if r["framework"] == name]
        if runs:
            steps = [r["env_steps_to_475"] if r["env_steps_to_475"] is not None else r["budget"] for r in runs]
            reached = all(r["env_steps_to_475"] is not None for r in runs)
            means[name] = (sum(steps) / len(steps), reached, sorted(r["seed"] for r in runs))
    lines += ["", "| framework | seeds | mean env steps to 475 | ratio to native | within +-20% |",
              "|---|---|---:|---:|---|"]
    native = means.get("native")
    for name, (mean, reached, seeds) in means.items():
        ratio = mean / native[0] if native and native[1] else None
        verdict = "-" if ratio is None or name == "native" else (
            "yes" if reached and abs(ratio - 1.0) <= TOLERANCE else "no")
        lines.append(f"| {name} | {' '.join(map(str, seeds))} | {'' if reached else '>= '}{mean:,.0f} | "
                     f"{fmt(ratio, '.2f')} | {verdict} |")
    return "\n".join(lines)


def write_report(out: Path) -> str:
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*_s*.json"))]
    text = report([r for r in records if r.get("framework") in RUNNERS])
    (out / "table.md").write_text(text + "\n")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--framework", choices=[*sorted(RUNNERS), "all"], help="what to run ('all': every one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", help="several seeds, one run each (overrides --seed)")
    parser.add_argument("--steps", type=int, default=50_000, help="env step budget")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--report", action="store_true", help="only (re)write the report from the run records")
    parser.add_argument("--out", default="bench_results/integrations")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.report:
        if not out.is_dir():
            parser.error(f"no run records: {out} does not exist")
        print(write_report(out))
        return 0
    if args.framework is None:
        parser.error("--framework is required (or --report)")
    import torch

    torch.set_num_threads(args.threads)
    frameworks = list(RUNNERS) if args.framework == "all" else [args.framework]
    out.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds or [args.seed]:
        for name in frameworks:
            result = RUNNERS[name](seed, args.steps, preset=args.preset, num_envs=args.num_envs,
                                   progress=args.progress)
            record = {"framework": name, "seed": seed, "budget": args.steps, "preset": args.preset,
                      "num_envs": args.num_envs, **result}
            (out / f"{name}_s{seed}.json").write_text(json.dumps(record, indent=1))
            print(json.dumps({k: v for k, v in record.items() if k != "history"}, indent=1), flush=True)
    print(write_report(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
