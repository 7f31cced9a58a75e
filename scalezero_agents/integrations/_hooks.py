"""Per-update hooks and the DPS controller, shared by the SB3 model and the Tianshou algorithm."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from scalezero_agents.dps.config import DPSConfig
from scalezero_agents.dps.controller import DynamicParameterScaling

if TYPE_CHECKING:
    from scalezero_agents.agent import Agent

UpdateHook = Callable[[Any, dict[str, float]], None]
"""``hook(host, metrics)``, called right after every learner update."""


def check_task_id(task_id: object, num_tasks: int) -> int:
    """``task_id`` as an int in ``[0, num_tasks)``, else ``ValueError``."""
    if isinstance(task_id, bool) or not isinstance(task_id, int | np.integer) or not 0 <= task_id < num_tasks:
        raise ValueError(f"task_id must be an int in [0, {num_tasks}), got {task_id!r}")
    return int(task_id)


class UpdateHooksAndDPS:
    """Mixin: :meth:`add_update_hook` / :meth:`remove_update_hook`, and an optional
    :class:`DynamicParameterScaling` controller (:meth:`enable_dps`, :attr:`dps`).

    The host calls :meth:`_init_hooks` in its constructor, :meth:`_run_update_hooks` after every learner update,
    and provides :meth:`_dps_agent`. Hooks belong to a training run: they are never saved or pickled.
    """

    _dps: DynamicParameterScaling | None
    _update_hooks: list[UpdateHook]

    def _init_hooks(self) -> None:
        self._dps = None
        self._update_hooks = []

    def _dps_agent(self) -> Agent:
        """The agent whose model DPS scales."""
        raise NotImplementedError

    def _run_update_hooks(self, metrics: dict[str, float]) -> None:
        for hook in list(self._update_hooks):  # a hook may remove itself
            hook(self, metrics)

    def add_update_hook(self, hook: UpdateHook) -> None:
        """Call ``hook(self, metrics)`` right after every learner update (not saved or pickled)."""
        if not callable(hook):
            raise ValueError(f"an update hook must be callable, got {hook!r}")
        if hook not in self._update_hooks:
            self._update_hooks.append(hook)

    def remove_update_hook(self, hook: UpdateHook) -> None:
        """Stop calling ``hook`` (no-op if it is not registered)."""
        if hook in self._update_hooks:
            self._update_hooks.remove(hook)

    @property
    def dps(self) -> DynamicParameterScaling | None:
        """The Dynamic Parameter Scaling controller (``None`` until :meth:`enable_dps`)."""
        return self._dps

    def enable_dps(self, config: DPSConfig | None = None) -> DynamicParameterScaling:
        """Attach a :class:`DynamicParameterScaling` controller to the agent and return it.

        Idempotent: a host that already has one (e.g. restored from a checkpoint) returns it; ``config`` must
        then be ``None`` or equal to its config. Its state is saved with the model; stepping it and reporting
        evaluations is the job of the DPS glue (``scalezero_agents.dps.sb3`` / ``scalezero_agents.dps.tianshou``).
        """
        if config is not None and not isinstance(config, DPSConfig):
            raise ValueError(f"config must be a DPSConfig, got {type(config).__name__}")
        if self._dps is not None:
            if config is not None and config != self._dps.config:
                raise ValueError(f"this {type(self).__name__} already runs DPS with {self._dps.config}; "
                                 f"got a different {config}")
            return self._dps
        self._dps = DynamicParameterScaling(self._dps_agent(), config)
        return self._dps
