"""Benchmarks against baselines: every method of one benchmark at one scale, then the report.

    python benchmarks/suite.py classic                     # default scale: <= 60 min on 2 CPU cores
    python benchmarks/suite.py classic --scale quick       # plumbing smoke test, a few minutes
    python benchmarks/suite.py atari                       # smoke run (<= 10 min), jericho likewise
    python benchmarks/suite.py atari --scale paper         # the paper's budgets (a GPU; days)
    python benchmarks/suite.py classic --report-only       # re-render the report from runs/*.json

Methods (``--methods`` picks a subset):

=================  ==========================================================================================
``unizero``        ScaleZero's single-task agent: one dense model per task (``variant="unizero"``)
``scalezero``      one Mixture-of-Experts model for all tasks of the benchmark (``variant="scalezero"``)
``scalezero-dps``  ``scalezero`` + Dynamic Parameter Scaling (LoRA stages; solved tasks stop training)
``sb3-dqn``        Stable-Baselines3 DQN, one model per discrete task (``benchmarks/baselines.py``)
``sb3-ppo``        Stable-Baselines3 PPO, one model per task
``sb3-sac``        Stable-Baselines3 SAC, one model per continuous task
=================  ==========================================================================================

Every method gets the same env-step budget **per task** (agent steps; DMC action repeat 4 means 4 physics
steps per agent step), the same envs (``make_task`` / the suite's options) and the same evaluation protocol
(``MultiTaskTrainer.evaluate``: ``eval_episodes`` greedy episodes on separate eval envs every ``eval_interval``
env steps of the task and at the end, identical episode seeds for every method). Jobs run in ``--jobs``
processes (default 2, one torch thread each), longest first.

Output: ``<out>/runs/<run>.json`` (one per run: config, package versions, seed, curve), ``<out>/benchmark.json``
(the settings), ``<out>/table.md``, ``<out>/curves.png`` and, with two or more tasks, ``<out>/iqm.png``
(``benchmarks/report.py``). ``<out>`` defaults to ``bench_results/<benchmark>`` at the default scale and
``bench_results/<benchmark>-<scale>`` otherwise; without ``--resume`` its old run records are removed first.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy / torch are imported (also in spawned workers)
os.environ.setdefault("MUJOCO_GL", "egl")

import argparse
import dataclasses
import datetime
import json
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

BENCHMARKS = ("classic", "dmc", "atari", "jericho")
SCALES = ("quick", "default", "paper")
METHODS = ("unizero", "scalezero", "scalezero-dps", "sb3-dqn", "sb3-ppo", "sb3-sac")
SCALEZERO_METHODS = ("unizero", "scalezero", "scalezero-dps")
MULTITASK_METHODS = ("scalezero", "scalezero-dps")

TaskList = tuple[tuple[str, dict[str, Any]], ...]


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Everything one benchmark run at one scale uses (recorded in ``benchmark.json``)."""

    benchmark: str
    scale: str
    tasks: TaskList
    """``(task name, make_task options)`` in suite order."""
    steps: int
    """Env-step budget per task (agent steps)."""
    eval_interval: int
    """Evaluate every this many env steps per task (0: only at the end)."""
    eval_episodes: int
    seeds: tuple[int, ...]
    methods: tuple[str, ...]
    preset: str
    """ScaleZero preset (``tiny``, ``small``, ``paper``)."""
    num_envs: int = 8
    """ScaleZero training envs per task."""
    learning_starts: int = 1_000
    replay_ratio: float = 0.25
    overrides: dict[str, Any] = field(default_factory=dict)
    """ScaleZero config overrides (``"component.field": value``)."""
    dps: dict[str, Any] = field(default_factory=dict)
    """``DPSConfig`` fields of the ``scalezero-dps`` method."""
    final_episodes: int = 0
    """Episodes of a separate final evaluation of every run (0: none; ``bench-dmc`` uses >= 10)."""
    note: str = ""

    def __post_init__(self) -> None:
        if self.benchmark not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {self.benchmark!r}; choose from {BENCHMARKS}")
        if self.scale not in SCALES:
            raise ValueError(f"unknown scale {self.scale!r}; choose from {SCALES}")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; choose from {METHODS}")
        if not self.tasks or not self.seeds or not self.methods:
            raise ValueError("a benchmark needs at least one task, one seed and one method")
        if self.steps < 1 or self.eval_episodes < 1 or self.eval_interval < 0 or self.final_episodes < 0:
            raise ValueError(f"bad budget or protocol: steps={self.steps}, eval_interval={self.eval_interval}, "
                             f"eval_episodes={self.eval_episodes}, final_episodes={self.final_episodes}")
        if not 0 <= self.learning_starts < self.steps:
            raise ValueError(f"learning_starts must be in [0, steps={self.steps}), got {self.learning_starts}")

    @property
    def updates(self) -> int:
        """Learner updates of a ScaleZero run (replay ratio per env step per task after learning starts)."""
        return int((self.steps - self.learning_starts) * self.replay_ratio)

    def dps_config(self) -> dict[str, Any]:
        """The DPS settings: given ones, else stages placed within this run's updates (0.4 U, then 0.15 U each)."""
        if self.dps:
            return dict(self.dps)
        return {"min_stage0_updates": max(1, int(0.4 * self.updates)),
                "max_stage_updates": max(1, int(0.15 * self.updates))}


