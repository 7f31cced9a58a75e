"""The ``scalezero`` command line: ``train``, ``eval`` and ``bench``.

    scalezero train --suite classic --preset tiny --steps 2000      # progress bar, checkpoint, summary
    scalezero eval runs/classic-s0 --episodes 10 --json eval.json    # per-task returns
    scalezero bench --list

Also ``python -m scalezero_agents.cli``. Bad arguments (unknown task, suite, preset or config key; a missing,
foreign or incompatible checkpoint) end with a one-line message and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rich.console import Console

import scalezero_agents
from scalezero_agents.cli import bench, evaluate, train
from scalezero_agents.cli._common import CLIError

__all__ = ["CLIError", "build_parser", "main", "make_console"]


def build_parser() -> argparse.ArgumentParser:
    """The ``scalezero`` argument parser with its sub-commands."""
    parser = argparse.ArgumentParser(
        prog="scalezero", description="ScaleZero: one world model planned with MCTS for many tasks.",
        epilog="`scalezero COMMAND --help` describes each command.")
    parser.add_argument("--version", action="version", version=f"scalezero-agents {scalezero_agents.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    train.add_parser(subparsers)
    evaluate.add_parser(subparsers)
    bench.add_parser(subparsers)
    return parser


def make_console() -> Console:
    """A console for the commands' output: the terminal's width, or 120 columns when writing to a file or pipe
    (unless ``COLUMNS`` is set), so logs keep the tables readable."""
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 120
    return console


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad arguments, else the command's own)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, argparse errors (status 2, message already printed)
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_help()
        return 2
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `train --distributed` re-runs it under torchrun
    try:
        return int(args.func(args, make_console()))
    except CLIError as exc:
        print(f"scalezero {args.command}: error: {exc}", file=sys.stderr)
        return 2
