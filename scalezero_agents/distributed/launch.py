"""Command line of distributed training: the per-rank entry point and a ``torchrun`` launcher.

Per rank (what ``torchrun`` starts)::

    torchrun --standalone --nproc_per_node=2 -m scalezero_agents.distributed --suite classic --preset tiny \\
        --steps 20000 --log-dir runs/classic-2ranks
    torchrun --standalone --nproc_per_node=4 -m scalezero_agents.distributed \\
        --resume runs/classic-2ranks/checkpoint.pt --steps 40000 --log-dir runs/classic-4ranks

From Python or another CLI (it re-executes under ``torchrun``)::

    from scalezero_agents.distributed import launch
    exit_code = launch(["--suite", "classic", "--steps", "20000", "--log-dir", "runs/x"], nproc_per_node=2)

Without ``torchrun`` (no ``RANK``/``WORLD_SIZE`` in the environment) ``python -m scalezero_agents.distributed``
runs as a group of one. A failure on any rank prints ``[rank r/N] error: ...`` on that rank; the others stop
with a :class:`~scalezero_agents.distributed.comm.PeerError` within the timeout, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

MODULE = "scalezero_agents.distributed"


def build_parser() -> argparse.ArgumentParser:
    """The per-rank arguments (every rank must get the same ones)."""
    p = argparse.ArgumentParser(prog=f"torchrun --nproc_per_node=N -m {MODULE}",
                                description="Multi-task training with tasks sharded over torch.distributed ranks.")
    what = p.add_argument_group("tasks and model")
    what.add_argument("--suite", help="task suite (classic, atari8, atari26, dmc18, jericho4)")
    what.add_argument("--task", action="append", default=[], help="a task name (repeatable), instead of --suite")
    what.add_argument("--preset", default="tiny", help="tiny, small or paper")
    what.add_argument("--variant", default=None, help="unizero (dense) or scalezero (MoE; default for >1 task)")
    what.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="config override, e.g. learner.learning_rate=0.0003 (repeatable)")
    what.add_argument("--seed", type=int, default=0)
    what.add_argument("--dps", action="store_true", help="Dynamic Parameter Scaling with the default DPSConfig")
    run = p.add_argument_group("run")
    run.add_argument("--steps", type=int, required=True, help="environment steps per task (total, also on resume)")
    run.add_argument("--resume", type=Path, help="checkpoint to continue from, with any number of ranks (its config, "
                     "trainer settings and seed are used; pass --dps again for a DPS run)")
    run.add_argument("--log-dir", type=Path, help="TensorBoard, history.json and checkpoint.pt (rank 0 writes)")
    run.add_argument("--num-envs", type=int, default=8)
    run.add_argument("--replay-ratio", type=float, default=0.25)
    run.add_argument("--learning-starts", type=int, default=1_000)
    run.add_argument("--eval-interval", type=int, default=5_000)
    run.add_argument("--eval-episodes", type=int, default=10)
    run.add_argument("--checkpoint-interval", type=int, default=0, help="env steps per task between checkpoints")
    run.add_argument("--summary-json", type=Path, help="rank 0 writes throughput and final results here")
    run.add_argument("--no-progress", action="store_true", help="no progress bar on rank 0")
    comm = p.add_argument_group("distributed")
    comm.add_argument("--backend", default="auto", choices=["auto", "gloo", "nccl"],
                      help="auto: nccl when CUDA is available, else gloo")
    comm.add_argument("--timeout", type=float, default=900.0,
                      help="seconds a rank waits for the others before failing (covers one evaluation)")
    comm.add_argument("--threads", type=int, default=None, help="torch CPU threads per rank")
    return p


def _parse_value(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train on this rank as ``args`` say; returns the run summary (every rank)."""
    import torch
    from scalezero_adapters import make_suite, make_task

    from scalezero_agents.config import preset
    from scalezero_agents.distributed.comm import DistributedConfig, init_distributed
    from scalezero_agents.distributed.dps import DistributedDPSCallback
    from scalezero_agents.distributed.trainer import DistributedTrainer
    from scalezero_agents.training import TrainerConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    comm = init_distributed(DistributedConfig(backend=args.backend, timeout_s=args.timeout))
    callbacks = [DistributedDPSCallback()] if args.dps else []
    common = {"comm": comm, "log_dir": args.log_dir, "callbacks": callbacks, "progress_bar": not args.no_progress}
    if args.resume is not None:
        tasks = _tasks(args, make_suite, make_task) if (args.suite or args.task) else None
        trainer = DistributedTrainer.load(args.resume, tasks, **common)
    else:
        tasks = _tasks(args, make_suite, make_task)
        if tasks is None:
            raise SystemExit("give --suite or --task (or --resume)")
        bad = [kv for kv in args.set if "=" not in kv]
        if bad:
            raise SystemExit(f"--set expects KEY=VALUE, got {bad}")
        overrides = {k: _parse_value(v) for k, v in (kv.split("=", 1) for kv in args.set)}
        variant = args.variant or ("scalezero" if len(tasks) > 1 else "unizero")
        tcfg = TrainerConfig(num_envs=args.num_envs, replay_ratio=args.replay_ratio,
                             learning_starts=args.learning_starts, eval_interval=args.eval_interval,
                             eval_episodes=args.eval_episodes, checkpoint_interval=args.checkpoint_interval)
        trainer = DistributedTrainer(tasks, config=preset(args.preset, variant, **overrides), trainer=tcfg,
                                     seed=args.seed, **common)
    steps0, updates0, time0 = int(trainer.env_steps.sum()), trainer.updates, trainer.train_time
    start, cpu0, eval_cpu0 = time.perf_counter(), time.process_time(), trainer.eval_cpu_time
    history = trainer.train(args.steps)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu0 - (trainer.eval_cpu_time - eval_cpu0)
    if args.log_dir is not None:
        trainer.save(args.log_dir / "checkpoint.pt")
    times = comm.all_gather_object((trainer.train_time - time0, cpu), "summary gather")
    busy, busy_cpu = max(t for t, _ in times), max(c for _, c in times)
    steps, updates = int(trainer.env_steps.sum()) - steps0, trainer.updates - updates0
    summary = {
        "world_size": comm.world_size, "backend": comm.backend,
        "shards": [[trainer.specs[t].name for t in shard] for shard in trainer.shards],
        "env_steps": steps, "updates": updates, "train_time": busy, "wall_time": wall,
        "env_steps_per_s": steps / max(busy, 1e-9), "updates_per_s": updates / max(busy, 1e-9),
        # CPU seconds of the busiest rank outside evaluation: the speed with a free core per rank
        "cpu_time": busy_cpu, "rank_cpu_times": [c for _, c in times],
        "env_steps_per_cpu_s": steps / max(busy_cpu, 1e-9), "updates_per_cpu_s": updates / max(busy_cpu, 1e-9),
        "final_eval": history[-1]["tasks"] if history else {},
    }
    if comm.rank == 0 and args.summary_json is not None:
        args.summary_json.parent.mkdir(parents=True, exist_ok=True)
        args.summary_json.write_text(json.dumps(summary, indent=1))
    return summary