def _classic_tasks() -> TaskList:
    from scalezero_adapters.suites import SUITES

    return tuple((name, dict(opts)) for name, opts in SUITES["classic"])


def _suite_tasks(suite: str, names: Sequence[str] | None = None, **extra: Any) -> TaskList:
    from scalezero_adapters.suites import SUITES

    tasks = [(name, {**opts, **extra}) for name, opts in SUITES[suite]]
    if names is not None:
        by_name = dict(tasks)
        tasks = [(n, by_name[n]) for n in names]
    return tuple(tasks)


SMOKE_ATARI_FRAMES = 2_000
"""Atari smoke runs cap every episode (training and evaluation, every method) at 2,000 frames = 500 agent steps."""


def settings_for(benchmark: str, scale: str = "default", **changes: Any) -> Settings:
    """The settings of ``benchmark`` at ``scale`` (``quick``: plumbing; ``default``: CPU-sized; ``paper``: GPU),
    with ``changes`` (``Settings`` fields) applied on top."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; choose from {BENCHMARKS}")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose from {SCALES}")
    all_classic = ("unizero", "scalezero", "scalezero-dps", "sb3-dqn", "sb3-ppo", "sb3-sac")
    table: dict[tuple[str, str], dict[str, Any]] = {
        ("classic", "quick"): dict(
            tasks=_classic_tasks(), steps=500, eval_interval=0, eval_episodes=2, seeds=(0,), methods=all_classic,
            preset="tiny", num_envs=4, learning_starts=100, note="plumbing check only: far too short to learn"),
        ("classic", "default"): dict(
            tasks=_classic_tasks(), steps=6_000, eval_interval=2_000, eval_episodes=10, seeds=(0,),
            methods=all_classic, preset="tiny", num_envs=8, learning_starts=1_000,
            note="CPU-sized (<= 60 min on 2 cores): a few thousand env steps per task, one seed"),
        ("classic", "paper"): dict(
            tasks=_classic_tasks(), steps=100_000, eval_interval=10_000, eval_episodes=10, seeds=(0, 1, 2),
            methods=all_classic, preset="paper", num_envs=8, learning_starts=2_000, dps=_paper_dps("dmc"),
            note="the paper has no classic-suite budget: 100k env steps per task, paper-sized model (GPU)"),
        ("dmc", "quick"): dict(
            tasks=_suite_tasks("dmc18", ["dmc/cartpole-balance", "dmc/cartpole-swingup"]), steps=500,
            eval_interval=0, eval_episodes=2, final_episodes=10, seeds=(0,),
            methods=("scalezero", "sb3-sac", "sb3-ppo"), preset="tiny", num_envs=4, learning_starts=100,
            note="plumbing check only: far too short to learn"),
        ("dmc", "default"): dict(
            tasks=_suite_tasks("dmc18", ["dmc/cartpole-balance", "dmc/cartpole-swingup", "dmc/finger-spin"]),
            steps=8_000, eval_interval=2_000, eval_episodes=10, final_episodes=10, seeds=(0,),
            methods=("scalezero", "sb3-sac", "sb3-ppo"), preset="tiny", num_envs=8, learning_starts=1_000,
            note="CPU-sized (<= 60 min on 2 cores): three DMC tasks, a few thousand env steps each, one seed"),
        ("dmc", "paper"): dict(
            tasks=_suite_tasks("dmc18"), steps=400_000, eval_interval=20_000, eval_episodes=10, final_episodes=10,
            seeds=(0, 1, 2), methods=("unizero", "scalezero", "scalezero-dps", "sb3-sac", "sb3-ppo"),
            preset="paper", num_envs=8, learning_starts=2_000, dps=_paper_dps("dmc"),
            note="the paper's DMC18 budget: 400k env steps per task (GPU)"),
        ("atari", "quick"): dict(
            tasks=_suite_tasks("atari8", ["atari/Pong"], max_frames=SMOKE_ATARI_FRAMES), steps=400,
            eval_interval=0, eval_episodes=2, seeds=(0,), methods=("unizero", "sb3-dqn", "sb3-ppo"), preset="tiny",
            num_envs=4, learning_starts=100, note="plumbing check only"),
        ("atari", "default"): dict(
            tasks=_suite_tasks("atari8", ["atari/Pong", "atari/MsPacman"], max_frames=SMOKE_ATARI_FRAMES),
            steps=800, eval_interval=0, eval_episodes=3, seeds=(0,),
            methods=("unizero", "scalezero", "sb3-dqn", "sb3-ppo"), preset="tiny", num_envs=4, learning_starts=200,
            note=f"smoke run (<= 10 min on 2 cores): episodes capped at {SMOKE_ATARI_FRAMES} frames, 800 env steps "
                 "per game: nothing learns at this budget"),
        ("atari", "paper"): dict(
            tasks=_suite_tasks("atari8"), steps=400_000, eval_interval=20_000, eval_episodes=3, seeds=(0, 1, 2),
            methods=("unizero", "scalezero", "scalezero-dps", "sb3-dqn", "sb3-ppo"), preset="paper", num_envs=8,
            learning_starts=2_000, dps=_paper_dps("atari"),
            note="the paper's Atari8 budget: 400k env steps per game, 3 evaluation episodes (GPU)"),
        ("jericho", "quick"): dict(
            tasks=_suite_tasks("jericho4", ["jericho/omniquest"]), steps=150, eval_interval=0, eval_episodes=2,
            seeds=(0,), methods=("unizero", "sb3-dqn", "sb3-ppo"), preset="tiny", num_envs=2, learning_starts=50,
            note="plumbing check only"),
        ("jericho", "default"): dict(
            tasks=_suite_tasks("jericho4", ["jericho/detective", "jericho/omniquest"]), steps=300, eval_interval=0,
            eval_episodes=3, seeds=(0,), methods=("unizero", "scalezero", "sb3-dqn", "sb3-ppo"), preset="tiny",
            num_envs=2, learning_starts=100,
            note="smoke run (<= 10 min on 2 cores): 300 env steps per story: nothing learns at this budget"),
        ("jericho", "paper"): dict(
            tasks=_suite_tasks("jericho4"), steps=1_000_000, eval_interval=50_000, eval_episodes=10, seeds=(0, 1, 2),
            methods=("unizero", "scalezero", "sb3-dqn", "sb3-ppo"), preset="paper", num_envs=8, learning_starts=2_000,
            note="the paper's Jericho budget (UniZero single-task config): 1M env steps per story (GPU)"),
    }
    values = {**table[(benchmark, scale)], **{k: v for k, v in changes.items() if v is not None}}
    return Settings(benchmark=benchmark, scale=scale, **values)


def _paper_dps(kind: str) -> dict[str, Any]:
    from scalezero_agents.dps import DPSConfig

    return dataclasses.asdict(DPSConfig.paper(kind))


# ---------------------------------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class Job:
    """One training run: a method on one task (single-task methods) or on all tasks (multi-task ones)."""

    method: str
    tasks: TaskList
    seed: int

    @property
    def name(self) -> str:
        what = "mt" if len(self.tasks) > 1 else self.tasks[0][0].replace("/", "_")
        return f"{self.method}_{what}_s{self.seed}"

    def cost(self, settings: Settings) -> float:
        """Rough relative cost, to start the longest jobs first."""
        per_step = {"scalezero-dps": 1.6, "sb3-dqn": 0.05, "sb3-ppo": 0.02, "sb3-sac": 0.5}.get(self.method, 1.0)
        return per_step * settings.steps * len(self.tasks)


def make_jobs(settings: Settings) -> list[Job]:
    """Every run of the benchmark, longest first; baselines only on tasks whose action space they handle."""
    from baselines import ACTION_KINDS
    from scalezero_adapters import make_task

    kinds = {name: make_task(name, **opts).spec.action_kind for name, opts in settings.tasks}
    jobs = []
    for seed in settings.seeds:
        for method in settings.methods:
            if method in MULTITASK_METHODS:
                if len(settings.tasks) < 2:
                    raise ValueError(f"{method} is a multi-task method: it needs two or more tasks")
                jobs.append(Job(method, settings.tasks, seed))
                continue
            for name, opts in settings.tasks:
                if method.startswith("sb3-") and kinds[name] not in ACTION_KINDS[method[4:]]:
                    continue
                jobs.append(Job(method, ((name, opts),), seed))
    return sorted(jobs, key=lambda j: -j.cost(settings))


def run_job(job: Job, settings: Settings, runs_dir: str, threads: int = 1) -> str:
    """Run one job (in this process) and write its record; returns the record's path."""
    import torch
    from scalezero_adapters import make_task

    torch.set_num_threads(threads)
    tasks = [make_task(name, **opts) for name, opts in job.tasks]
    runs = Path(runs_dir)
    if job.method.startswith("sb3-"):
        from baselines import run_baseline

        save = runs / f"{job.name}.zip" if settings.final_episodes else None
        run_baseline(job.method[4:], tasks[0], seed=job.seed, steps=settings.steps,
                     eval_interval=settings.eval_interval, eval_episodes=settings.eval_episodes, name=job.name,
                     benchmark=settings.benchmark, runs_dir=runs, final_episodes=settings.final_episodes or None,
                     save_model=save)
        return str(runs / f"{job.name}.json")
    from learning import run_scalezero
    from report import write_run

    from scalezero_agents.training import TrainerConfig

    tcfg = TrainerConfig(num_envs=settings.num_envs, replay_ratio=settings.replay_ratio,
                         learning_starts=settings.learning_starts, eval_interval=settings.eval_interval,
                         eval_episodes=settings.eval_episodes)
    callbacks, extra = [], {}
    if job.method == "scalezero-dps":
        from scalezero_agents.dps import DPSCallback, DPSConfig

        dps = DPSConfig(**settings.dps_config())
        callbacks, extra = [DPSCallback(dps)], {"dps": dataclasses.asdict(dps)}
    checkpoint = runs / f"{job.name}.pt" if settings.final_episodes else None
    record = run_scalezero(job.name, tasks, seed=job.seed, steps=settings.steps, out_dir=runs, preset=settings.preset,
                           variant="unizero" if job.method == "unizero" else "scalezero",
                           overrides=settings.overrides, trainer_config=tcfg, callbacks=callbacks, threads=threads,
                           method=job.method, benchmark=settings.benchmark, checkpoint=checkpoint,
                           extra_config=extra)
    if checkpoint is not None:
        from scalezero_agents.evaluation import evaluate_checkpoint

        record["final_eval"] = evaluate_checkpoint(checkpoint, episodes=settings.final_episodes, seed=job.seed)
        write_run(record, runs)
    return str(runs / f"{job.name}.json")


