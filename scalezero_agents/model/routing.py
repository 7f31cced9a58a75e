"""Row-to-task routing for heterogeneous batches.

The world model sorts every batch by (action kind, task id), discrete tasks first, so that each task's rows
form one contiguous block. A :class:`Route` lists those blocks; per-task modules then run each task's
parameters on a slice of the batch (a view, no copy) and concatenate, so a batch of one task costs exactly
one plain ``F.linear`` per layer and a batch of G tasks G of them. Discrete and continuous tasks have their
own stacks (policy heads, action embeddings), indexed by a task's position within its kind ("local" index).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from scalezero_adapters import TaskSpec
from torch import Tensor


class Segment(NamedTuple):
    """One task's contiguous block of rows."""

    task: int
    """The task's index (global id, or within-kind index in a :class:`KindRoute`)."""
    start: int
    stop: int


class KindRoute(NamedTuple):
    """The contiguous rows of one action kind and its tasks' blocks."""

    start: int
    """First row of this kind in the batch."""
    stop: int
    """One past the last row of this kind."""
    segments: tuple[Segment, ...]
    """Blocks of within-kind task indices, with rows relative to ``start``."""


@dataclass(frozen=True)
class Route:
    """Routing of a batch whose rows are sorted by (kind, task)."""

    ids: Tensor
    """``[n]`` LongTensor of global task ids (sorted)."""
    ids_list: list[int]
    """The same ids as Python ints."""
    segments: tuple[Segment, ...]
    """Blocks of global task ids."""
    discrete: KindRoute | None
    """Rows of discrete tasks (the first rows), or ``None``."""
    continuous: KindRoute | None
    """Rows of continuous tasks (after the discrete ones), or ``None``."""

    @property
    def num_rows(self) -> int:
        """n."""
        return len(self.ids_list)


class TaskTable:
    """Static per-task facts of a model's task list, and the builder of :class:`Route` objects."""

    def __init__(self, specs: Sequence[TaskSpec]) -> None:
        self.num_tasks = len(specs)
        self.discrete = [spec.is_discrete for spec in specs]
        self.discrete_tasks = [k for k, spec in enumerate(specs) if spec.is_discrete]
        self.continuous_tasks = [k for k, spec in enumerate(specs) if not spec.is_discrete]
        self.local = [0] * len(specs)
        for group in (self.discrete_tasks, self.continuous_tasks):
            for position, task in enumerate(group):
                self.local[task] = position

    def check(self, task_ids: Tensor) -> list[int]:
        """Validate ``task_ids`` (a 1-D int64 tensor) and return it as a list.

        Raises:
            ValueError: For an empty batch or an unknown task id.
        """
        if task_ids.numel() == 0:
            raise ValueError("empty batch: task_ids has no rows")
        ids = task_ids.tolist()
        bad = [t for t in ids if not 0 <= t < self.num_tasks]
        if bad:
            raise ValueError(
                f"unknown task id {bad[0]}; the model has {self.num_tasks} tasks (ids 0..{self.num_tasks - 1})"
            )
        return ids

    def order(self, ids: list[int]) -> list[int] | None:
        """The row permutation that sorts ``ids`` by (kind, task), discrete first; ``None`` if already sorted."""
        keys = [(not self.discrete[t], t) for t in ids]
        if all(a <= b for a, b in itertools.pairwise(keys)):
            return None
        return sorted(range(len(ids)), key=keys.__getitem__)

    def route(self, ids: list[int], ids_t: Tensor) -> Route:
        """The :class:`Route` of sorted ids (``ids_t`` is the same ids as a tensor)."""
        segments = _segments(ids, 0, len(ids))
        kinds: dict[bool, list[Segment]] = {True: [], False: []}
        for seg in segments:
            kinds[self.discrete[seg.task]].append(seg)
        return Route(ids_t, ids, segments, self._kind(kinds[True]), self._kind(kinds[False]))

    def subset(self, route: Route, rows: Tensor) -> Route:
        """The routing of ``route``'s rows ``rows`` (an increasing ``[m]`` LongTensor), renumbered ``0..m-1``."""
        ids = [route.ids_list[r] for r in rows.tolist()]
        return self.route(ids, route.ids.index_select(0, rows))

    def _kind(self, segments: list[Segment]) -> KindRoute | None:
        if not segments:
            return None
        start = segments[0].start
        local = tuple(Segment(self.local[s.task], s.start - start, s.stop - start) for s in segments)
        return KindRoute(start, segments[-1].stop, local)


def _segments(ids: list[int], start: int, stop: int) -> tuple[Segment, ...]:
    out = []
    begin = start
    for row in range(start + 1, stop + 1):
        if row == stop or ids[row] != ids[begin]:
            out.append(Segment(ids[begin], begin, row))
            begin = row
    return tuple(out)


def permute(x: Tensor | None, order: Tensor | None, dim: int = 0) -> Tensor | None:
    """``x`` with its rows along ``dim`` reordered by ``order`` (no-op for ``None``)."""
    if x is None or order is None:
        return x
    return x.index_select(dim, order)


def inverse_order(order: list[int], device: torch.device) -> tuple[Tensor, Tensor]:
    """``(order, inverse)`` as LongTensors on ``device``."""
    inverse = [0] * len(order)
    for position, row in enumerate(order):
        inverse[row] = position
    return torch.tensor(order, device=device), torch.tensor(inverse, device=device)
