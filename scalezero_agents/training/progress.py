"""A rich progress bar over environment steps, with throughput, elapsed time, ETA and a status line."""

from __future__ import annotations

from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _SpeedColumn(ProgressColumn):
    """Steps per second (blank until rich has a speed estimate)."""

    def render(self, task: Any) -> Text:
        return Text(f"{task.speed:.1f} steps/s" if task.speed else "")


class StepBar:
    """``with StepBar(total, initial) as bar: bar.update(n, status)``; a no-op when ``enabled`` is False."""

    def __init__(self, total: int, initial: int = 0, *, description: str = "train", enabled: bool = True) -> None:
        self._progress: Progress | None = None
        self._task: Any = None
        if enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                _SpeedColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                TimeRemainingColumn(), TextColumn("{task.fields[status]}"), refresh_per_second=2,
            )
            self._task = self._progress.add_task(description, total=total, completed=initial, status="")

    def __enter__(self) -> StepBar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, advance: int, status: str = "") -> None:
        """Advance by ``advance`` steps and replace the status text."""
        if self._progress is not None:
            self._progress.update(self._task, advance=advance, status=status)
