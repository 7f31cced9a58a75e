"""Turn :class:`TrainSettings` into a ready :class:`MultiTaskTrainer` (new, or restored for ``--resume``).

Every problem with the user's input (unknown task, suite, option or config key; bad values; a missing or
foreign checkpoint) becomes a :class:`CLIError` here, before any training starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from scalezero_agents.cli._common import CLIError, parse_assignments
from scalezero_agents.cli.settings import RUN_FILE, TrainSettings
from scalezero_agents.evaluation import CHECKPOINT_NAME

if TYPE_CHECKING:
    from scalezero_adapters import Task

    from scalezero_agents.config import AgentConfig
    from scalezero_agents.distributed import Comm
    from scalezero_agents.training import Callback, MultiTaskTrainer, TrainerConfig

__all__ = ["RUN_OUTPUTS", "Session", "build_configs", "build_tasks", "check_inputs", "prepare"]

RUN_OUTPUTS = (CHECKPOINT_NAME, "summary.json", "history.json", RUN_FILE)
"""The files a run writes into its output directory (besides TensorBoard event files)."""
_INPUT_ERRORS = (ValueError, TypeError, FileNotFoundError)


@dataclass
class Session:
    """A trainer ready to train, with what the run needs around it."""

    settings: TrainSettings
    trainer: MultiTaskTrainer
    out: Path
    resumed: bool
    dps: Any = None
    """The :class:`~scalezero_agents.dps.DPSCallback` with ``--dps``."""


def build_tasks(settings: TrainSettings) -> list[Task]:
    """The run's tasks: a suite, a subset of a suite (with its settings), or tasks with family defaults."""
    from scalezero_adapters import make_suite, make_task
    from scalezero_adapters.spec import FAMILIES
    from scalezero_adapters.suites import SUITES

    family_options: dict[str, dict[str, Any]] = {}
    for key, value in parse_assignments(settings.task_options, flag="--task-option").items():
        family, sep, option = key.partition(".")
        if not sep or not option or family not in FAMILIES:
            raise CLIError(f"--task-option takes FAMILY.OPTION=VALUE with FAMILY in {list(FAMILIES)}, got {key!r}")
        family_options.setdefault(family, {})[option] = value
    if settings.suite is not None and settings.suite not in SUITES:
        raise CLIError(f"unknown suite {settings.suite!r}; choose from {sorted(SUITES)}")
    names = settings.tasks or tuple(name for name, _ in SUITES[settings.suite])  # type: ignore[index]
    unused = sorted(set(family_options) - {name.partition("/")[0] for name in names})
    if unused:
        raise CLIError(f"--task-option for {unused}, but this run has no task of that family")
    try:
        if not settings.tasks:
            return make_suite(settings.suite, **family_options)  # type: ignore[arg-type]
        members = dict(SUITES[settings.suite]) if settings.suite else {}
        tasks = []
        for name in settings.tasks:
            if settings.suite and name not in members:
                raise CLIError(f"task {name!r} is not in suite {settings.suite!r}; its tasks are {list(members)}")
            family = name.partition("/")[0]
            tasks.append(make_task(name, **{**members.get(name, {}), **family_options.get(family, {})}))
        return tasks
    except _INPUT_ERRORS as exc:
        raise CLIError(str(exc)) from exc


def build_configs(settings: TrainSettings, num_tasks: int) -> tuple[AgentConfig, TrainerConfig]:
    """The agent config (preset, variant, ``--set`` keys) and the trainer config (flags, ``--set trainer.*``)."""
    from scalezero_agents.config import preset
    from scalezero_agents.training import TrainerConfig

    overrides = parse_assignments(settings.overrides, flag="--set")
    trainer_kw = {k.partition(".")[2]: v for k, v in overrides.items() if k.startswith("trainer.")}
    agent_kw = {k: v for k, v in overrides.items() if not k.startswith("trainer.")}
    variant = settings.variant or ("scalezero" if num_tasks > 1 else "unizero")
    try:
        config = preset(settings.preset, variant, **agent_kw)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"bad --set: {exc}") from exc
    fields = {f.name for f in dataclasses.fields(TrainerConfig)}
    unknown = sorted(f"trainer.{k}" for k in set(trainer_kw) - fields)
    if unknown:
        raise CLIError(f"bad --set: unknown trainer setting(s) {unknown}; choose from {sorted(fields)}")
    flags = {"num_envs": settings.num_envs, "eval_interval": settings.eval_interval,
             "eval_episodes": settings.eval_episodes, "checkpoint_interval": settings.checkpoint_interval}
    for key, value in flags.items():
        if value is not None:
            if key in trainer_kw:
                raise CLIError(f"--set trainer.{key} and --{key.replace('_', '-')} both given; keep one")
            trainer_kw[key] = value
    try:
        return config, TrainerConfig(**trainer_kw)
    except (ValueError, TypeError) as exc:
        raise CLIError(f"bad trainer setting: {exc}") from exc


