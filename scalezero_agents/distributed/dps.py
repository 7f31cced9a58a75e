"""Dynamic Parameter Scaling across ranks: rank 0 decides, every rank applies the same decision.

Solving a task and switching a stage change the model (new adapters) and the set of trained tasks, so every
rank must do both at the same update. :class:`DistributedDPSCallback` makes each decision once, on rank 0,
and broadcasts it; after a stage switch the new adapters' weights (random ``A`` initialisations) are
broadcast from rank 0 as well, and the replicas are checked to be identical.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scalezero_agents.dps import DPSCallback
from scalezero_agents.dps.lora import adapter_parameters

if TYPE_CHECKING:
    from scalezero_agents.distributed.trainer import DistributedTrainer

log = logging.getLogger(__name__)


class DistributedDPSCallback(DPSCallback):
    """:class:`~scalezero_agents.dps.DPSCallback` for :class:`~scalezero_agents.distributed.DistributedTrainer`.

    Its checkpoint state (key ``"dps"``) is the plain callback's, so a distributed run's checkpoint resumes
    in one process with ``DPSCallback`` and vice versa.
    """

    def on_update(self, trainer: DistributedTrainer, metrics: dict[str, float]) -> None:  # type: ignore[override]
        dps, comm = self.bind(trainer), trainer.comm
        decide = comm.rank == 0 and dps.should_switch(trainer.updates)
        if comm.broadcast_flag(decide, "DPS stage-switch broadcast"):
            spec = dps.advance(trainer.updates)
            learner = trainer.agent.learner
            new = dps.adapter_parameters(dps.stage) + adapter_parameters(learner.target.transformer, spec.name,
                                                                         spec.targets)
            comm.broadcast_tensors_([p.data for p in new], "DPS adapter broadcast")
            trainer.check_replicas()
        else:
            dps.updates = trainer.updates
        metrics["dps_stage"] = float(dps.stage)

    def on_eval(self, trainer: DistributedTrainer, results: dict[str, dict[str, float]]) -> None:  # type: ignore[override]
        dps, comm = self.bind(trainer), trainer.comm
        newly: list[int] = []
        if comm.rank == 0:
            returns = {t: results[s.name]["mean"] for t, s in enumerate(trainer.specs) if s.name in results}
            newly = sorted(dps.report_eval(returns))
        newly = comm.broadcast_object(newly, "DPS solved-task broadcast")
        if comm.rank != 0:
            dps.mark_solved(newly)
        for t in newly:
            if comm.rank == 0:
                log.info("DPS: %s solved after %d env steps; it stops training on every rank",
                         trainer.specs[t].name, int(trainer.env_steps[t]))
            trainer.stop_task(t)
