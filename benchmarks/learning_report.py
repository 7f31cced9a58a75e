"""The learning benchmark's report: env steps to each task's target, multi-task vs single-task, DPS vs no DPS.

    python benchmarks/learning.py report [--out bench_results/learning]

reads every run record ``learning.py`` wrote in ``--out`` and writes ``<out>/report.md`` with three tables:

1. **Runs**: per run (single-task ``st_*``, multi-task ``mt_*``, multi-task with DPS ``mt-dps_*``) and task, the
   env steps of that task at its first evaluation with a mean return >= the task's target, and their sum: the
   env steps the run needed to reach *all* its targets. A target never reached counts the task's env steps at
   the end of the run and the cell is marked ``>=`` (a lower bound).
2. **Multi-task vs single-task** (issue 4): per task, the single-task budget (mean over its single-task seeds of
   the env steps to target), each multi-task run's env steps to target, and the ratio (<= 1: within budget).
3. **DPS vs no DPS** (issue 5): over the seeds run both with and without DPS, the mean env steps to reach all
   targets per method and the ratio DPS / no DPS (the paper reports 71.5%).

Targets are each task's ``TaskSpec.target_return`` (the last threshold a record lists), except where
:data:`TARGETS` sets the acceptance target (DMC cartpole-balance: 800; its TaskSpec, the DPS "solved" return, is
900). Runs are matched by their tag (``learning.py --tag``): a report covers the runs whose file names end with
the same tag, so that e.g. ``_lr3e-4`` runs are compared with each other only.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TARGETS = {"dmc/cartpole-balance": 800.0}
_NAME = re.compile(r"^(?P<kind>st|mt|mt-dps)_(?P<what>.+)_s(?P<seed>\d+)(?P<tag>.*)$")


@dataclass(frozen=True)
class Run:
    """One run record, reduced to what the report needs."""

    name: str
    kind: str  # "st", "mt" or "mt-dps"
    seed: int
    tag: str
    to_target: dict[str, int]  # task -> env steps of that task at its first evaluation >= target
    reached: dict[str, bool]  # task -> whether it reached the target (else to_target is a lower bound)

    @property
    def total(self) -> int:
        return sum(self.to_target.values())


def target_of(task: str, reached: dict[str, Any]) -> float:
    """The task's acceptance target: :data:`TARGETS`, else the last threshold in the record (its TaskSpec's)."""
    if task in TARGETS:
        return TARGETS[task]
    if not reached:
        raise ValueError(f"{task}: the record lists no threshold")
    return float(list(reached)[-1])


def parse(record: dict[str, Any]) -> Run:
    """A :class:`Run` from one ``learning.py`` record (``name``, ``tasks``, ``reached``, ``env_steps``)."""
    match = _NAME.match(record["name"])
    if match is None:
        raise ValueError(f"run name {record['name']!r} is not st_*, mt_* or mt-dps_*")
    to_target: dict[str, int] = {}
    reached: dict[str, bool] = {}
    for task in record["tasks"]:
        thresholds = record["reached"].get(task, {})
        target = str(target_of(task, thresholds))
        if target not in thresholds:
            raise ValueError(f"{record['name']}: {task} has no threshold {target} (it has {list(thresholds)})")
        first = thresholds[target]  # learning.py's first evaluation >= target, or None
        reached[task] = first is not None
        to_target[task] = int(first["env_steps"] if first is not None else record["env_steps"][task])
    return Run(record["name"], match["kind"], int(match["seed"]), match["tag"], to_target, reached)


def _steps(run: Run, task: str) -> str:
    return f"{'' if run.reached[task] else '>= '}{run.to_target[task]:,}"


def report(runs: list[Run]) -> str:
    """The three markdown tables (sections without runs are left out)."""
    runs = sorted(runs, key=lambda r: (r.kind, r.name))
    tasks = list(dict.fromkeys(t for r in runs for t in r.to_target))
    out = ["## Env steps to each task's target", "",
           "| run | " + " | ".join(f"{t} ({target_label(t)})" for t in tasks) + " | all targets |",
           "|---|" + "---:|" * (len(tasks) + 1)]
    for r in runs:
        cells = [_steps(r, t) if t in r.to_target else "" for t in tasks]
        done = all(r.reached.values())
        out.append(f"| {r.name} | " + " | ".join(cells) + f" | {'' if done else '>= '}{r.total:,} |")
    single = {t: [r for r in runs if r.kind == "st" and t in r.to_target] for t in tasks}
    multi = [r for r in runs if r.kind in ("mt", "mt-dps")]
    if multi and any(single.values()):
        out += ["", "## Multi-task vs the single-task budget", "",
                "| task | single-task budget (seeds) | run | env steps to target | ratio to budget |",
                "|---|---:|---|---:|---:|"]
        for t in tasks:
            if not single[t]:
                continue
            budget = statistics.mean(r.to_target[t] for r in single[t])
            lower = not all(r.reached[t] for r in single[t])
            seeds = " ".join(str(r.seed) for r in single[t])
            for r in (m for m in multi if t in m.to_target):
                ratio = r.to_target[t] / budget
                out.append(f"| {t} | {'>= ' if lower else ''}{budget:,.0f} ({seeds}) | {r.name} | {_steps(r, t)} | "
                           f"{ratio:.2f}{'' if r.reached[t] else ' (not reached)'} |")
    # paired: only the seeds run both with and without DPS
    paired = {r.seed for r in multi if r.kind == "mt"} & {r.seed for r in multi if r.kind == "mt-dps"}
    arms = {kind: [r for r in multi if r.kind == kind and r.seed in paired] for kind in ("mt", "mt-dps")}
    if paired:
        out += ["", "## DPS vs no DPS: env steps to reach all targets (seeds run both ways)", "",
                "| method | seeds | per seed | mean | ratio to no DPS |", "|---|---|---|---:|---:|"]
        base = statistics.mean(r.total for r in arms["mt"])
        for kind, label in (("mt", "ScaleZero"), ("mt-dps", "ScaleZero + DPS")):
            rs = sorted(arms[kind], key=lambda r: r.seed)
            lower = not all(all(r.reached.values()) for r in rs)
            mean = statistics.mean(r.total for r in rs)
            per_seed = ", ".join(f"{'' if all(r.reached.values()) else '>= '}{r.total:,}" for r in rs)
            out.append(f"| {label} | {' '.join(str(r.seed) for r in rs)} | {per_seed} | "
                       f"{'>= ' if lower else ''}{mean:,.0f} | {mean / base:.2f} |")
    return "\n".join(out)


def target_label(task: str) -> str:
    return f"target {TARGETS[task]:g}" if task in TARGETS else "TaskSpec target"


def write_report(out: Path, tag: str = "") -> str:
    """Read the records in ``out`` whose names end with ``tag``; write and return ``out/report.md``."""
    runs = []
    for path in sorted(out.glob("*.json")):
        record = json.loads(path.read_text())
        if isinstance(record, dict) and "reached" in record and "name" in record:
            run = parse(record)
            if run.tag == tag:
                runs.append(run)
    if not runs:
        raise SystemExit(f"no learning-benchmark runs with tag {tag!r} in {out}")
    text = report(runs)
    (out / "report.md").write_text(text + "\n")
    return text
