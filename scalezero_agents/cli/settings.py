"""``TrainSettings``: what ``scalezero train`` was asked to do, validated, saved as ``<out>/run.json``.

A fresh run takes its settings from the command line; ``--resume`` reads them back from ``run.json``, so a
resumed run continues with exactly the settings it started with (only ``--steps``, ``--threads`` and
``--no-progress`` may change).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalezero_agents.cli._common import CLIError

__all__ = ["DEFAULT_STEPS", "LOCKED", "RUN_FILE", "TrainSettings", "default_out", "resolve_settings"]

RUN_FILE = "run.json"
DEFAULT_STEPS = 20_000
DEFAULT_PRESET = "small"
DEFAULT_CHECKPOINT_INTERVAL = 10_000
LOCKED = ("suite", "tasks", "task_options", "preset", "variant", "seed", "num_envs", "eval_interval",
          "eval_episodes", "checkpoint_interval", "overrides", "dps", "stop_when_solved")
"""Settings a resumed run keeps (giving a different value with ``--resume`` is an error)."""


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """One ``scalezero train`` run (see ``scalezero train --help`` for each option)."""

    out: str
    """Output directory: ``checkpoint.pt``, ``summary.json``, ``history.json``, ``run.json``, TensorBoard."""
    suite: str | None = None
    """Suite name (``scalezero_adapters.SUITES``); with ``tasks``, the suite whose settings they use."""
    tasks: tuple[str, ...] = ()
    """Task names (``family/task``); empty: the whole suite."""
    task_options: tuple[str, ...] = ()
    """``family.option=value`` items applied to every task of that family (e.g. ``dmc.action_repeat=4``)."""
    preset: str = DEFAULT_PRESET
    variant: str | None = None
    """``unizero`` or ``scalezero``; ``None``: scalezero (MoE) for several tasks, unizero for one."""
    steps: int = DEFAULT_STEPS
    """Environment steps per task (the total budget, counted from the run's start)."""
    seed: int = 0
    num_envs: int | None = None
    """Training environments per task (``None``: ``TrainerConfig``'s default)."""
    eval_interval: int | None = None
    eval_episodes: int | None = None
    checkpoint_interval: int = DEFAULT_CHECKPOINT_INTERVAL
    """Write ``checkpoint.pt`` every this many env steps per task (0: only at the end)."""
    overrides: tuple[str, ...] = ()
    """``--set KEY=VALUE`` items: agent config keys (``learner.learning_rate``) or ``trainer.<field>``."""
    dps: bool = False
    stop_when_solved: bool = False
    threads: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        from scalezero_agents.config import PRESETS, VARIANTS

        for name in ("tasks", "task_options", "overrides"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{name} must be a sequence of strings, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        if self.suite is None and not self.tasks:
            raise ValueError("give --suite NAME or --tasks NAME [NAME ...]")
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks listed twice in {list(self.tasks)}")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose from {list(PRESETS)}")
        if self.variant is not None and self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose from {list(VARIANTS)}")
        for name, low in (("steps", 1), ("seed", 0), ("threads", 1), ("checkpoint_interval", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSettings:
        """Settings from :meth:`to_dict` (unknown keys are errors)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible data."""
        return dataclasses.asdict(self)

    def label(self) -> str:
        """A short name of the run's tasks: the suite, or the task names."""
        if self.suite is not None and not self.tasks:
            return self.suite
        slug = "+".join(re.sub(r"[^A-Za-z0-9_.-]+", "_", t) for t in self.tasks)
        prefix = f"{self.suite}-" if self.suite else ""
        return prefix + (slug if len(slug) <= 60 else f"{self.tasks[0].replace('/', '_')}+{len(self.tasks) - 1}more")


def default_out(label: str, seed: int) -> str:
    """``runs/<label>-s<seed>``."""
    return str(Path("runs") / f"{label}-s{seed}")


@dataclass
class _Given:
    """The options given on the command line (``None``: not given)."""

    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> _Given:
        keys = (*LOCKED, "steps", "threads", "out")
        values = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
        for k in ("tasks", "task_options", "overrides"):
            if k in values:
                values[k] = tuple(values[k])
        return cls(values)


def resolve_settings(args: argparse.Namespace) -> TrainSettings:
    """The run's settings: from the command line, or with ``--resume`` from ``<out>/run.json``.

    Raises:
        CLIError: invalid settings; with ``--resume``: no ``run.json``, or a locked setting that differs.
    """
    given = _Given.from_args(args)
    progress = not args.no_progress
    if not args.resume:
        values = dict(given.values)
        if "out" not in values:
            probe = _settings({**values, "out": "."})
            values["out"] = default_out(probe.label(), probe.seed)
        return _settings({**values, "progress": progress})
    out = given.values.get("out")
    if out is None:
        if "suite" not in given.values and "tasks" not in given.values:
            raise CLIError("--resume needs --out DIR (or the --suite/--tasks and --seed of the run)")
        probe = _settings({**given.values, "out": "."})
        out = default_out(probe.label(), probe.seed)
    run_file = Path(out) / RUN_FILE
    if not run_file.is_file():
        raise CLIError(f"nothing to resume: no {RUN_FILE} in {out} (was the run started by `scalezero train`?)")
    try:
        saved = TrainSettings.from_dict(json.loads(run_file.read_text()))
    except (ValueError, TypeError) as exc:
        raise CLIError(f"{run_file} is not a valid run file: {exc}") from exc
    for key in LOCKED:
        if key in given.values and given.values[key] != getattr(saved, key):
            raise CLIError(f"--resume continues the run with its own settings: it used {key}="
                           f"{getattr(saved, key)!r}, not {given.values[key]!r} (drop that option)")
    changes = {k: given.values[k] for k in ("steps", "threads") if k in given.values}
    return _settings({**saved.to_dict(), **changes, "out": out, "progress": progress})


def _settings(values: dict[str, Any]) -> TrainSettings:
    try:
        return TrainSettings.from_dict(values)
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc)) from exc