def _run_job_logged(job: Job, settings: Settings, runs_dir: str, threads: int) -> tuple[str, float, str | None]:
    t0 = time.perf_counter()
    try:
        run_job(job, settings, runs_dir, threads)
        return job.name, time.perf_counter() - t0, None
    except Exception:
        return job.name, time.perf_counter() - t0, traceback.format_exc()


def run_jobs(jobs: Sequence[Job], settings: Settings, runs_dir: Path, *, processes: int = 2,
             threads: int = 1) -> dict[str, str]:
    """Run ``jobs`` (in ``processes`` spawned workers, one job per worker process); returns failures by name."""
    failures: dict[str, str] = {}

    def done(name: str, seconds: float, error: str | None) -> None:
        status = "FAILED" if error else "done"
        print(f"== {name}: {status} in {seconds / 60:.1f} min", flush=True)
        if error:
            print(error, file=sys.stderr, flush=True)
            failures[name] = error

    if processes <= 1:
        for job in jobs:
            done(*_run_job_logged(job, settings, str(runs_dir), threads))
        return failures
    with ProcessPoolExecutor(max_workers=processes, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool:
        futures = [pool.submit(_run_job_logged, job, settings, str(runs_dir), threads) for job in jobs]
        for future in as_completed(futures):
            done(*future.result())
    return failures


# ---------------------------------------------------------------------------------------------- reporting
def task_info(settings: Settings) -> dict[str, dict[str, Any]]:
    """Random / reference scores and target return of every task (for normalisation and the plots)."""
    from scalezero_adapters import make_task

    out = {}
    for name, opts in settings.tasks:
        spec = make_task(name, **opts).spec
        out[name] = {"random": spec.random_score, "reference": spec.reference_score, "target": spec.target_return,
                     "action_repeat": spec.action_repeat, "max_episode_steps": spec.max_episode_steps}
    return out


def describe(settings: Settings, info: dict[str, dict[str, Any]]) -> tuple[str, list[str]]:
    """The table's title and header notes: budgets, protocol, methods and where the numbers came from."""
    from report import package_versions

    s = settings
    versions = package_versions()
    repeats = sorted({i["action_repeat"] for i in info.values()})
    repeat = ", ".join(str(r) for r in repeats)
    title = f"Benchmark `{s.benchmark}`, scale `{s.scale}`"
    seeds = ", ".join(str(x) for x in s.seeds)
    notes = [
        f"{s.note}.",
        f"Tasks: {', '.join(name for name, _ in s.tasks)} (action repeat {repeat}).",
        f"Budget: {s.steps:,} env steps per task for every method (agent steps: with action repeat k the simulator "
        f"runs k steps per agent step); seeds {seeds}.",
        f"Protocol: {s.eval_episodes} greedy / deterministic episodes on separate eval envs "
        + (f"every {s.eval_interval:,} env steps of the task and at the end" if s.eval_interval else "at the end")
        + " (`MultiTaskTrainer.evaluate`; SB3 evaluated the same way, same episode seeds). Final = the last "
          "evaluation" + (f"; here a separate final evaluation of {s.final_episodes} episodes" if s.final_episodes
                          else "") + ".",
        *([f"ScaleZero: preset `{s.preset}`, {s.num_envs} training envs per task, replay ratio {s.replay_ratio}, "
           f"learning starts {s.learning_starts:,} env steps ({s.updates:,} updates)"
           + (f", overrides {s.overrides}" if s.overrides else "") + ". UniZero (ST): one dense model per task; "
           "ScaleZero (MT): one MoE model for all tasks"
           + (f"; +DPS: LoRA stages ({s.dps_config()}), solved tasks stop collecting" if "scalezero-dps" in s.methods
              else "") + "."] if set(s.methods) & set(SCALEZERO_METHODS) else []),
        "SB3 (one model per task): rl-baselines3-zoo hyper-parameters where an entry exists, else SB3 defaults "
        "(each run's `config.source`); budget rules: learning_starts <= 10% and a PPO rollout <= 25% of the "
        "budget (`config.adjusted`). DQN only on discrete tasks, SAC only on continuous ones.",
        f"Generated {datetime.date.today().isoformat()} by `python benchmarks/"
        + ("dmc_eval.py" if s.benchmark == "dmc" else f"suite.py {s.benchmark}") + f" --scale {s.scale}`"
        f"; scalezero-agents commit {str(versions.get('git_commit'))[:10]}, torch {versions.get('torch')}, "
        f"stable-baselines3 {versions.get('stable-baselines3')}, {versions.get('platform')}.",
    ]
    return title, notes


def write_meta(bench_dir: Path, settings: Settings, extra_notes: Sequence[str] = (),
               final_eval_table: str = "") -> Path:
    """Write ``benchmark.json`` (settings, title, notes, task info) for ``report.write_report``."""
    info = task_info(settings)
    title, notes = describe(settings, info)
    meta = {"title": title, "notes": [*notes, *extra_notes], "task_info": info,
            "settings": dataclasses.asdict(settings), "final_eval_table": final_eval_table}
    path = bench_dir / "benchmark.json"
    bench_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta, indent=1, default=str))
    return path


