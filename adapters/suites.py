"""Named task suites: ``make_suite(name)`` -> list of ``Task``.

=========  ===================================================================================================
suite      tasks and settings
=========  ===================================================================================================
classic    gym/CartPole-v1, gym/Acrobot-v1, dmc/cartpole-balance, dmc/cartpole-swingup (DMC: action repeat 4,
           250 agent steps per episode). A small CPU suite mixing discrete and continuous actions.
           cartpole-swingup is the fourth task: its reward is dense (a smooth upright/centred/small-control
           product, unlike pendulum-swingup's sparse reward), its physics is the cheapest (0.1 ms per step),
           it shares the cartpole dynamics with cartpole-balance (so a small multi-task model has something to
           transfer), and model-based agents learn it in well under 100k env steps.
atari8     ScaleZero's 8 Atari games (Pong, MsPacman, Seaquest, Boxing, Alien, ChopperCommand, Hero,
           RoadRunner).
atari26    The Atari-100k games in ScaleZero's order (atari8 first).
           Atari settings (ScaleZero): RGB 64x64, 1 frame, full 18-action space, frame skip 4, no sticky
           actions, <= 30 no-op starts; sign reward clipping and life-loss terminals in training mode only.
dmc18      ScaleZero's 18 DMC state tasks, action repeat 4 (pendulum-swingup 8), float32 state vectors.
jericho4   detective, omniquest, acorncourt, zork1 (LightZero's action-set sizes 12/25/45/55 and step caps
           100/100/50/500); story files from ``SCALEZERO_JERICHO_DIR`` unless ``jericho={"story_dir": ...}``.
=========  ===================================================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._common import Task
from .registry import make_task
from .scores import ATARI8, ATARI26, DMC18, DMC_TASKS, JERICHO4
from .spec import FAMILIES

__all__ = ["ATARI_SUITE_OPTIONS", "CLASSIC_DMC_ACTION_REPEAT", "SUITES", "make_suite", "suite_task_names"]

ATARI_SUITE_OPTIONS: dict[str, Any] = {
    "full_action_space": True,
    "life_loss_terminal": True,
    "clip_rewards": True,
}
CLASSIC_DMC_ACTION_REPEAT = 4

SUITES: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    "classic": (
        ("gym/CartPole-v1", {}),
        ("gym/Acrobot-v1", {}),
        ("dmc/cartpole-balance", {"action_repeat": CLASSIC_DMC_ACTION_REPEAT}),
        ("dmc/cartpole-swingup", {"action_repeat": CLASSIC_DMC_ACTION_REPEAT}),
    ),
    "atari8": tuple((f"atari/{g}", dict(ATARI_SUITE_OPTIONS)) for g in ATARI8),
    "atari26": tuple((f"atari/{g}", dict(ATARI_SUITE_OPTIONS)) for g in ATARI26),
    "dmc18": tuple((f"dmc/{t}", {"action_repeat": DMC_TASKS[t].action_repeat}) for t in DMC18),
    "jericho4": tuple((f"jericho/{g}", {}) for g in JERICHO4),
}


def suite_task_names(name: str) -> list[str]:
    """The task names of suite ``name`` (no env or story file is touched)."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; expected one of {sorted(SUITES)}")
    return [task for task, _ in SUITES[name]]


def make_suite(name: str, **family_options: Mapping[str, Any]) -> list[Task]:
    """Build every task of a suite, in task-id order.

    Args:
        name: One of ``SUITES`` (classic, atari8, atari26, dmc18, jericho4).
        **family_options: Per-family option overrides applied on top of the suite's settings, e.g.
            ``make_suite("atari8", atari={"grayscale": True})`` or ``make_suite("jericho4",
            jericho={"story_dir": "/data/jericho"})``.

    Raises:
        ValueError: For an unknown suite or family.
    """
    suite_task_names(name)
    unknown = sorted(set(family_options) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown family option(s) {unknown}; expected keys among {FAMILIES}")
    tasks = []
    for task, options in SUITES[name]:
        family = task.split("/", 1)[0]
        tasks.append(make_task(task, **{**options, **family_options.get(family, {})}))
    return tasks
