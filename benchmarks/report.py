"""Benchmark reports: run records -> markdown table, learning-curve PNG and IQM with bootstrap confidence intervals.

    python benchmarks/report.py bench_results/classic          # re-render table.md, curves.png, iqm.png

A benchmark directory holds ``runs/*.json`` (one record per training run, any method) and optionally
``benchmark.json`` (the settings the orchestrator used: its ``title`` and ``notes`` become the table header).

Run record (``SCHEMA`` 1), written by ``benchmarks/learning.py`` (ScaleZero / UniZero) and
``benchmarks/baselines.py`` (Stable-Baselines3)::

    {"schema": 1, "name": ..., "method": "scalezero" | "unizero" | "scalezero-dps" | "sb3-dqn" | ...,
     "seed": 0, "tasks": [task names], "budget_per_task": N,
     "protocol": {"eval_interval": ..., "eval_episodes": ...}, "config": {...}, "versions": {...},
     "curves": {task: [{"env_steps", "mean", "std", "min", "max", "normalized"?, "train_time"}, ...]},
     "env_steps": {task: steps used}, "train_time": s, "wall_time": s, "final_eval"?: {task: {...}}}

Statistics: a run's score on a task is its **last** evaluation (``final_eval`` when present, e.g. the
>= 10-episode evaluation of ``bench-dmc``), normalised with the task's ``TaskSpec.normalize``. The
aggregate is the interquartile mean (IQM: the mean of the middle 50%, 25% trimmed from each end, as
``scipy.stats.trim_mean(x, 0.25)``) over every (task, seed) score, with a percentile 95% confidence interval
from a **stratified bootstrap**: seeds are resampled with replacement within each task (Agarwal et al. 2021,
"Deep RL at the edge of the statistical precipice"; the procedure of ``rliable``, re-implemented here in NumPy
with a seeded generator: rliable 1.2's ``StratifiedBootstrap`` draws from NumPy's global random state and
ignores its ``random_state`` argument).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = 1
REQUIRED_KEYS = ("schema", "name", "method", "seed", "tasks", "curves")
CURVE_KEYS = ("env_steps", "mean")

METHOD_LABELS: dict[str, str] = {
    "unizero": "UniZero (ST)",
    "scalezero": "ScaleZero (MT)",
    "scalezero-dps": "ScaleZero+DPS (MT)",
    "sb3-dqn": "SB3 DQN",
    "sb3-ppo": "SB3 PPO",
    "sb3-sac": "SB3 SAC",
}
"""Column titles and order; other method names follow in alphabetical order."""

_PACKAGES = ("scalezero-agents", "torch", "numpy", "gymnasium", "stable-baselines3", "ale-py", "dm-control",
             "mujoco", "shimmy", "jericho", "peft")


# ---------------------------------------------------------------------------------------------- run records
def package_versions() -> dict[str, str | None]:
    """Versions of Python, the platform, the packages a run depends on, and the git commit (if any)."""
    out: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["git_commit"] = _git(["rev-parse", "HEAD"])
    status = _git(["status", "--porcelain", "--untracked-files=no"])
    out["git_dirty"] = None if status is None else str(bool(status))
    return out


def _git(args: list[str]) -> str | None:
    try:
        res = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def curves_from_history(history: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per-task curves from a ``MultiTaskTrainer`` evaluation history (x: that task's own env steps)."""
    curves: dict[str, list[dict[str, Any]]] = {}
    for rec in history:
        for task, res in rec["tasks"].items():
            point = {k: res[k] for k in ("env_steps", "mean", "std", "min", "max") if k in res}
            if "normalized" in res:
                point["normalized"] = res["normalized"]
            point["train_time"] = rec.get("train_time")
            curves.setdefault(task, []).append(point)
    return curves


def validate_record(record: Mapping[str, Any], source: str = "record") -> None:
    """Raise ``ValueError`` naming what is wrong unless ``record`` follows the run-record schema."""
    missing = [k for k in REQUIRED_KEYS if k not in record]
    if missing:
        raise ValueError(f"{source}: not a benchmark run record, missing key(s) {missing}")
    if record["schema"] != SCHEMA:
        raise ValueError(f"{source}: run-record schema {record['schema']!r}, expected {SCHEMA}")
    for task, curve in record["curves"].items():
        if task not in record["tasks"]:
            raise ValueError(f"{source}: curve for {task!r}, which is not among its tasks {record['tasks']}")
        for point in curve:
            bad = [k for k in CURVE_KEYS if k not in point]
            if bad:
                raise ValueError(f"{source}: a point of the {task!r} curve lacks {bad}")


