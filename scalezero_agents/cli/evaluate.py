"""``scalezero eval``: greedy evaluation of a checkpoint, per task, with optional videos and JSON."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from scalezero_agents.cli._common import CLIError, result_table, write_json

__all__ = ["add_parser", "eval_from_args"]

DESCRIPTION = """\
Evaluate a checkpoint greedily: per task mean ± std, min/max and the normalised score (where the task has
one). CHECKPOINT is a checkpoint file or a run directory of `scalezero train` (its checkpoint.pt). Tasks are
rebuilt with the checkpoint's own settings (e.g. DMC action repeat) in evaluation mode. --video records the
first episode of each task (mp4 with imageio-ffmpeg installed, else gif): Atari and DMC render (DMC
headless via MUJOCO_GL=egl or osmesa), Gymnasium classic control needs pygame, Jericho (text) cannot.
"""


def _int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an int >= ``low``."""
    wanted = "a positive integer" if low == 1 else f"an integer >= {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


_positive, _non_negative = _int_at_least(1), _int_at_least(0)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``eval`` on the ``scalezero`` sub-command parsers."""
    p = subparsers.add_parser("eval", help="evaluate a checkpoint", description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint file or run directory")
    p.add_argument("--tasks", nargs="+", metavar="NAME", help="evaluate only these of the checkpoint's tasks")
    p.add_argument("--episodes", type=_positive, default=10, help="episodes per task (default 10)")
    p.add_argument("--seed", type=_non_negative, default=0, help="seeds the envs and the searches (default 0)")
    p.add_argument("--simulations", type=_positive, help="simulations per search (default: the checkpoint's "
                                                         "eval_simulations)")
    p.add_argument("--video", metavar="DIR", help="record one episode per task into DIR")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--threads", type=_positive, default=1, help="torch CPU threads (default 1)")
    p.set_defaults(func=eval_from_args)
    return p


def eval_from_args(args: argparse.Namespace, console: Console) -> int:
    """Run ``scalezero eval`` for parsed arguments; returns the exit status.

    Raises:
        CLIError: missing or foreign checkpoint, tasks not in the checkpoint, unknown task names.
    """
    import torch

    from scalezero_agents.evaluation import evaluate_trainer, load_checkpoint, resolve_checkpoint, select_task_ids

    torch.set_num_threads(args.threads)
    try:
        path = resolve_checkpoint(args.checkpoint)
        trainer = load_checkpoint(path)
        ids = select_task_ids(trainer, args.tasks)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from exc
    sims = args.simulations or trainer.config.eval_simulations
    console.print(f"{path}: {len(trainer.specs)} task(s), {int(trainer.env_steps.max()):,} env steps per task, "
                  f"{trainer.updates:,} updates; {args.episodes} episode(s) per task, {sims} simulations",
                  markup=False)
    columns = (TextColumn("[bold]eval"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn(), TextColumn("{task.fields[name]}"))
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("eval", total=len(ids), name=escape(trainer.specs[ids[0]].name))
        names = [trainer.specs[t].name for t in ids]

        def advance(name: str, _result: dict[str, float]) -> None:
            nxt = names.index(name) + 1
            progress.update(bar, advance=1, name=escape(names[nxt]) if nxt < len(names) else "")

        report = evaluate_trainer(trainer, ids, episodes=args.episodes, seed=args.seed,
                                  num_simulations=args.simulations, video_dir=args.video, on_task=advance)
    extra = {"length": {n: f"{r['length']:.0f}" for n, r in report.results.items()}}
    title = f"{path}: greedy, {args.episodes} episode(s) per task, seed {args.seed}"
    console.print(result_table(title, report.results, trainer.specs, extra=extra))
    for name, video in report.videos.items():
        console.print(f"video of {name}: {video}", markup=False)
    for name, reason in report.video_errors.items():
        console.print(f"no video for {name}: {reason}", markup=False)
    if args.json:
        write_json(Path(args.json), {"checkpoint": str(path), "seed": args.seed, "episodes": args.episodes,
                                     "simulations": sims, "results": report.results,
                                     "videos": {n: str(p) for n, p in report.videos.items()},
                                     "video_errors": report.video_errors})
        console.print(f"results: {escape(args.json)}")
    return 0
