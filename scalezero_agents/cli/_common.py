"""Pieces shared by the ``scalezero`` subcommands: errors, ``KEY=VALUE`` parsing, versions, result tables."""

from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.markup import escape
from rich.table import Table

import scalezero_agents

__all__ = [
    "CLIError",
    "format_return",
    "git_commit",
    "parse_assignments",
    "parse_value",
    "result_table",
    "source_root",
    "versions",
    "write_json",
]


class CLIError(Exception):
    """A bad argument or input file: ``main`` prints the message on one line and exits with status 2."""


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (``4``, ``0.5``, ``true``, ``[0.9, 0.95]``), else the string.

    JSON lists become tuples (the config classes hold tuples).
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return _tuples(value)


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def parse_assignments(items: Iterable[str], *, flag: str) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}``.

    Raises:
        CLIError: an item without ``=``, an empty key, or a key given twice (the message names ``flag``).
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CLIError(f"{flag} takes KEY=VALUE, got {item!r}")
        if key in out:
            raise CLIError(f"{flag} {key} is given twice")
        out[key] = parse_value(text.strip())
    return out


def source_root() -> Path:
    """The directory above the installed ``scalezero_agents`` package (the repository for editable installs)."""
    return Path(scalezero_agents.__file__).resolve().parent.parent


def git_commit() -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the source checkout, or ``None`` outside a git checkout."""
    root = source_root()
    if not (root / ".git").exists():
        return None
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha, "dirty": bool(status.strip())}


def versions() -> dict[str, str]:
    """Versions of Python, torch, NumPy and scalezero-agents."""
    import numpy
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "scalezero_agents": scalezero_agents.__version__}


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as indented JSON (values JSON cannot hold are written with ``str``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")
    return path


def format_return(res: Mapping[str, Any]) -> str:
    """``"mean ± std"`` of one task's evaluation result."""
    return f"{res['mean']:.1f} ± {res['std']:.1f}"


def result_table(
    title: str,
    results: Mapping[str, Mapping[str, Any]],
    specs: Sequence[Any],
    *,
    extra: Mapping[str, Mapping[str, str]] | None = None,
) -> Table:
    """A rich table of per-task evaluation results.

    Args:
        title: the table's title.
        results: task name -> result dict (``mean``, ``std``, ``min``, ``max``, optionally ``normalized``,
            ``solved``).
        specs: the ``TaskSpec`` of every task in ``results`` (for the action kind and the target return).
        extra: additional columns: column name -> (task name -> cell text).
    """
    by_name = {spec.name: spec for spec in specs}
    table = Table(title=escape(title), box=box.SIMPLE_HEAVY)
    table.add_column("task", no_wrap=True)
    table.add_column("actions", justify="right")
    for col in ("return", "min / max", "normalized", "target", *(extra or {})):
        table.add_column(col, justify="right")
    for name, res in results.items():
        spec = by_name[name]
        kind = f"{spec.num_actions} discrete" if spec.is_discrete else f"{spec.action_dim}-d cont."
        target = "-" if spec.target_return is None else f"{spec.target_return:g}"
        if res.get("solved"):
            target += " (solved)"
        norm = f"{res['normalized']:.3f}" if "normalized" in res else "-"
        cells = [escape(name), kind, format_return(res), f"{res['min']:.1f} / {res['max']:.1f}", norm, target]
        cells += [escape(column.get(name, "")) for column in (extra or {}).values()]
        table.add_row(*cells)
    return table
