"""``scalezero train``: train one model on a suite or a list of tasks; resume a run; write its summary."""

from __future__ import annotations

import argparse
import time
from typing import Any

from rich.console import Console
from rich.markup import escape

from scalezero_agents.cli._common import CLIError, write_json
from scalezero_agents.cli.settings import DEFAULT_CHECKPOINT_INTERVAL, DEFAULT_PRESET, DEFAULT_STEPS

__all__ = ["add_parser", "run_training", "train_from_args"]

DESCRIPTION = """\
Train one agent on several tasks at once (the native MultiTaskTrainer), with a progress bar, periodic
evaluations and checkpoints, and a summary at the end.

Which tasks, and with which settings:
  --suite NAME              every task of the suite, with the suite's settings (e.g. classic: DMC action
                            repeat 4);
  --suite NAME --tasks A B  only tasks A and B of that suite, still with the suite's settings;
  --tasks A B               tasks by name (family/task: gym/CartPole-v1, dmc/walker-walk, atari/Pong,
                            jericho/detective), each with its family's defaults;
  --task-option FAMILY.OPTION=VALUE  on top of either, for every task of that family
                            (e.g. dmc.action_repeat=4, atari.grayscale=true, jericho.story_dir=/data).

Output (--out, default runs/<suite or tasks>-s<seed>): checkpoint.pt (final, and every
--checkpoint-interval env steps per task), history.json (every evaluation), summary.json (settings, config,
versions, git commit, final per-task returns, throughput), run.json (the settings, for --resume) and
TensorBoard scalars. --resume continues <out>/checkpoint.pt with the run's own settings; only --steps
(the total budget per task), --threads and --no-progress may change.
"""

