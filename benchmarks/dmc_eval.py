"""The shimmy-wrapped DMC evaluation: train (or load) ScaleZero on DMC tasks, evaluate it, compare with SAC / PPO.

    python benchmarks/dmc_eval.py                               # default: 3 tasks, <= 60 min on 2 CPU cores
    python benchmarks/dmc_eval.py --scale quick                 # plumbing check, a few minutes
    python benchmarks/dmc_eval.py --checkpoint runs/x/checkpoint.pt --episodes 20
    python benchmarks/dmc_eval.py --pixels                      # pixel observations, headless (MUJOCO_GL=egl)
    python benchmarks/dmc_eval.py --scale paper                 # DMC18, 400k env steps per task (GPU)

Every DMC task comes from ``scalezero_adapters`` (dm_control through shimmy 2.x, the ``dmc18`` suite's action
repeat: 4, pendulum 8). Without ``--checkpoint`` one ScaleZero model is trained on all tasks and saved
(``runs/scalezero_mt_s<seed>.pt``); with it, that model is evaluated instead and the baselines get the same
env-step budget per task as the checkpoint has used. SB3 SAC and PPO are trained per task at that budget.
Every run is then evaluated on ``--episodes`` (>= 10 by default) fresh episodes per task, ScaleZero through
``scalezero_agents.evaluation.evaluate_checkpoint`` and the baselines with deterministic actions on the very
same episode seeds. The report (``bench_results/dmc[-<scale>]/table.md``) gives per task mean ± std over
those episodes and the normalised score (return / 1000), plus the learning curves and the IQM over tasks.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from suite import (
    SCALEZERO_METHODS,
    Settings,
    build_parser,
    default_out,
    finish,
    run_benchmark,
    settings_from_args,
    write_meta,
)

MIN_EPISODES = 10


def task_options(task: Any) -> dict[str, Any]:
    """``make_task`` options that rebuild a DMC ``task`` (e.g. one restored from a checkpoint).

    Raises:
        ValueError: not a DMC task, or the options do not give back the same ``TaskSpec``.
    """
    from scalezero_adapters import make_task
    from scalezero_adapters.dmc import DMC_DEFAULTS

    spec = task.spec
    if spec.family != "dmc":
        raise ValueError(f"{spec.name} is not a DMC task: bench-dmc evaluates DMC tasks only")
    options = {k: v for k, v in getattr(task.factory, "options", {}).items() if k in DMC_DEFAULTS}
    options["discount"] = spec.discount
    if make_task(spec.name, **options).spec != spec:
        raise ValueError(f"cannot rebuild {spec.name} from the checkpoint's env options {options}")
    return options


def checkpoint_method(trainer: Any) -> str:
    """``scalezero-dps`` (DPS state saved), ``scalezero`` (MoE) or ``unizero`` (dense) for a loaded trainer."""
    # load_checkpoint always passes a DPS callback; it is bound to a controller only when the checkpoint has DPS state
    callbacks = getattr(trainer, "callbacks", [])
    dps = next((cb for cb in callbacks if getattr(cb, "state_key", None) == "dps"), None)
    if dps is not None and getattr(dps, "controller", None) is not None:
        return "scalezero-dps"
    return "scalezero" if trainer.config.model.ffn == "moe" else "unizero"


def checkpoint_record(path: Path, episodes: int, seed: int | None = None) -> tuple[dict[str, Any], list[Any]]:
    """The run record of a saved trainer: its curves, config and a final ``episodes``-episode evaluation.

    Returns ``(record, tasks)``.
    """
    import dataclasses

    from report import curves_from_history, package_versions

    from scalezero_agents.evaluation import evaluate_trainer, load_checkpoint

    t0 = time.perf_counter()
    trainer = load_checkpoint(path)
    seed = trainer.seed if seed is None else seed
    final = evaluate_trainer(trainer, episodes=episodes, seed=seed).results
    method = checkpoint_method(trainer)
    names = [s.name for s in trainer.specs]
    tcfg = trainer.trainer_config
    record = {
        "schema": 1, "name": f"{method}_checkpoint_s{trainer.seed}", "method": method, "benchmark": "dmc",
        "seed": trainer.seed, "tasks": names, "budget_per_task": int(max(trainer.env_steps)),
        "protocol": {"eval_interval": tcfg.eval_interval, "eval_episodes": tcfg.eval_episodes, "deterministic": True},
        "config": {"agent": dataclasses.asdict(trainer.config), "checkpoint": str(path)},
        "versions": package_versions(), "curves": curves_from_history(trainer.history),
        "env_steps": {n: int(s) for n, s in zip(names, trainer.env_steps, strict=True)},
        "updates": trainer.updates, "train_time": trainer.train_time,
        "wall_time": time.perf_counter() - t0, "final_eval": final, "checkpoint": str(path),
    }
    return record, trainer.tasks


def final_eval_table(runs: Sequence[Mapping[str, Any]], episodes: int) -> str:
    """Markdown: per method and task, mean ± std over the final evaluation's episodes, min, max, normalised."""
    from report import METHOD_LABELS, method_order

    lines = [f"## Final evaluation through shimmy ({episodes} episodes per task, deterministic, same episode seeds)",
             "", "| method | seed | task | mean ± std | min | max | episodes | normalised |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    by_method: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        by_method.setdefault(run["method"], []).append(run)
    for method in method_order(list(by_method)):
        for run in sorted(by_method[method], key=lambda r: (r["seed"], r["tasks"])):
            for task, res in run.get("final_eval", {}).items():
                norm = f"{res['normalized']:.3f}" if "normalized" in res else "—"
                lines.append(f"| {METHOD_LABELS.get(method, method)} | {run['seed']} | {task} | "
                             f"{res['mean']:.1f} ± {res['std']:.1f} | {res['min']:.1f} | {res['max']:.1f} | "
                             f"{res['episodes']} | {norm} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(__doc__)
    parser.add_argument("--checkpoint", type=Path, help="evaluate this MultiTaskTrainer checkpoint instead of training")
    parser.add_argument("--episodes", type=int, default=MIN_EPISODES, help="final evaluation episodes per task")
    parser.add_argument("--pixels", action="store_true", help="pixel observations (3x64x64, headless rendering)")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error("--episodes must be >= 1")
    if args.episodes < MIN_EPISODES:
        print(f"note: {args.episodes} final episodes (the benchmark protocol asks for >= {MIN_EPISODES})")
    if args.checkpoint is not None and args.pixels:
        parser.error("--pixels does not apply to --checkpoint (the checkpoint fixes the observations)")
    from report import load_runs, write_run

    settings = settings_from_args("dmc", args, final_episodes=args.episodes)
    if args.pixels:
        settings = _with_options(settings, pixels=True)
    out = args.out or default_out("dmc", args.scale)
    t0 = time.perf_counter()
    failures: dict[str, str] = {}
    extra_notes: list[str] = []
    if args.checkpoint is not None and not args.report_only:
        record, tasks = checkpoint_record(args.checkpoint, args.episodes)
        settings = _from_checkpoint(settings, record, tasks)
        extra_notes.append(f"ScaleZero: loaded from `{args.checkpoint}` ({record['method']}, seed {record['seed']}); "
                           "the baselines got the env steps it has used per task.")
        failures = run_benchmark(settings, out, processes=args.jobs, threads=args.threads, resume=args.resume)
        write_run(record, out / "runs")
    elif not args.report_only:
        failures = run_benchmark(settings, out, processes=args.jobs, threads=args.threads, resume=args.resume)
    if args.pixels:
        extra_notes.append("Observations: pixels (3x64x64 RGB, rendered headless); SB3 uses CnnPolicy.")
    runs = load_runs(out / "runs")
    write_meta(out, settings, extra_notes, final_eval_table(runs, args.episodes))
    return finish(out, t0, failures)


def _with_options(settings: Settings, **options: Any) -> Settings:
    import dataclasses

    tasks = tuple((name, {**opts, **options}) for name, opts in settings.tasks)
    return dataclasses.replace(settings, tasks=tasks)


def _from_checkpoint(settings: Settings, record: Mapping[str, Any], tasks: Sequence[Any]) -> Settings:
    """The checkpoint's tasks and budget; ScaleZero methods dropped (the checkpoint is that run)."""
    import dataclasses

    methods = tuple(m for m in settings.methods if m not in SCALEZERO_METHODS)
    if not methods:
        raise ValueError("nothing to compare with: choose baseline methods (sb3-sac, sb3-ppo)")
    return dataclasses.replace(settings, tasks=tuple((t.spec.name, task_options(t)) for t in tasks),
                               steps=int(record["budget_per_task"]), methods=methods,
                               learning_starts=min(settings.learning_starts, int(record["budget_per_task"]) - 1),
                               seeds=(int(record["seed"]),))


if __name__ == "__main__":
    sys.exit(main())
