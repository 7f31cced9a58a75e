"""Which rank owns which tasks: a greedy balance of estimated per-step cost.

Rule (deterministic, the same on every rank):

1. each task gets a cost per environment step, by observation modality (:data:`MODALITY_COST`: image 4,
   text 2, vector 1: the image encoder dominates an image task's acting and learning, a text task's
   tokeniser and encoder sit between), unless ``costs`` gives one explicitly;
2. tasks are taken from the most to the least costly (ties: lower task id first), and each goes to the rank
   with the least cost so far (ties: fewer tasks, then lower rank);
3. each rank's tasks are kept in task-id order.

With equal costs (e.g. the ``classic`` suite, or all of Atari) this is round-robin: task i goes to rank
``i % world_size``. Every rank must own at least one task, so ``world_size <= number of tasks``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from scalezero_adapters import TaskSpec

MODALITY_COST: dict[str, float] = {"image": 4.0, "text": 2.0, "vector": 1.0}
"""Relative cost of one environment step (acting + learning) by observation modality."""


def task_cost(spec: TaskSpec) -> float:
    """The default sharding cost of one environment step of ``spec``'s task."""
    if spec.modality not in MODALITY_COST:
        raise ValueError(f"{spec.name}: no sharding cost for modality {spec.modality!r}; pass costs=")
    return MODALITY_COST[spec.modality]


def shard_tasks(specs: Sequence[TaskSpec], world_size: int,
                costs: Mapping[str, float] | None = None) -> list[tuple[int, ...]]:
    """Partition task ids ``0..len(specs)-1`` over ``world_size`` ranks (the module docstring's rule).

    Args:
        specs: the tasks, in task-id order.
        world_size: number of ranks.
        costs: optional per-step cost by task name (tasks not named keep the modality default).

    Returns:
        one tuple of task ids per rank, each sorted.

    Raises:
        ValueError: a world size below 1 or above the number of tasks, an unknown task name in ``costs``, or a
            cost that is not a positive finite number.
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    if world_size > len(specs):
        raise ValueError(f"world size {world_size} exceeds the number of tasks ({len(specs)}): every rank must own "
                         "at least one task; use fewer processes")
    costs = dict(costs or {})
    names = [s.name for s in specs]
    unknown = sorted(set(costs) - set(names))
    if unknown:
        raise ValueError(f"costs name unknown task(s) {unknown}; tasks are {names}")
    per_task = []
    for spec in specs:
        c = costs.get(spec.name, None)
        c = task_cost(spec) if c is None else c
        if isinstance(c, bool) or not isinstance(c, int | float) or not 0 < c < float("inf"):
            raise ValueError(f"{spec.name}: cost must be a positive finite number, got {c!r}")
        per_task.append(float(c))
    load = [0.0] * world_size
    owned: list[list[int]] = [[] for _ in range(world_size)]
    for t in sorted(range(len(specs)), key=lambda i: (-per_task[i], i)):
        r = min(range(world_size), key=lambda k: (load[k], len(owned[k]), k))
        load[r] += per_task[t]
        owned[r].append(t)
    return [tuple(sorted(o)) for o in owned]


def owner_of(shards: Sequence[Sequence[int]]) -> dict[int, int]:
    """Task id -> rank that owns it."""
    return {t: r for r, tasks in enumerate(shards) for t in tasks}
