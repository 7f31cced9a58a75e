"""Dynamic Parameter Scaling in the native :class:`~scalezero_agents.training.MultiTaskTrainer`."""

from __future__ import annotations

import logging
from typing import Any

from scalezero_agents.dps.config import DPSConfig
from scalezero_agents.dps.controller import DynamicParameterScaling
from scalezero_agents.training.trainer import Callback, MultiTaskTrainer

log = logging.getLogger(__name__)


class DPSCallback(Callback):
    """Runs a :class:`DynamicParameterScaling` controller inside a :class:`MultiTaskTrainer`.

    - after every learner update: ``controller.step(trainer.updates)``; the stage is added to the update's
      metrics as ``dps_stage`` (TensorBoard: ``train/dps_stage``);
    - after every evaluation: tasks whose mean return reaches their ``target_return`` become solved and
      the trainer stops collecting and training them (``trainer.stop_task``);
    - checkpoints: the controller's plain-data state is saved with the trainer's, and
      :meth:`MultiTaskTrainer.load` re-creates the adapters before it loads the weights.

    The controller is made on the trainer's agent when the callback first sees the trainer, so the same
    callback works for a new trainer and for ``MultiTaskTrainer.load``::

        trainer = MultiTaskTrainer(make_suite("classic"), callbacks=[DPSCallback(DPSConfig())])
        trainer.train(50_000)
        trainer.save("run.pt")
        trainer = MultiTaskTrainer.load("run.pt", callbacks=[DPSCallback(DPSConfig())])

    Args:
        config: DPS settings.
    """

    state_key = "dps"

    def __init__(self, config: DPSConfig | None = None) -> None:
        self.config = config if config is not None else DPSConfig()
        self.controller: DynamicParameterScaling | None = None

    def bind(self, trainer: MultiTaskTrainer) -> DynamicParameterScaling:
        """The controller for ``trainer``'s agent (made on the first call)."""
        if self.controller is None:
            self.controller = DynamicParameterScaling(trainer.agent, self.config)
        elif self.controller.agent is not trainer.agent:
            raise ValueError("a DPSCallback serves one trainer; make a new callback for another trainer")
        return self.controller

    def on_train_start(self, trainer: MultiTaskTrainer) -> None:
        self.bind(trainer)  # solved tasks are already stopped: on_eval did it, and checkpoints keep `active`

    def on_update(self, trainer: MultiTaskTrainer, metrics: dict[str, float]) -> None:
        dps = self.bind(trainer)
        dps.step(trainer.updates)  # logs the switch
        metrics["dps_stage"] = float(dps.stage)

    def on_eval(self, trainer: MultiTaskTrainer, results: dict[str, dict[str, float]]) -> None:
        dps = self.bind(trainer)
        returns = {t: results[spec.name]["mean"] for t, spec in enumerate(trainer.specs) if spec.name in results}
        for t in sorted(dps.report_eval(returns)):
            log.info("DPS: %s solved (eval mean %.1f >= target %s) after %d env steps; it stops training",
                     trainer.specs[t].name, returns[t], trainer.specs[t].target_return, int(trainer.env_steps[t]))
            trainer.stop_task(t)

    def state_dict(self, trainer: MultiTaskTrainer) -> dict[str, Any]:
        return self.bind(trainer).state_dict()

    def load_state_dict(self, trainer: MultiTaskTrainer, state: dict[str, Any]) -> None:
        self.bind(trainer).load_state_dict(state)