def write_run(record: Mapping[str, Any], runs_dir: str | Path) -> Path:
    """Validate ``record`` and write it to ``<runs_dir>/<name>.json``."""
    validate_record(record, f"run {record.get('name')!r}")
    path = Path(runs_dir) / f"{record['name']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, default=_json_default))
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def load_runs(runs_dir: str | Path) -> list[dict[str, Any]]:
    """Every run record in ``runs_dir`` (sorted by file name); raises on a missing dir or a malformed record."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise FileNotFoundError(f"no run directory {runs_dir}")
    runs = []
    for path in sorted(runs_dir.glob("*.json")):
        record = json.loads(path.read_text())
        validate_record(record, str(path))
        runs.append(record)
    return runs


# ---------------------------------------------------------------------------------------------- statistics
def iqm(scores: Any) -> float:
    """Interquartile mean of all values: drop ``floor(n / 4)`` from each end of the sorted values, average the rest."""
    x = np.asarray(scores, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("iqm of an empty array")
    return float(iqm_rows(x[None, :])[0])


def iqm_rows(samples: np.ndarray) -> np.ndarray:
    """Row-wise :func:`iqm` of a 2-D array (one bootstrap sample per row)."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 2 or samples.shape[1] == 0:
        raise ValueError(f"iqm_rows needs a non-empty 2-D array, got shape {samples.shape}")
    n = samples.shape[1]
    k = n // 4
    return np.sort(samples, axis=1)[:, k:n - k].mean(axis=1)


def mean_rows(samples: np.ndarray) -> np.ndarray:
    """Row-wise mean (the other aggregate the table reports)."""
    return np.asarray(samples, dtype=np.float64).mean(axis=1)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap confidence interval."""

    point: float
    low: float
    high: float
    confidence: float
    reps: int
    num_scores: int
    num_tasks: int
    min_runs_per_task: int

    @property
    def degenerate(self) -> bool:
        """True when no task has two runs: resampling seeds cannot vary anything, the interval is a point."""
        return self.min_runs_per_task < 2

    def format(self, digits: int = 2) -> str:
        """``0.31 [0.22, 0.40]``, or ``0.31 [n/a: 1 seed]`` when the interval is degenerate."""
        if self.degenerate:
            return f"{self.point:.{digits}f} [n/a: 1 seed]"
        return f"{self.point:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def stratified_bootstrap_ci(
    scores_by_task: Sequence[Any],
    statistic: Callable[[np.ndarray], np.ndarray] = iqm_rows,
    *,
    reps: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile confidence interval of ``statistic`` over all scores, resampling runs within each task.

    Args:
        scores_by_task: one 1-D array per task with that task's per-run (per-seed) scores; tasks may have
            different numbers of runs.
        statistic: row-wise aggregate of a ``(reps, num_scores)`` array (default: :func:`iqm_rows`).
        reps: bootstrap replications.
        confidence: coverage of the interval, in (0, 1).
        seed: seed of the NumPy generator (the same inputs and seed give the same interval).
    """
    if not scores_by_task:
        raise ValueError("stratified_bootstrap_ci needs at least one task")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    arrays = [np.asarray(s, dtype=np.float64).ravel() for s in scores_by_task]
    for t, a in enumerate(arrays):
        if a.size == 0:
            raise ValueError(f"task {t} has no scores")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"task {t} has non-finite scores {a}")
    rng = np.random.default_rng(seed)
    samples = np.concatenate([a[rng.integers(0, a.size, size=(reps, a.size))] for a in arrays], axis=1)
    stats = statistic(samples)
    point = float(statistic(np.concatenate(arrays)[None, :])[0])
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return Interval(point, float(low), float(high), confidence, reps, sum(a.size for a in arrays), len(arrays),
                    min(a.size for a in arrays))


