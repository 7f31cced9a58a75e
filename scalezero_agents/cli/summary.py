"""What a finished ``scalezero train`` run reports: ``summary.json`` and the summary table."""

from __future__ import annotations

import dataclasses
from typing import Any

from rich.table import Table

from scalezero_agents.cli._common import git_commit, result_table, versions
from scalezero_agents.cli.prepare import Session

__all__ = ["build_summary", "summary_table"]


def _final_results(session: Session) -> dict[str, dict[str, Any]]:
    trainer = session.trainer
    last = trainer.history[-1]["tasks"] if trainer.history else {}
    results: dict[str, dict[str, Any]] = {}
    for t, spec in enumerate(trainer.specs):
        res = dict(last.get(spec.name, {}))
        res.update(env_steps=int(trainer.env_steps[t]), train_episodes=int(trainer.episodes[t]),
                   active=bool(trainer.active[t]))
        results[spec.name] = res
    return results


def _dps_state(session: Session) -> dict[str, Any] | None:
    if session.dps is None or session.dps.controller is None:
        return None
    controller = session.dps.controller
    count = controller.num_parameters()
    return {"config": dataclasses.asdict(session.dps.config), "stage": controller.stage,
            "solved": [session.trainer.specs[t].name for t in sorted(controller.solved)],
            "parameters": count.total, "adapter_parameters": count.adapters, "trainable_parameters": count.trainable}


def build_summary(session: Session, wall_time: float) -> dict[str, Any]:
    """The content of ``summary.json``: settings, config, versions, per-task final evaluation, throughput."""
    trainer, settings = session.trainer, session.settings
    total_steps = int(trainer.env_steps.sum())
    train_time = max(trainer.train_time, 1e-9)
    return {
        "label": settings.label(),
        "resumed": session.resumed,
        "settings": settings.to_dict(),
        "seed": trainer.seed,
        "tasks": [spec.name for spec in trainer.specs],
        "config": {"agent": dataclasses.asdict(trainer.config),
                   "trainer": dataclasses.asdict(trainer.trainer_config)},
        "parameters": sum(p.numel() for p in trainer.agent.model.parameters()),
        "versions": versions(),
        "git": git_commit(),
        "results": _final_results(session),
        "dps": _dps_state(session),
        "world_size": trainer.comm.world_size if hasattr(trainer, "comm") else 1,
        "env_steps": total_steps,
        "updates": trainer.updates,
        "evaluations": len(trainer.history),
        "train_time_s": round(trainer.train_time, 2),
        "wall_time_s": round(wall_time, 2),
        "env_steps_per_s": round(total_steps / train_time, 2),
        "updates_per_s": round(trainer.updates / train_time, 3),
        "files": {"checkpoint": "checkpoint.pt", "history": "history.json", "run": "run.json"},
    }


def summary_table(summary: dict[str, Any], specs: Any) -> Table:
    """The table printed at the end of a run."""
    results = {name: res for name, res in summary["results"].items() if "mean" in res}
    steps = {name: f"{res['env_steps']:,}" + ("" if res["active"] else " (stopped)")
             for name, res in summary["results"].items()}
    title = (f"{summary['label']}: {summary['env_steps']:,} env steps, {summary['updates']:,} updates, "
             f"{summary['env_steps_per_s']:.1f} env steps/s (training time {summary['train_time_s']:.0f} s)")
    return result_table(title, results, specs, extra={"env steps": steps})
