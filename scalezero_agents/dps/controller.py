"""The DPS controller: when to switch stages, and what a switch does to an :class:`~scalezero_agents.agent.Agent`.

Framework-free: the native trainer drives it through :class:`~scalezero_agents.dps.DPSCallback`; other
training loops call the same four methods::

    dps = DynamicParameterScaling(agent, DPSConfig())
    dps.report_eval({task_id: mean_eval_return})     # -> newly solved task ids (stop training them)
    switched = dps.step(agent.learner.updates)       # after every learner update
    state = dps.state_dict()                         # plain data, into the checkpoint
    dps.load_state_dict(state)                       # on a fresh agent, BEFORE loading its weights

Schedule (algorithm.md 4.4): stage 0 until ``min_stage0_updates``; then a switch happens when
``max(1, ceil(unsolved / remaining_stages))`` tasks have been solved since the last switch, or when
``max_stage_updates`` updates have passed since it (the first switch counts from update 0); the last stage
persists. A switch to stage s adds adapter ``stage{s}`` to the online and the EMA target transformer
(identical weights), sets the stage's trainability (:func:`~scalezero_agents.dps.lora.set_stage_trainable`)
and registers the new parameters with the learner's optimiser, so every adapter parameter trains at the
scheduled learning rate (the reference's optimiser left them out, algorithm.md 4.5).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import nn

from scalezero_agents.dps.config import DPSConfig
from scalezero_agents.dps.lora import (
    AdapterSpec,
    adapter_names,
    adapter_parameters,
    adapter_scales,
    add_adapter,
    find_targets,
    set_stage_trainable,
)

if TYPE_CHECKING:
    from scalezero_agents.agent import Agent

log = logging.getLogger(__name__)


class ParamCount(NamedTuple):
    """Parameter counts of the online model."""

    total: int
    trainable: int
    """Parameters with ``requires_grad`` (what the optimiser can change now)."""
    adapters: int
    """LoRA A, B and scale parameters, all stages."""


def tasks_per_stage(unsolved: int, remaining_stages: int) -> int:
    """Newly solved tasks that end a stage: ``max(1, ceil(unsolved / remaining_stages))``."""
    return max(1, math.ceil(unsolved / max(remaining_stages, 1)))


class DynamicParameterScaling:
    """Stage-wise LoRA growth of an agent's transformer as tasks get solved.

    Args:
        agent: the agent to grow (its ``learner`` holds the online model, the EMA target and the optimiser).
        config: schedule and adapter settings.

    Attributes:
        stage: current stage (0: no adapters).
        solved: ids of the tasks solved so far (permanent).
        adapters: the :class:`AdapterSpec` of every stage >= 1, in order.
        targets: names of the adapted layers inside ``agent.model.transformer``.
    """

    def __init__(self, agent: Agent, config: DPSConfig | None = None) -> None:
        self.agent = agent
        self.config = config if config is not None else DPSConfig()
        if not isinstance(self.config, DPSConfig):
            raise ValueError(f"config must be a DPSConfig, got {type(self.config).__name__}")
        self.targets = find_targets(self._online, self.config.target_groups)
        if adapter_names(self._online):
            raise ValueError("the agent's transformer already has adapters; build DPS on a fresh agent")
        self.stage = 0
        self.updates = 0
        self.last_switch_updates = 0
        self.last_solved_count = 0
        self.solved: set[int] = set()
        self.adapters: list[AdapterSpec] = []

    @property
    def _online(self) -> nn.Module:
        return self.agent.learner.model.transformer

    @property
    def num_tasks(self) -> int:
        return len(self.agent.specs)

    # ------------------------------------------------------------------ solving
    def mark_solved(self, task_ids: Iterable[int]) -> set[int]:
        """Record tasks as solved (permanently). Returns the ones that were not solved before."""
        newly = self._check_ids(task_ids) - self.solved
        self.solved |= newly
        return newly

    def _check_ids(self, task_ids: Iterable[int]) -> set[int]:
        ids = {int(t) for t in task_ids}
        bad = sorted(t for t in ids if not 0 <= t < self.num_tasks)
        if bad:
            raise ValueError(f"task ids {bad} out of range [0, {self.num_tasks})")
        return ids

    def report_eval(self, returns: Mapping[int, float]) -> set[int]:
        """Mean evaluation returns by task id; a task is solved once its mean reaches its spec's
        ``target_return``. Returns the newly solved task ids (the caller stops collecting and training them)."""
        self._check_ids(returns)
        specs = self.agent.specs
        return self.mark_solved(t for t, r in returns.items() if specs[int(t)].is_solved(float(r)))

    # ------------------------------------------------------------------ schedule
    def should_switch(self, updates: int) -> bool:
        """Whether the schedule calls for the next stage at learner update ``updates``."""
        cfg = self.config
        if self.stage >= cfg.num_stages - 1:
            return False
        if self.stage == 0 and updates < cfg.min_stage0_updates:
            return False
        newly = len(self.solved) - self.last_solved_count
        quota = tasks_per_stage(self.num_tasks - len(self.solved), cfg.num_stages - 1 - self.stage)
        return newly >= quota or updates - self.last_switch_updates >= cfg.max_stage_updates

    def step(self, updates: int, solved: Iterable[int] = ()) -> bool:
        """Advance the schedule to learner update ``updates`` (a running count), optionally recording
        newly ``solved`` task ids first. Returns whether the stage switched (adapters were added)."""
        if isinstance(updates, bool) or not isinstance(updates, int) or updates < self.updates:
            raise ValueError(f"updates must be an int count that never decreases (last {self.updates}), "
                             f"got {updates!r}")
        self.mark_solved(solved)
        self.updates = updates
        if not self.should_switch(updates):
            return False
        self.advance(updates)
        return True

    def advance(self, updates: int | None = None) -> AdapterSpec:
        """Switch to the next stage now (whatever the schedule says) and return the new adapter's spec."""
        if self.stage >= self.config.num_stages - 1:
            raise ValueError(f"already at the last stage ({self.stage}) of {self.config.num_stages}")
        updates = self.updates if updates is None else updates
        self.updates = max(self.updates, updates)
        cfg = self.config
        spec = AdapterSpec(name=f"stage{self.stage + 1}", targets=self.targets, rank=cfg.rank, alpha=cfg.alpha,
                           dropout=cfg.dropout, scale_init=cfg.scale_init)
        new = self._grow(spec)
        self.last_switch_updates, self.last_solved_count = updates, len(self.solved)
        count = self.num_parameters()
        log.info("DPS: stage %d -> %d at update %d (%d of %d tasks solved): +%d adapter parameters, "
                 "%d of %d parameters trainable", self.stage - 1, self.stage, updates, len(self.solved),
                 self.num_tasks, sum(p.numel() for p in new), count.trainable, count.total)
        return spec

    def _grow(self, spec: AdapterSpec) -> list[nn.Parameter]:
        """Add ``spec`` to the online and target transformers and the optimiser; the stage becomes its index."""
        learner = self.agent.learner
        online, target = self._online, learner.target.transformer
        new = add_adapter(online, spec)
        add_adapter(target, spec)
        with torch.no_grad():
            for p, q in zip(new, adapter_parameters(target, spec.name, spec.targets), strict=True):
                q.copy_(p)
        set_stage_trainable(online)
        learner.target.requires_grad_(False)
        learner.add_params(new)
        self.adapters.append(spec)
        self.stage = len(self.adapters)
        return new

    # ------------------------------------------------------------------ inspection
    def adapter_parameters(self, stage: int) -> list[nn.Parameter]:
        """The online model's parameters of stage ``stage``'s adapter (A, B, scale per target layer)."""
        if not 1 <= stage <= self.stage:
            raise ValueError(f"stage must be in [1, {self.stage}], got {stage}")
        spec = self.adapters[stage - 1]
        return adapter_parameters(self._online, spec.name, spec.targets)

    def scales(self) -> dict[str, list[float]]:
        """Current scale ``s_j`` of every adapter, per target layer, by adapter name."""
        return {spec.name: adapter_scales(self._online, spec.name, spec.targets) for spec in self.adapters}

    def num_parameters(self) -> ParamCount:
        params = list(self.agent.learner.model.parameters())
        adapters = sum(p.numel() for s in range(1, self.stage + 1) for p in self.adapter_parameters(s))
        return ParamCount(total=sum(p.numel() for p in params),
                          trainable=sum(p.numel() for p in params if p.requires_grad), adapters=adapters)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Plain data (JSON-compatible): stage, counters, solved tasks and the adapters' specs."""
        return {"stage": self.stage, "updates": self.updates, "last_switch_updates": self.last_switch_updates,
                "last_solved_count": self.last_solved_count, "solved": sorted(self.solved),
                "adapters": [spec.to_dict() for spec in self.adapters]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`, re-creating the missing adapters (and their optimiser groups) in order.

        Call it before loading the agent's model and learner state, which need the adapters to exist.
        """
        specs = [AdapterSpec.from_dict(d) for d in state["adapters"]]
        if int(state["stage"]) != len(specs):
            raise ValueError(f"DPS state: stage {state['stage']} with {len(specs)} adapters")
        if len(specs) >= self.config.num_stages:
            raise ValueError(f"DPS state is at stage {len(specs)}, but config.num_stages is {self.config.num_stages}")
        if specs[: len(self.adapters)] != self.adapters:
            raise ValueError("DPS state: this agent already has different adapters; load into a fresh agent")
        for spec in specs[len(self.adapters):]:
            self._grow(spec)
        self.solved = set()
        self.mark_solved(state["solved"])
        self.updates = int(state["updates"])
        self.last_switch_updates = int(state["last_switch_updates"])
        self.last_solved_count = int(state["last_solved_count"])