# ---------------------------------------------------------------------------------------------- summaries
@dataclass
class TaskResult:
    """One method on one task: the final score of each seed."""

    returns: list[float] = field(default_factory=list)
    episode_std: list[float] = field(default_factory=list)
    normalized: list[float] = field(default_factory=list)
    episodes: list[int] = field(default_factory=list)
    env_steps: list[int] = field(default_factory=list)


@dataclass
class MethodSummary:
    """All runs of one method: per-task final scores and the totals of its runs."""

    method: str
    tasks: dict[str, TaskResult] = field(default_factory=dict)
    seeds: set[int] = field(default_factory=set)
    train_time: float = 0.0
    runs: int = 0


def method_order(methods: Sequence[str]) -> list[str]:
    """Methods in ``METHOD_LABELS`` order, unknown ones after them alphabetically."""
    known = [m for m in METHOD_LABELS if m in methods]
    return known + sorted(set(methods) - set(known))


def final_point(record: Mapping[str, Any], task: str) -> dict[str, Any] | None:
    """A run's final result on ``task``: its ``final_eval`` entry, else the last point of its curve."""
    final = record.get("final_eval", {}).get(task)
    if final is not None:
        return dict(final)
    curve = record["curves"].get(task) or []
    return dict(curve[-1]) if curve else None


def summarize(runs: Sequence[Mapping[str, Any]], normalizers: Mapping[str, Callable[[float], float]] | None = None
              ) -> dict[str, MethodSummary]:
    """Group runs by method; per task keep every seed's final score (normalised when possible)."""
    normalizers = normalizers or {}
    out: dict[str, MethodSummary] = {}
    for record in runs:
        summary = out.setdefault(record["method"], MethodSummary(record["method"]))
        summary.seeds.add(int(record["seed"]))
        summary.runs += 1
        summary.train_time += float(record.get("train_time") or 0.0)
        for task in record["tasks"]:
            point = final_point(record, task)
            if point is None:
                continue
            res = summary.tasks.setdefault(task, TaskResult())
            res.returns.append(float(point["mean"]))
            res.episode_std.append(float(point.get("std", float("nan"))))
            res.episodes.append(int(point.get("episodes", record.get("protocol", {}).get("eval_episodes", 0))))
            used = record.get("env_steps", {}).get(task)
            res.env_steps.append(int(point.get("env_steps", 0) if used is None else used))
            if "normalized" in point:
                res.normalized.append(float(point["normalized"]))
            elif task in normalizers:
                res.normalized.append(float(normalizers[task](float(point["mean"]))))
    return out


def aggregate(summary: MethodSummary, tasks: Sequence[str], statistic: Callable[[np.ndarray], np.ndarray] = iqm_rows,
              *, reps: int = 10_000, seed: int = 0) -> Interval | None:
    """Aggregate of the normalised final scores over ``tasks`` (those the method ran and can normalise)."""
    per_task = [summary.tasks[t].normalized for t in tasks if t in summary.tasks and summary.tasks[t].normalized]
    if not per_task:
        return None
    return stratified_bootstrap_ci(per_task, statistic, reps=reps, seed=seed)


# ---------------------------------------------------------------------------------------------- rendering
def _cell(res: TaskResult) -> str:
    mean = float(np.mean(res.returns))
    if len(res.returns) >= 2:
        spread = f"± {np.std(res.returns):.1f}"
    else:
        spread = f"± {res.episode_std[0]:.1f}ᵉ" if np.isfinite(res.episode_std[0]) else ""
    norm = f" ({np.mean(res.normalized):.2f})" if res.normalized else ""
    return f"{mean:.1f} {spread}{norm}".replace("  ", " ")