def _callbacks(settings: TrainSettings, console: Console, *, distributed: bool) -> tuple[list[Callback], Any]:
    from scalezero_agents.cli.callbacks import EvalPrinter, StopWhenSolved

    callbacks: list[Any] = [EvalPrinter(console)]
    dps = None
    if settings.dps:
        from scalezero_agents.dps import DPSCallback, DPSConfig

        if distributed:  # decisions made on rank 0 and broadcast
            from scalezero_agents.distributed import DistributedDPSCallback

            dps = DistributedDPSCallback(DPSConfig())
        else:
            dps = DPSCallback(DPSConfig())
        callbacks.append(dps)
    if settings.stop_when_solved:
        callbacks.append(StopWhenSolved())
    return callbacks, dps


def _check_out(out: Path, *, resume: bool, overwrite: bool) -> list[Path]:
    """Check the output directory; returns the files ``--overwrite`` replaces (the caller deletes them)."""
    if resume:
        if not (out / CHECKPOINT_NAME).is_file():
            raise CLIError(f"nothing to resume: no {CHECKPOINT_NAME} in {out} yet (the run saved none); "
                           "start it again with --overwrite")
        return []
    existing = [out / name for name in RUN_OUTPUTS if (out / name).exists()]
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is a file, not a directory")
    if existing and not overwrite:
        raise CLIError(f"{out} already holds a run ({', '.join(p.name for p in existing)}); continue it with "
                       "--resume, replace it with --overwrite, or choose another --out")
    return [*existing, *(out.glob("events.out.tfevents.*") if overwrite else ())]


def check_inputs(settings: TrainSettings, *, resume: bool, overwrite: bool) -> int:
    """Check everything :func:`prepare` would, without building or writing anything (a launcher's early check
    before it starts processes); returns the number of tasks."""
    _check_out(Path(settings.out), resume=resume, overwrite=overwrite)
    tasks = build_tasks(settings)  # on resume, the settings come from the run's run.json
    build_configs(settings, len(tasks))
    return len(tasks)


def prepare(
    settings: TrainSettings,
    console: Console,
    *,
    resume: bool,
    overwrite: bool,
    comm: Comm | None = None,
) -> Session:
    """Build (or, with ``resume``, restore) the trainer; writes ``run.json`` for a new run.

    With ``comm`` (one rank of a ``torch.distributed`` group) it builds a
    :class:`~scalezero_agents.distributed.DistributedTrainer` with distributed DPS; every rank checks the
    inputs, and only rank 0 deletes (``overwrite``) or writes files.
    """
    import torch

    from scalezero_agents.cli._common import write_json
    from scalezero_agents.training import MultiTaskTrainer

    trainer_cls: type[MultiTaskTrainer] = MultiTaskTrainer
    extra: dict[str, Any] = {}
    torch.set_num_threads(settings.threads)
    out = Path(settings.out)
    stale = _check_out(out, resume=resume, overwrite=overwrite)
    if comm is not None:
        from scalezero_agents.distributed import DistributedTrainer

        trainer_cls, extra = DistributedTrainer, {"comm": comm}
        comm.barrier("output directory check")  # every rank has checked before rank 0 changes anything
    main = comm is None or comm.rank == 0
    for path in stale if main else ():
        path.unlink(missing_ok=True)
    callbacks, dps = _callbacks(settings, console, distributed=comm is not None)
    if resume:
        try:
            trainer = trainer_cls.load(out / CHECKPOINT_NAME, callbacks=callbacks, log_dir=out,
                                       progress_bar=settings.progress, **extra)
        except _INPUT_ERRORS as exc:
            raise CLIError(f"cannot resume from {out / CHECKPOINT_NAME}: {exc}") from exc
        return Session(settings, trainer, out, resumed=True, dps=dps)
    tasks = build_tasks(settings)
    config, trainer_config = build_configs(settings, len(tasks))
    try:
        trainer = trainer_cls(tasks, config=config, trainer=trainer_config, seed=settings.seed, log_dir=out,
                              callbacks=callbacks, progress_bar=settings.progress, **extra)
    except _INPUT_ERRORS as exc:
        raise CLIError(str(exc)) from exc
    if main:
        write_json(out / RUN_FILE, settings.to_dict())
    return Session(settings, trainer, out, resumed=False, dps=dps)