EXAMPLES = """\
examples:
  scalezero train --suite classic --preset tiny --steps 2000
  scalezero train --tasks gym/CartPole-v1 --steps 30000 --set learner.learning_rate=3e-4
  scalezero train --suite classic --tasks dmc/cartpole-balance --dps --stop-when-solved
  scalezero train --out runs/classic-s0 --resume --steps 40000
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``train`` on the ``scalezero`` sub-command parsers."""
    p = subparsers.add_parser("train", help="train on a suite or tasks", description=DESCRIPTION, epilog=EXAMPLES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_argument_group("tasks")
    what.add_argument("--suite", help="suite name: classic, atari8, atari26, dmc18, jericho4")
    what.add_argument("--tasks", nargs="+", metavar="NAME", help="task names (family/task)")
    what.add_argument("--task-option", dest="task_options", action="append", metavar="FAMILY.OPTION=VALUE",
                      help="env option for every task of a family (repeatable)")
    agent = p.add_argument_group("agent")
    agent.add_argument("--preset", help=f"tiny, small or paper (default {DEFAULT_PRESET})")
    agent.add_argument("--variant", help="unizero (dense) or scalezero (MoE); default: scalezero for several "
                                         "tasks, unizero for one")
    agent.add_argument("--set", dest="overrides", action="append", metavar="KEY=VALUE",
                       help="config override, repeatable: agent keys (learner.learning_rate=3e-4, "
                            "search.num_simulations=8, eval_simulations=8, device=cuda) or trainer.<field> "
                            "(trainer.replay_ratio=0.5, trainer.learning_starts=500)")
    agent.add_argument("--dps", action="store_true", default=None,
                       help="Dynamic Parameter Scaling (LoRA stages; default DPSConfig)")
    loop = p.add_argument_group("training loop")
    loop.add_argument("--steps", type=int, help=f"env steps per task, in total (default {DEFAULT_STEPS:,})")
    loop.add_argument("--seed", type=int, help="seeds everything (default 0)")
    loop.add_argument("--num-envs", type=int, help="training envs per task (default 8)")
    loop.add_argument("--eval-interval", type=int, help="evaluate every N env steps per task (default 5,000; "
                                                        "0: only at the end)")
    loop.add_argument("--eval-episodes", type=int, help="greedy episodes per task and evaluation (default 10)")
    loop.add_argument("--checkpoint-interval", type=int, help="checkpoint every N env steps per task "
                                                              f"(default {DEFAULT_CHECKPOINT_INTERVAL:,}; 0: end)")
    loop.add_argument("--stop-when-solved", action="store_true", default=None,
                      help="stop training a task once it reaches its target return")
    run = p.add_argument_group("run")
    run.add_argument("--out", help="output directory (default runs/<suite or tasks>-s<seed>)")
    run.add_argument("--resume", action="store_true", help="continue <out>/checkpoint.pt with the run's settings")
    run.add_argument("--overwrite", action="store_true", help="replace an earlier run in --out")
    run.add_argument("--threads", type=int, help="torch CPU threads (default 1: the tiny/small presets run "
                                                 "fastest single-threaded)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    dist = p.add_argument_group("distributed (torch.distributed; see the README)")
    dist.add_argument("--distributed", type=int, metavar="N",
                      help="train with N processes on this machine: each owns a shard of the tasks and a model "
                           "replica, gradients are summed every update (gloo on CPU, NCCL with CUDA). Runs "
                           "torchrun for you; under your own torchrun, N must be its world size. A run resumes "
                           "with any N (or without --distributed)")
    dist.add_argument("--timeout", type=float, default=900.0,
                      help="seconds a process waits for the others before failing (covers one evaluation; "
                           "default 900)")
    p.set_defaults(func=train_from_args)
    return p


def train_from_args(args: argparse.Namespace, console: Console) -> int:
    """Run ``scalezero train`` for parsed arguments; returns the exit status.

    Raises:
        CLIError: bad arguments or inputs (reported before training starts).
    """
    from scalezero_agents.cli.prepare import prepare
    from scalezero_agents.cli.settings import resolve_settings

    if args.resume and args.overwrite:
        raise CLIError("--resume and --overwrite exclude each other")
    settings = resolve_settings(args)
    if args.distributed is not None:
        return _distributed(args, settings, console)
    session = prepare(settings, console, resume=args.resume, overwrite=args.overwrite)
    return run_training(session, console)


def _distributed(args: argparse.Namespace, settings: Any, console: Console) -> int:
    """``--distributed N``: outside torchrun, check the inputs and re-run this command line under ``torchrun``
    with N processes; inside (``WORLD_SIZE`` set), train as one rank of the group."""
    import os

    from scalezero_agents.cli.prepare import check_inputs

    n = args.distributed
    if n < 1:
        raise CLIError(f"--distributed takes a number of processes >= 1, got {n}")
    if not args.timeout > 0:
        raise CLIError(f"--timeout must be > 0 seconds, got {args.timeout}")
    world = os.environ.get("WORLD_SIZE")
    if world is None:
        num_tasks = check_inputs(settings, resume=args.resume, overwrite=args.overwrite)
        if n > num_tasks:
            raise CLIError(f"--distributed {n}: every process needs a task, and this run has {num_tasks}")
        from scalezero_agents.distributed import launch

        console.print(f"launching {n} processes: torchrun --standalone --nproc_per_node={n} "
                      f"-m scalezero_agents.cli {' '.join(args.argv)}", markup=False, highlight=False)
        return launch(args.argv, nproc_per_node=n, module="scalezero_agents.cli")
    if int(world) != n:
        raise CLIError(f"--distributed {n}, but torchrun started {world} processes")
    from scalezero_agents.cli.prepare import prepare
    from scalezero_agents.distributed import DistributedConfig, init_distributed, run_rank

    status = 1

    def rank_work() -> None:
        nonlocal status
        comm = init_distributed(DistributedConfig(timeout_s=args.timeout))
        rank_console = console if comm.rank == 0 else Console(quiet=True)
        session = prepare(settings, rank_console, resume=args.resume, overwrite=args.overwrite, comm=comm)
        status = run_training(session, rank_console)

    run_rank(rank_work)  # a failure ends this process at once (exit 1); the other ranks then fail fast
    return status


def run_training(session: Any, console: Console) -> int:
    """Train a prepared session to its budget, save the checkpoint, write and print the summary."""
    from scalezero_agents.cli.summary import build_summary, summary_table
    from scalezero_agents.evaluation import CHECKPOINT_NAME

    trainer, settings, out = session.trainer, session.settings, session.out
    names = ", ".join(spec.name for spec in trainer.specs)
    params = sum(p.numel() for p in trainer.agent.model.parameters())
    verb = f"resuming at {int(trainer.env_steps.max()):,} steps/task" if session.resumed else "training"
    console.print(f"{verb}: {names} | preset {settings.preset}, {params:,} parameters, "
                  f"{settings.steps:,} env steps per task, seed {trainer.seed} -> {out}", markup=False)
    start = time.perf_counter()
    try:
        trainer.train(settings.steps)
    except KeyboardInterrupt:
        last = out / CHECKPOINT_NAME
        hint = f"continue from {last} with --resume" if last.is_file() else "no checkpoint was written yet"
        console.print(f"interrupted: {hint}", markup=False)
        return 130
    wall = time.perf_counter() - start
    trainer.save(out / CHECKPOINT_NAME)  # distributed: every rank joins, rank 0 writes
    summary = build_summary(session, wall)
    if trainer.is_main:
        write_json(out / "history.json", trainer.history)
        write_json(out / "summary.json", summary)
    console.print(summary_table(summary, trainer.specs))
    console.print(f"checkpoint: {escape(str(out / CHECKPOINT_NAME))}   summary: {escape(str(out / 'summary.json'))}"
                  f"   wall time {wall:.0f} s")
    return 0
