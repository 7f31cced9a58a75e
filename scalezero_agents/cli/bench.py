"""``scalezero bench``: run a benchmark script of the source checkout (``benchmarks/NAME.py``)."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from scalezero_agents.cli._common import CLIError, source_root

__all__ = ["add_parser", "bench_from_args", "benchmark_dir", "list_benchmarks"]

DESCRIPTION = """\
Run benchmarks/NAME.py of the source checkout with ARGS (e.g. `scalezero bench mcts --quick`,
`scalezero bench learning single --steps 20000`; `scalezero bench NAME --help` shows a benchmark's own
options). The benchmarks live in the repository, not in the installed package: install from a clone with
`pip install -e .`.
"""


def benchmark_dir() -> Path:
    """``benchmarks/`` of the source checkout the package is installed from.

    Raises:
        CLIError: the package is not installed from a source checkout (no ``benchmarks/`` beside it).
    """
    root = source_root()
    path = root / "benchmarks"
    if not (path.is_dir() and (root / "pyproject.toml").is_file()):
        raise CLIError(f"no benchmarks/ beside the installed package (looked in {root}): `scalezero bench` "
                       "runs the benchmarks of a source checkout; clone the repository and `pip install -e .`")
    return path


def list_benchmarks(path: Path) -> dict[str, str]:
    """Benchmark name -> first line of its docstring, for every runnable ``*.py`` in ``path``."""
    out: dict[str, str] = {}
    for file in sorted(path.glob("*.py")):
        if file.name.startswith("_"):
            continue
        source = file.read_text()
        if "__main__" not in source:
            continue
        doc = ast.get_docstring(ast.parse(source)) or ""
        out[file.stem] = doc.strip().splitlines()[0] if doc.strip() else ""
    return out


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``bench`` on the ``scalezero`` sub-command parsers."""
    p = subparsers.add_parser("bench", help="run a benchmark of the source checkout", description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--list", action="store_true", help="list the benchmarks")
    p.add_argument("name", nargs="?", metavar="NAME", help="benchmark name (file stem in benchmarks/)")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="arguments for the benchmark")
    p.set_defaults(func=bench_from_args)
    return p


def bench_from_args(args: argparse.Namespace, console: Console) -> int:
    """List the benchmarks, or run one as a subprocess and return its exit status."""
    path = benchmark_dir()
    available = list_benchmarks(path)
    if args.list:
        table = Table(title=f"benchmarks in {path}")
        table.add_column("name")
        table.add_column("what it measures")
        for name, doc in available.items():
            table.add_row(name, doc)
        console.print(table)
        return 0
    if args.name is None:
        raise CLIError(f"name a benchmark (one of {sorted(available)}) or use --list")
    if args.name not in available:
        raise CLIError(f"unknown benchmark {args.name!r}; choose from {sorted(available)}")
    cmd = [sys.executable, str(path / f"{args.name}.py"), *args.args]
    return subprocess.call(cmd)