def render_table(runs: Sequence[Mapping[str, Any]], *, title: str = "Benchmark", notes: Sequence[str] = (),
                 task_info: Mapping[str, Mapping[str, Any]] | None = None, reps: int = 10_000,
                 seed: int = 0) -> str:
    """The markdown report: per-task final returns per method, then IQM and mean of normalised scores.

    ``task_info`` maps a task name to ``{"random": r, "reference": ref}`` (for the random-score column and to
    normalise curves that carry no ``normalized`` field).
    """
    task_info = task_info or {}
    normalizers = {t: _normalizer(i) for t, i in task_info.items() if i.get("random") is not None}
    summaries = summarize(runs, normalizers)
    methods = method_order(list(summaries))
    tasks = _task_order(runs)
    lines = [f"# {title}", ""]
    lines += [f"- {n}" for n in notes]
    lines += ["- Cells: final evaluation return, mean over seeds ± std over seeds (ᵉ: one seed, ± std over its "
              "evaluation episodes), (normalised score); — : method not applicable or not run.", ""]
    header = ["task", "random", *[METHOD_LABELS.get(m, m) for m in methods]]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
    for task in tasks:
        random = task_info.get(task, {}).get("random")
        row = [task, "—" if random is None else f"{random:.1f}"]
        row += [_cell(summaries[m].tasks[task]) if task in summaries[m].tasks else "—" for m in methods]
        lines.append("| " + " | ".join(row) + " |")
    multi = len(tasks) >= 2
    for label, stat in (("IQM normalised [95% CI]", iqm_rows), ("mean normalised [95% CI]", mean_rows)):
        if not multi:
            break
        row = [f"**{label}**", ""]
        for m in methods:
            interval = aggregate(summaries[m], tasks, stat, reps=reps, seed=seed)
            if interval is None:
                row.append("—")
            else:
                n = interval.num_tasks
                row.append(interval.format() + ("" if n == len(tasks) else f" ({n} of {len(tasks)} tasks)"))
        lines.append("| " + " | ".join(row) + " |")
    row = ["env steps used (all tasks)", ""]
    row += [f"{sum(int(np.mean(r.env_steps)) for r in summaries[m].tasks.values()):,}" for m in methods]
    lines.append("| " + " | ".join(row) + " |")
    row = ["seeds · runs · train time (min, all runs)", ""]
    row += [f"{len(summaries[m].seeds)} · {summaries[m].runs} · {summaries[m].train_time / 60:.1f}" for m in methods]
    lines.append("| " + " | ".join(row) + " |")
    if multi:
        lines += ["", f"IQM / mean: over every (task, seed) normalised final score; 95% percentile intervals from a "
                  f"stratified bootstrap (seeds resampled within each task, {reps:,} replications, NumPy seed "
                  f"{seed}). \"(k of n tasks)\": the method ran only k of the n tasks (its aggregate is not comparable "
                  "with the full-suite ones)."]
    return "\n".join(lines) + "\n"


def _normalizer(info: Mapping[str, Any]) -> Callable[[float], float]:
    random, reference = float(info["random"]), float(info["reference"])
    return lambda r: (r - random) / (reference - random)