def _tasks(args: argparse.Namespace, make_suite: Any, make_task: Any) -> list[Any] | None:
    if args.suite and args.task:
        raise SystemExit("give either --suite or --task, not both")
    if args.suite:
        return make_suite(args.suite)
    if args.task:
        return [make_task(name) for name in args.task]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Per-rank entry point: train, or print this rank's error and exit with 1 (other ranks then fail fast)."""
    args = build_parser().parse_args(argv)
    return run_rank(lambda: run(args))


def run_rank(fn: Callable[[], object]) -> int:
    """Run one rank's work: 0 after leaving the process group, or, on any failure, print the traceback and
    ``[rank r/N] error: ...`` and end the process at once with exit code 1 (no interpreter teardown, which
    can block on a process group whose peers are gone). The other ranks' next collective then fails."""
    rank, world = os.environ.get("RANK", "0"), os.environ.get("WORLD_SIZE", "1")
    try:
        fn()
    except (Exception, KeyboardInterrupt) as e:  # every failure must end this rank loudly
        traceback.print_exc()
        print(f"[rank {rank}/{world}] error: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(1)
    from scalezero_agents.distributed.comm import shutdown

    shutdown()
    return 0


def torchrun_command(argv: Sequence[str], nproc_per_node: int, *, module: str = MODULE,
                     standalone: bool = True) -> list[str]:
    """The ``torchrun`` command line that runs ``python -m MODULE ARGV`` on ``nproc_per_node`` local ranks."""
    if isinstance(nproc_per_node, bool) or not isinstance(nproc_per_node, int) or nproc_per_node < 1:
        raise ValueError(f"nproc_per_node must be a positive int, got {nproc_per_node!r}")
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc_per_node}"]
    if standalone:
        cmd.append("--standalone")
    return [*cmd, "-m", module, *argv]


def launch(argv: Sequence[str], nproc_per_node: int = 2, *, module: str = MODULE,
           env: dict[str, str] | None = None) -> int:
    """Run distributed training on this machine: ``torchrun --standalone --nproc_per_node=N -m MODULE ARGV``.
    Returns torchrun's exit code (0: every rank succeeded; torchrun ends the other ranks as soon as one fails).

    With the default ``module`` (this package's entry point) ``argv`` are :func:`build_parser`'s arguments,
    checked here once. Another command line can re-execute itself under ``torchrun`` by naming its own module
    (e.g. ``module="scalezero_agents.cli", argv=["train", ...]``); each rank then calls
    :func:`~scalezero_agents.distributed.init_distributed` and builds a ``DistributedTrainer``.
    """
    if module == MODULE:
        build_parser().parse_args(list(argv))  # fail here, once, on bad arguments
    run_env = {**os.environ, **(env or {})}
    run_env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.call(torchrun_command(argv, nproc_per_node, module=module), env=run_env)