def default_out(benchmark: str, scale: str) -> Path:
    """``bench_results/<benchmark>`` (default scale) or ``bench_results/<benchmark>-<scale>``."""
    return Path("bench_results") / (benchmark if scale == "default" else f"{benchmark}-{scale}")


def run_benchmark(settings: Settings, out: Path, *, processes: int = 2, threads: int = 1, resume: bool = False,
                  skip: Sequence[str] = ()) -> dict[str, str]:
    """Run every job of ``settings`` not yet done (``resume``) and not in ``skip``; returns the failures."""
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    jobs = make_jobs(settings)
    if not resume:
        # records and SB3 models; ScaleZero checkpoints (.pt) are kept: one may be the --checkpoint being evaluated
        stale = [p for p in runs_dir.iterdir() if p.suffix in (".json", ".zip", ".pkl")]
        for path in stale:
            path.unlink()
        if stale:
            print(f"removed {len(stale)} old run file(s) from {runs_dir}", flush=True)
    todo = [j for j in jobs if j.name not in skip and not (resume and (runs_dir / f"{j.name}.json").is_file())]
    print(f"{settings.benchmark} / {settings.scale}: {len(todo)} of {len(jobs)} runs to do in {processes} "
          f"process(es): {', '.join(j.name for j in todo)}", flush=True)
    write_meta(out, settings)
    return run_jobs(todo, settings, runs_dir, processes=processes, threads=threads)


