"""Distributed-training throughput: env steps/s and updates/s against the number of ranks.

    python benchmarks/distributed.py                          # classic suite, tiny preset, 1 vs 2 ranks, CPU/gloo
    python benchmarks/distributed.py --nproc 1 2 4 8 --preset small --set device=cuda   # a GPU machine

Each configuration runs ``--repeats`` times as ``torchrun --standalone --nproc_per_node=N -m
scalezero_agents.distributed`` (the documented entry point) with the same tasks, budget and replay ratio, so
every world size does the same work: the same env steps per task and the same number of updates (each
update takes one batch per task, spread over the ranks). Throughput is counted over the collect + learn time
of the slowest rank (evaluation excluded): ``env_steps_per_s`` (all tasks) and ``updates_per_s``. On a
machine whose cores are shared with other work the wall clock cannot show the scaling, so the busiest rank's
CPU seconds (evaluation excluded) are reported too: ``env_steps_per_cpu_s`` / ``updates_per_cpu_s`` are the
rates with one free core per rank. Medians go to stdout and, with every repeat, to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scalezero_agents.distributed import torchrun_command


def run_once(nproc: int, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "summary.json"
        argv = ["--suite", args.suite, "--preset", args.preset, "--steps", str(args.steps), "--seed", str(seed),
                "--num-envs", str(args.num_envs), "--replay-ratio", str(args.replay_ratio),
                "--learning-starts", str(args.learning_starts), "--eval-interval", "0", "--eval-episodes", "1",
                "--backend", args.backend, "--threads", str(args.threads), "--no-progress",
                "--summary-json", str(summary)]
        for kv in args.set:
            argv += ["--set", kv]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
        start = time.perf_counter()
        proc = subprocess.run(torchrun_command(argv, nproc), env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{nproc} rank(s) failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
        out = json.loads(summary.read_text())
        out["process_wall_time"] = time.perf_counter() - start
        out.pop("final_eval", None)
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nproc", type=int, nargs="+", default=[1, 2], help="world sizes to compare")
    parser.add_argument("--suite", default="classic")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--steps", type=int, default=1_500, help="env steps per task")
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--replay-ratio", type=float, default=0.25)
    parser.add_argument("--learning-starts", type=int, default=200)
    parser.add_argument("--backend", default="auto", choices=["auto", "gloo", "nccl"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("bench_results/distributed.json"))
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                               "machine": {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg()}, "runs": {}}
    print(f"{'ranks':>5} {'env steps/s':>12} {'updates/s':>10} {'updates':>8} {'busy s':>8} {'steps/cpu-s':>14} "
          f"{'upd/cpu-s':>12}   (median of {args.repeats})", flush=True)
    base: float | None = None
    base_cpu: float | None = None
    for nproc in args.nproc:
        reps = [run_once(nproc, args, seed) for seed in range(args.repeats)]
        med = {k: statistics.median(r[k] for r in reps)
               for k in ("env_steps_per_s", "updates_per_s", "train_time", "env_steps_per_cpu_s", "updates_per_cpu_s")}
        base = base or med["env_steps_per_s"]
        base_cpu = base_cpu or med["env_steps_per_cpu_s"]
        results["runs"][str(nproc)] = {"median": med, "repeats": reps, "shards": reps[0]["shards"],
                                       "speedup_vs_first": med["env_steps_per_s"] / base,
                                       "cpu_speedup_vs_first": med["env_steps_per_cpu_s"] / base_cpu}
        print(f"{nproc:>5} {med['env_steps_per_s']:>12.1f} {med['updates_per_s']:>10.2f} {reps[0]['updates']:>8} "
              f"{med['train_time']:>8.1f} {med['env_steps_per_cpu_s']:>14.1f} {med['updates_per_cpu_s']:>12.2f}   "
              f"x{med['env_steps_per_s'] / base:.2f} (x{med['env_steps_per_cpu_s'] / base_cpu:.2f} per core)",
              flush=True)
    results["machine"]["load_avg_end"] = os.getloadavg()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
