"""Trainer callbacks of ``scalezero train``: evaluation lines above the progress bar, stop when solved."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from scalezero_agents.training import Callback, MultiTaskTrainer

__all__ = ["EvalPrinter", "StopWhenSolved"]


class EvalPrinter(Callback):
    """Prints one line per evaluation: env steps, updates, and each task's mean return (``*``: solved)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def on_eval(self, trainer: MultiTaskTrainer, results: dict[str, dict[str, Any]]) -> None:
        parts = [f"{name.split('/', 1)[-1]} {res['mean']:.1f}{'*' if res.get('solved') else ''}"
                 for name, res in results.items()]
        self.console.print(f"eval @ {int(trainer.env_steps.max()):,} steps/task, {trainer.updates:,} updates: "
                           + " | ".join(parts), markup=False, highlight=False)


class StopWhenSolved(Callback):
    """Stops collecting and training a task once an evaluation's mean return reaches its target return."""

    def on_eval(self, trainer: MultiTaskTrainer, results: dict[str, dict[str, Any]]) -> None:
        for t, spec in enumerate(trainer.specs):
            if results[spec.name].get("solved") and trainer.active[t]:
                trainer.stop_task(t)