def build_parser(description: str = __doc__) -> argparse.ArgumentParser:
    """The command line shared by ``suite.py`` and ``dmc_eval.py``."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=SCALES, default="default")
    parser.add_argument("--methods", nargs="+", choices=METHODS, help="a subset of the benchmark's methods")
    parser.add_argument("--seeds", type=int, nargs="+", help="override the scale's seeds")
    parser.add_argument("--steps", type=int, help="override the env-step budget per task")
    parser.add_argument("--eval-interval", type=int, help="override the evaluation interval (env steps)")
    parser.add_argument("--eval-episodes", type=int, help="override the episodes per evaluation")
    parser.add_argument("--preset", choices=("tiny", "small", "paper"), help="override the ScaleZero preset")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (1: run in this process)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--out", type=Path, help="output directory (default: bench_results/<benchmark>[-<scale>])")
    parser.add_argument("--resume", action="store_true", help="keep existing runs and skip their jobs")
    parser.add_argument("--report-only", action="store_true", help="only re-render the report from runs/")
    return parser


def settings_from_args(benchmark: str, args: argparse.Namespace, **changes: Any) -> Settings:
    """``settings_for`` with the command line's overrides."""
    return settings_for(benchmark, args.scale, methods=tuple(args.methods) if args.methods else None,
                        seeds=tuple(args.seeds) if args.seeds else None, steps=args.steps,
                        eval_interval=args.eval_interval, eval_episodes=args.eval_episodes, preset=args.preset,
                        **changes)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.add_argument("benchmark", choices=[b for b in BENCHMARKS if b != "dmc"],
                        help="classic, atari or jericho (DMC: benchmarks/dmc_eval.py)")
    args = parser.parse_args(argv)
    settings = settings_from_args(args.benchmark, args)
    out = args.out or default_out(args.benchmark, args.scale)
    t0 = time.perf_counter()
    failures: dict[str, str] = {}
    if not args.report_only:
        failures = run_benchmark(settings, out, processes=args.jobs, threads=args.threads, resume=args.resume)
    else:
        write_meta(out, settings)
    return finish(out, t0, failures)


def finish(out: Path, t0: float, failures: Mapping[str, str]) -> int:
    """Render and print the report; returns the exit status (1 if any run failed)."""
    from report import write_report

    paths = write_report(out)
    print(paths["table"].read_text())
    print("\n".join(f"{kind}: {path}" for kind, path in paths.items()))
    print(f"total wall time {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    if failures:
        print(f"FAILED runs: {sorted(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
