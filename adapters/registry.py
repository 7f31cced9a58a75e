"""``make_task``: one name -> env factory + ``TaskSpec``, with suggestions for unknown names.

Names: ``atari/<Game>`` (any ``ALE/<Game>-v5`` id), ``dmc/<domain>-<task>`` (any DM Control Suite task),
``jericho/<game>`` (detective, omniquest, acorncourt, zork1, 905) and ``gym/<registered id>``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from ._common import Task
from .scores import JERICHO_GAMES
from .spec import FAMILIES

__all__ = ["UnknownTaskError", "list_tasks", "make_task"]

# Namespaces that belong to other families (``gym/ALE/Pong-v5`` would bypass the Atari protocol).
_FOREIGN_NAMESPACES = ("ALE/", "dm_control/")


class UnknownTaskError(ValueError):
    """An unknown task name; the message lists the closest valid names."""


def _atari_names() -> list[str]:
    from .atari import atari_game_ids

    return [f"atari/{g}" for g in atari_game_ids()]


def _dmc_names() -> list[str]:
    from .dmc import dmc_task_names

    return [f"dmc/{t}" for t in dmc_task_names()]


def _jericho_names() -> list[str]:
    return [f"jericho/{g}" for g in JERICHO_GAMES]


def _gym_names() -> list[str]:
    return sorted(f"gym/{k}" for k in gym.registry if not k.startswith(_FOREIGN_NAMESPACES))


_NAME_LISTS: dict[str, Callable[[], list[str]]] = {
    "atari": _atari_names,
    "dmc": _dmc_names,
    "jericho": _jericho_names,
    "gym": _gym_names,
}


def list_tasks(family: str | None = None) -> list[str]:
    """Every valid task name (of one family, or of all).

    Raises:
        ValueError: For an unknown family.
    """
    if family is None:
        return [name for fam in FAMILIES for name in _NAME_LISTS[fam]()]
    if family not in _NAME_LISTS:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    return _NAME_LISTS[family]()


def _suggest(name: str, candidates: list[str]) -> list[str]:
    """Closest candidates, compared on the part after the family prefix, case-insensitively."""

    def key(full: str) -> str:
        return full.split("/", 1)[-1].lower()

    by_key: dict[str, list[str]] = {}
    for candidate in candidates:
        by_key.setdefault(key(candidate), []).append(candidate)
    close = difflib.get_close_matches(key(name), list(by_key), n=5, cutoff=0.6)
    return [full for k in close for full in by_key[k]][:5]


def _unknown(name: str, candidates: list[str]) -> UnknownTaskError:
    suggestions = _suggest(name, candidates)
    hint = f"; did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
    return UnknownTaskError(f"unknown task {name!r}{hint} (list_tasks() gives every valid name)")


def make_task(name: str, **options: Any) -> Task:
    """Build a task by name: returns ``Task(factory, spec)``, which unpacks as ``factory, spec``.

    ``factory(mode)`` builds a fresh env: ``mode="train"`` applies the training-only transforms recorded in
    ``spec`` (``spec.reward_transform``, Atari life-loss terminals), ``mode="eval"`` (the default) follows
    ``spec.eval_protocol``.

    Args:
        name: ``"atari/<Game>"``, ``"dmc/<domain>-<task>"``, ``"jericho/<game>"`` or ``"gym/<id>"``.
        **options: Family-specific options (see ``atari_task``, ``dmc_task``, ``jericho_task``, ``gym_task``);
            unknown options raise ``ValueError`` listing the allowed ones.

    Raises:
        UnknownTaskError: (a ``ValueError``) for an unknown name, listing the closest valid names.

    Example:
        >>> factory, spec = make_task("gym/CartPole-v1")
        >>> spec.num_actions, spec.obs_shape
        (2, (4,))
        >>> env = factory("eval")
        >>> obs, info = env.reset(seed=0)
    """
    family, sep, task = name.partition("/")
    if not sep or family not in _NAME_LISTS or not task:
        families = [f"{f}/" for f in FAMILIES]
        raise UnknownTaskError(f"task names look like 'family/task' with family in {families}; got {name!r}")
    if name not in set(_NAME_LISTS[family]()):
        raise _unknown(name, _NAME_LISTS[family]())
    if family == "atari":
        from .atari import atari_task

        return atari_task(task, **options)
    if family == "dmc":
        from .dmc import dmc_task

        return dmc_task(task, **options)
    if family == "jericho":
        from .jericho import jericho_task

        return jericho_task(task, **options)
    from .gym import gym_task

    return gym_task(task, **options)
