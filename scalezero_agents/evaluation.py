"""Greedy evaluation of a saved :class:`~scalezero_agents.training.MultiTaskTrainer` checkpoint.

    from scalezero_agents.evaluation import evaluate_checkpoint
    results = evaluate_checkpoint("runs/demo/checkpoint.pt", tasks=["dmc/cartpole-balance"], episodes=10)
    results["dmc/cartpole-balance"]["mean"]

Each task is evaluated by its own greedy actor (``episodes`` environments in parallel, one batched search per
step), seeded from ``seed`` and the task's position in the checkpoint, so a task's numbers do not depend on
which other tasks are evaluated with it. Environments are built with the checkpoint's own env factories
(same options, e.g. DMC action repeat) in ``"eval"`` mode (the task's evaluation protocol).

With ``video_dir`` the first episode of every task is recorded (``<video_dir>/<family>_<task>.mp4`` when an
imageio mp4 backend is installed, else ``.gif``). Atari and DMC render (DMC headless through ``MUJOCO_GL``,
e.g. ``egl``); Gymnasium's classic-control tasks need ``pygame``; Jericho (text) tasks cannot render. A task
that cannot render is still evaluated; the reason is reported (:class:`VideoWarning` from
:func:`evaluate_checkpoint`, ``EvalReport.video_errors`` from :func:`evaluate_trainer`).
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scalezero_agents.training.episodes import play_episodes

if TYPE_CHECKING:
    from scalezero_adapters import Task

    from scalezero_agents.agent import Agent
    from scalezero_agents.training import MultiTaskTrainer

__all__ = [
    "CHECKPOINT_NAME",
    "MAX_VIDEO_FRAMES",
    "EvalReport",
    "VideoWarning",
    "evaluate_checkpoint",
    "evaluate_trainer",
    "load_checkpoint",
    "resolve_checkpoint",
    "run_greedy_episodes",
    "select_task_ids",
]

CHECKPOINT_NAME = "checkpoint.pt"
"""File name of a run's checkpoint inside its output directory (``scalezero train --out DIR``)."""
MAX_VIDEO_FRAMES = 3_000
"""Frames recorded per video at most (a full Atari game can last 27,000 agent steps)."""
_MAX_DPS_STAGES = 1_000
"""Stages allowed to a DPS checkpoint loaded for evaluation (only the saved adapters are rebuilt)."""
_VIDEO_SIZE = 256
"""Frame size of DMC videos of state-observation tasks (their renderer is otherwise 64 x 64)."""


class VideoWarning(UserWarning):
    """A task that was evaluated but could not be recorded (the message says why)."""