def _task_order(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    tasks: list[str] = []
    for record in sorted(runs, key=lambda r: -len(r["tasks"])):  # a multi-task run gives the suite's order
        tasks += [t for t in record["tasks"] if t not in tasks]
    return tasks


def plot_curves(runs: Sequence[Mapping[str, Any]], path: str | Path, *, title: str = "",
                task_info: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """Evaluation return vs env steps of each task, one line per method (mean over seeds, min-max band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    task_info = task_info or {}
    tasks = _task_order(runs)
    if not tasks:
        raise ValueError("no runs to plot")
    methods = method_order(sorted({r["method"] for r in runs}))
    cols = min(len(tasks), 4)
    rows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows + 0.8), squeeze=False)
    colors = {m: f"C{i}" for i, m in enumerate(methods)}
    for i, task in enumerate(tasks):
        ax = axes[i // cols, i % cols]
        for m in methods:
            curves = [r["curves"][task] for r in runs if r["method"] == m and r["curves"].get(task)]
            if not curves:
                continue
            xs, mean, low, high = _mean_curve(curves)
            ax.plot(xs, mean, marker=".", color=colors[m], label=f"{METHOD_LABELS.get(m, m)} (n={len(curves)})")
            if len(curves) > 1:
                ax.fill_between(xs, low, high, color=colors[m], alpha=0.15)
        info = task_info.get(task, {})
        for key, style in (("random", ":"), ("target", "--")):
            if info.get(key) is not None:
                ax.axhline(info[key], color="grey", linestyle=style, linewidth=0.8, label=key)
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("env steps (this task)")
        ax.set_ylabel("eval return")
        ax.grid(alpha=0.3)
    for j in range(len(tasks), rows * cols):
        axes[j // cols, j % cols].axis("off")
    legend: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    for key in ("random", "target"):  # reference lines after the methods
        if key in legend:
            legend[key] = legend.pop(key)
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=min(len(legend), 5), fontsize=8,
               frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.05 + 0.03 * (len(legend) > 5), 1, 1))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _mean_curve(curves: Sequence[Sequence[Mapping[str, Any]]]) -> tuple[np.ndarray, ...]:
    """Seeds' curves on a common x-axis: evaluation k of every seed (seeds evaluate on the same schedule)."""
    n = min(len(c) for c in curves)
    xs = np.array([np.mean([c[k]["env_steps"] for c in curves]) for k in range(n)])
    ys = np.array([[c[k]["mean"] for k in range(n)] for c in curves])
    return xs, ys.mean(axis=0), ys.min(axis=0), ys.max(axis=0)


def plot_aggregates(runs: Sequence[Mapping[str, Any]], path: str | Path, *,
                    task_info: Mapping[str, Mapping[str, Any]] | None = None, reps: int = 10_000,
                    seed: int = 0) -> Path | None:
    """IQM of normalised final scores per method with its 95% CI (None when fewer than two tasks)."""
    task_info = task_info or {}
    normalizers = {t: _normalizer(i) for t, i in task_info.items() if i.get("random") is not None}
    tasks = _task_order(runs)
    if len(tasks) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summaries = summarize(runs, normalizers)
    methods = [m for m in method_order(list(summaries)) if aggregate(summaries[m], tasks, reps=1) is not None]
    if not methods:
        return None
    fig, ax = plt.subplots(figsize=(7.0, 0.5 * len(methods) + 2.0))
    labels = []
    for i, m in enumerate(methods):
        ci = aggregate(summaries[m], tasks, reps=reps, seed=seed)
        assert ci is not None
        ax.errorbar(ci.point, i, xerr=[[ci.point - ci.low], [ci.high - ci.point]], fmt="o", color=f"C{i}", capsize=4)
        ax.text(ci.high, i - 0.15, f" {ci.point:.2f}" + (" (1 seed)" if ci.degenerate else ""), fontsize=8)
        labels.append(METHOD_LABELS.get(m, m)
                      + ("" if ci.num_tasks == len(tasks) else f" ({ci.num_tasks} of {len(tasks)} tasks)"))
    ax.set_yticks(range(len(methods)), labels)
    ax.set_xlabel("IQM of normalised final score (95% stratified-bootstrap CI)")
    ax.grid(axis="x", alpha=0.3)
    ax.invert_yaxis()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(bench_dir: str | Path, *, reps: int = 10_000, seed: int = 0) -> dict[str, Path]:
    """Render ``table.md``, ``curves.png`` and (two or more tasks) ``iqm.png`` from ``<bench_dir>/runs``."""
    bench_dir = Path(bench_dir)
    runs = load_runs(bench_dir / "runs")
    if not runs:
        raise FileNotFoundError(f"no run records in {bench_dir / 'runs'}")
    meta_path = bench_dir / "benchmark.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    title = meta.get("title", f"Benchmark {bench_dir.name}")
    task_info = meta.get("task_info", {})
    table = render_table(runs, title=title, notes=meta.get("notes", []), task_info=task_info, reps=reps, seed=seed)
    if meta.get("final_eval_table"):
        table += "\n" + meta["final_eval_table"]
    out = {"table": bench_dir / "table.md"}
    out["table"].write_text(table)
    out["curves"] = plot_curves(runs, bench_dir / "curves.png", title=title, task_info=task_info)
    iqm_path = plot_aggregates(runs, bench_dir / "iqm.png", task_info=task_info, reps=reps, seed=seed)
    if iqm_path is not None:
        out["iqm"] = iqm_path
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench_dir", help="a benchmark directory holding runs/*.json")
    parser.add_argument("--reps", type=int, default=10_000, help="bootstrap replications")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    args = parser.parse_args(argv)
    paths = write_report(args.bench_dir, reps=args.reps, seed=args.seed)
    print(paths["table"].read_text())
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