@dataclass
class EvalReport:
    """Per-task results of one evaluation, plus the videos written and the ones that could not be."""

    results: dict[str, dict[str, float]]
    """Task name -> ``mean``, ``std``, ``min``, ``max``, ``episodes``, ``length`` (mean episode length),
    ``solved`` (mean >= the task's target return) and ``normalized`` (tasks with score normalisation)."""
    videos: dict[str, Path] = field(default_factory=dict)
    """Task name -> video file."""
    video_errors: dict[str, str] = field(default_factory=dict)
    """Task name -> why no video was written."""


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """The checkpoint file for ``path``: the file itself, or ``<path>/checkpoint.pt`` for a run directory.

    Raises:
        FileNotFoundError: no such file (or a run directory without a checkpoint).
        ValueError: the file is not a torch checkpoint (``torch.save`` writes zip archives).
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a MultiTaskTrainer checkpoint (not a torch.save archive)")
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> MultiTaskTrainer:
    """Restore a trainer from a checkpoint (or run directory) for evaluation: no progress bar, no log files.

    Checkpoints of runs with Dynamic Parameter Scaling get a DPS callback, which rebuilds their adapters.

    Raises:
        FileNotFoundError, ValueError: see :func:`resolve_checkpoint` and :meth:`MultiTaskTrainer.load`.
    """
    from scalezero_agents.dps import DPSCallback, DPSConfig
    from scalezero_agents.training import MultiTaskTrainer

    file = resolve_checkpoint(path)
    # A DPS callback is harmless for a checkpoint without DPS state: nothing binds it unless train() runs.
    dps = DPSCallback(DPSConfig(num_stages=_MAX_DPS_STAGES))
    return MultiTaskTrainer.load(file, callbacks=[dps], progress_bar=False)


def select_task_ids(trainer: MultiTaskTrainer, names: Sequence[str] | None) -> list[int]:
    """Task ids of ``names`` in the trainer (all tasks for ``None``), in the order given.

    Raises:
        scalezero_adapters.UnknownTaskError: a name that is no valid task at all (with suggestions).
        ValueError: a valid task the checkpoint was not trained on (the message lists the checkpoint's tasks),
            a repeated name, or an empty selection.
    """
    saved = [spec.name for spec in trainer.specs]
    if names is None:
        return list(range(len(saved)))
    if isinstance(names, str):
        raise ValueError(f"tasks must be a sequence of task names, got the string {names!r}")
    if not names:
        raise ValueError("no tasks selected")
    if len(set(names)) != len(names):
        raise ValueError(f"tasks listed twice: {sorted({n for n in names if list(names).count(n) > 1})}")
    missing = [n for n in names if n not in saved]
    if missing:
        from scalezero_adapters import make_task

        for name in missing:
            make_task(name)  # raises UnknownTaskError (with suggestions) for a name that is no task at all
        raise ValueError(f"task(s) {missing} not in the checkpoint; it was trained on {saved}")
    return [saved.index(n) for n in names]


def run_greedy_episodes(
    agent: Agent,
    task_id: int,
    envs: Sequence[Any],
    *,
    seed: int,
    num_simulations: int | None = None,
    frames: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One greedy episode per env of task ``task_id``, all searched in one batch per step.

    Args:
        agent: the agent (its model is used as is).
        task_id: the task's id in ``agent.specs``.
        envs: fresh or reusable envs of that task; env ``k`` is reset with seed ``seed * 10_000 + k``.
        seed: seeds the envs and the search trees.
        num_simulations: simulations per search (default: the config's ``eval_simulations``).
        frames: when given, ``envs[0].render()`` is appended after the reset and after every step of env 0
            (at most ``MAX_VIDEO_FRAMES`` frames).

    Returns:
        ``(returns, lengths)``: undiscounted return and length of each env's episode.
    """
    n = len(envs)
    actor = agent.actor([task_id] * n, explore=False, seed=seed * 1_000_003 + task_id,
                        num_simulations=num_simulations)
    obs = [env.reset(seed=seed * 10_000 + k)[0] for k, env in enumerate(envs)]
    if frames is not None:
        frames.append(np.asarray(envs[0].render()))

    def record(i: int) -> None:
        if frames is not None and i == 0 and len(frames) < MAX_VIDEO_FRAMES:
            frames.append(np.asarray(envs[0].render()))

    return play_episodes(envs, obs, lambda o, rows: actor.act(o, rows).actions, record)


def _summarize(spec: Any, returns: np.ndarray, lengths: np.ndarray) -> dict[str, float]:
    mean = float(returns.mean())
    out: dict[str, float] = {"mean": mean, "std": float(returns.std()), "min": float(returns.min()),
                             "max": float(returns.max()), "episodes": len(returns),
                             "length": float(lengths.mean()), "solved": bool(spec.is_solved(mean))}
    if spec.has_score_normalisation:
        out["normalized"] = float(spec.normalize(mean))
    return out


def _render_env(task: Task) -> Any:
    """An eval-mode env of ``task`` that renders RGB frames; raises RuntimeError saying why it cannot."""
    from scalezero_adapters import EnvFactory

    spec, factory = task.spec, task.factory
    if spec.modality == "text":
        raise RuntimeError(f"{spec.name} is a text game: there is nothing to render")
    if not isinstance(factory, EnvFactory):
        raise RuntimeError(f"{spec.name} was built with a custom env factory, which takes no render_mode")
    options = dict(factory.options)
    if spec.family == "dmc" and not options.get("pixels", False):
        options["image_size"] = _VIDEO_SIZE  # only the renderer uses it for state observations
    env = factory.builder("eval", render_mode="rgb_array", **options)
    try:
        env.reset(seed=0)
        frame = env.render()
    except Exception as exc:  # pygame missing, no GL platform, ...
        env.close()
        raise RuntimeError(f"{spec.name} cannot render: {exc}") from exc
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        env.close()
        raise RuntimeError(f"{spec.name} cannot render RGB frames (render() gave {type(frame).__name__})")
    return env


def _video_writer_suffix() -> str:
    """``.mp4`` when imageio has an mp4 backend (imageio-ffmpeg or PyAV), else ``.gif``."""
    import importlib.util

    return ".mp4" if any(importlib.util.find_spec(m) for m in ("imageio_ffmpeg", "av")) else ".gif"


def _write_video(frames: list[np.ndarray], path: Path, fps: int) -> Path:
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gif":
        iio.imwrite(path, np.stack(frames), duration=1000 / fps, loop=0)
    else:
        iio.imwrite(path, np.stack(frames), fps=fps)
    return path


def _video_path(video_dir: Path, name: str) -> Path:
    return video_dir / (name.replace("/", "_") + _video_writer_suffix())


def evaluate_trainer(
    trainer: MultiTaskTrainer,
    task_ids: Sequence[int] | None = None,
    *,
    episodes: int = 10,
    seed: int = 0,
    num_simulations: int | None = None,
    video_dir: str | os.PathLike[str] | None = None,
    fps: int = 30,
    on_task: Callable[[str, dict[str, float]], None] | None = None,
) -> EvalReport:
    """Greedy evaluation of ``trainer``'s agent on some of its tasks (all by default).

    Unlike :meth:`MultiTaskTrainer.evaluate` this neither changes the trainer (history, evaluation counter,
    callbacks) nor depends on the other tasks evaluated, and it can record videos. Arguments as in
    :func:`evaluate_checkpoint`; ``task_ids`` index ``trainer.specs``; ``fps`` is the video frame rate;
    ``on_task(name, result)`` is called after each task (e.g. to advance a progress bar).
    """
    if not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes must be a positive int, got {episodes!r}")
    if num_simulations is not None and (not isinstance(num_simulations, int) or num_simulations < 1):
        raise ValueError(f"num_simulations must be a positive int, got {num_simulations!r}")
    ids = list(range(len(trainer.specs))) if task_ids is None else list(task_ids)
    report = EvalReport(results={})
    for t in ids:
        task, spec = trainer.tasks[t], trainer.specs[t]
        envs, frames = [], None
        if video_dir is not None:
            try:
                envs, frames = [_render_env(task)], []
            except RuntimeError as exc:
                report.video_errors[spec.name] = str(exc)
        envs += [task.factory("eval") for _ in range(episodes - len(envs))]
        try:
            returns, lengths = run_greedy_episodes(trainer.agent, t, envs, seed=seed,
                                                   num_simulations=num_simulations, frames=frames)
        finally:
            for env in envs:
                env.close()
        report.results[spec.name] = _summarize(spec, returns, lengths)
        if frames:
            report.videos[spec.name] = _write_video(frames, _video_path(Path(video_dir), spec.name), fps)
        if on_task is not None:
            on_task(spec.name, report.results[spec.name])
    return report


def evaluate_checkpoint(
    path: str | os.PathLike[str],
    tasks: Sequence[str] | None = None,
    episodes: int = 10,
    seed: int = 0,
    num_simulations: int | None = None,
    video_dir: str | Path | None = None,
) -> dict[str, dict[str, float]]:
    """Load a :class:`MultiTaskTrainer` checkpoint and evaluate it greedily.

    Args:
        path: a checkpoint file, or a run directory holding ``checkpoint.pt`` (``scalezero train --out``).
        tasks: names of the checkpoint's tasks to evaluate (default: all, in the checkpoint's order).
        episodes: episodes per task, run in parallel.
        seed: seeds the evaluation envs and search trees (the numbers are reproducible).
        num_simulations: simulations per search (default: the checkpoint config's ``eval_simulations``).
        video_dir: record the first episode of every task into this directory (see the module docstring);
            tasks that cannot render are still evaluated and a :class:`VideoWarning` says why.

    Returns:
        Task name -> ``{"mean", "std", "min", "max", "episodes", "length", "solved"}`` plus ``"normalized"``
        (the normalised score of the mean) for tasks with score normalisation.

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        ValueError: not a trainer checkpoint, a task the checkpoint was not trained on, or bad arguments.
        scalezero_adapters.UnknownTaskError: a task name that does not exist (a ``ValueError``).
    """
    trainer = load_checkpoint(path)
    report = evaluate_trainer(trainer, select_task_ids(trainer, tasks), episodes=episodes, seed=seed,
                              num_simulations=num_simulations, video_dir=video_dir)
    for name, reason in report.video_errors.items():
        warnings.warn(f"no video for {name}: {reason}", VideoWarning, stacklevel=2)
    return report.results
