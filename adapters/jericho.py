"""Jericho text-game adapter, fully offline.

Observation: ``Dict(text=Text, action_mask=Box(0, 1, (max_actions,), int8))``. The text is the game's last
output (optionally prefixed by location and inventory, and by default followed by ``"Valid actions: a | b |
..."`` so a policy can see what each index means), reduced to printable ASCII plus newline and cut to
``max_text_length`` characters.

Actions: ``Discrete(max_actions)``, an index into the current valid-action list (sorted, so the order does not
depend on how jericho discovered them). Rules, all explicit:

* More valid actions than slots: the first ``max_actions`` (in sorted order) are kept; ``info
  ["num_valid_actions"]`` reports the untruncated count.
* No valid action (or the game is over): slot 0 holds ``FALLBACK_COMMAND`` (``"look"``), mask ``[1, 0, ...]``.
* **Invalid index** (inside ``[0, max_actions)`` but masked out): the step is a **no-op** — the game is not
  advanced, the reward is 0, the observation is repeated, ``info["invalid_action"]`` is ``True`` — and it
  still counts toward ``max_steps``, so an agent that keeps choosing invalid actions is truncated. (LightZero
  instead substitutes a random valid action, which hides randomness inside the env.) An index outside
  ``[0, max_actions)`` is not in the action space and raises ``ValueError``.
* ``step_command(text)`` plays a raw command (walkthroughs, humans); it counts as a step.

Valid actions come from ``FrotzEnv.get_valid_actions(use_parallel=False)`` with jericho's spaCy object
extractor **replaced** (only for the duration of the call) by a game-dictionary extractor, so no spaCy model
is loaded and nothing is downloaded; if anything still tries to load spaCy, ``OfflineViolation`` is raised.
Results are cached by ``(story file digest, extraction mode, world-state hash)`` in a process-wide LRU cache
(``VALID_ACTIONS_CACHE``), shared by every env of the same game.

Story files come from ``story_file=``/``story_dir=`` or the ``SCALEZERO_JERICHO_DIR`` environment variable.
Only ``omniquest.z5`` grants redistribution (with credit to Chris Barden and Chris Ethridge); the package
ships no story file.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from ._common import EnvFactory, Mode, Task, check_mode, check_options
from .scores import JERICHO_GAMES
from .spec import TaskSpec

__all__ = [
    "FALLBACK_COMMAND",
    "JERICHO_DEFAULTS",
    "STORY_DIR_ENV",
    "TEXT_CHARSET",
    "VALID_ACTIONS_CACHE",
    "DictionaryObjectExtractor",
    "JerichoEnv",
    "OfflineViolation",
    "ValidActionCache",
    "jericho_task",
    "resolve_story_file",
]

STORY_DIR_ENV = "SCALEZERO_JERICHO_DIR"
_PATCH_LOCK = threading.Lock()
FALLBACK_COMMAND = "look"
TEXT_CHARSET = frozenset(chr(c) for c in range(32, 127)) | {"\n"}
_NON_TEXT = re.compile(r"[^\x20-\x7e\n]")
_TOKEN = re.compile(r"[a-z][a-z'-]*")
_STOP_WORDS = frozenset(
    "the and you your are there here this that with for not but can from have has its into onto out off all "
    "was were what which who some any one him her his she they them then than very only also just "
    # Inform games do not flag directions in their dictionaries, so they are listed here.
    "north south east west northeast northwest southeast southwest down inside outside".split()
)

JERICHO_DEFAULTS: dict[str, Any] = {
    "story_file": None,
    "story_dir": None,
    "max_actions": None,
    "max_steps": None,
    "with_location_inventory": False,
    "with_valid_actions": True,
    "max_text_length": 2048,
    "object_extraction": "vocab",
    "discount": 0.997,
}
ObjectExtraction = Literal["vocab", "objtree"]


class OfflineViolation(RuntimeError):
    """Raised when jericho tries to load (and so possibly download) a spaCy model."""


def _refuse_spacy(*_args: Any, **_kwargs: Any) -> None:
    raise OfflineViolation("jericho tried to load spaCy; the adapter's dictionary extractor should be in place")


class DictionaryObjectExtractor:
    """Offline replacement for ``jericho.util.extract_objs`` (which needs spaCy's ``en_core_web_sm``).

    ``"vocab"`` mode: lower-cased word tokens of 3+ characters whose first ``n`` characters (``n`` = the
    game's dictionary word length) are a dictionary noun (or adjective, in games that mark adjectives), minus
    directions, prepositions, meta/special words and a small stop list. ``"objtree"`` mode returns nothing,
    leaving jericho's object tree as the only source of object names (cheapest, slightly lower coverage).
    """

    def __init__(self, words: list[Any], mode: ObjectExtraction) -> None:
        if mode not in ("vocab", "objtree"):
            raise ValueError(f"object_extraction must be 'vocab' or 'objtree', got {mode!r}")
        self.mode = mode
        self._maxlen = max((len(w.word) for w in words), default=1)
        has_adjectives = any(w.is_adj for w in words)
        self._pos: dict[str, str] = {}
        for w in words:
            if w.is_dir or w.is_prep or w.is_meta or w.is_special:
                continue
            if w.is_noun:
                self._pos[w.word] = "NOUN"
            elif has_adjectives and w.is_adj:
                self._pos[w.word] = "ADJ"

    def __call__(self, text: str) -> set[tuple[str, str]]:
        """Return ``{(token, "NOUN" | "ADJ")}`` for the object words in ``text``."""
        if self.mode == "objtree":
            return set()
        found = set()
        for token in _TOKEN.findall(text.lower()):
            if len(token) < 3 or token in _STOP_WORDS:
                continue
            pos = self._pos.get(token[: self._maxlen])
            if pos is not None:
                found.add((token, pos))
        return found


@contextmanager
def _offline_extraction(extractor: DictionaryObjectExtractor) -> Iterator[None]:
    # Not ``import jericho.util``: jericho's ``from ctypes import *`` shadows the ``jericho.util`` attribute
    # with ``ctypes.util``; the module itself is only reachable through the import system.
    jutil = importlib.import_module("jericho.util")
    with _PATCH_LOCK:  # the patch is process-wide: one valid-action search at a time across threads
        saved = jutil.extract_objs, jutil._load_spacy
        jutil.extract_objs, jutil._load_spacy = extractor, _refuse_spacy
        try:
            yield
        finally:
            jutil.extract_objs, jutil._load_spacy = saved


class ValidActionCache:
    """A bounded LRU mapping ``(story digest, extraction mode, world-state hash) -> valid actions``."""

    def __init__(self, maxsize: int = 100_000) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self._data: OrderedDict[tuple[str, str, str], tuple[str, ...]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, str, str]) -> tuple[str, ...] | None:
        """The cached actions for ``key`` (refreshing its recency), or ``None``."""
        value = self._data.get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._data.move_to_end(key)
        return value

    def put(self, key: tuple[str, str, str], actions: tuple[str, ...]) -> None:
        """Store ``actions`` under ``key``, evicting the least recently used entry when full."""
        self._data[key] = actions
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry and reset the hit/miss counters."""
        self._data.clear()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)


VALID_ACTIONS_CACHE = ValidActionCache()


def resolve_story_file(
    game: str, story_file: str | os.PathLike | None = None, story_dir: str | os.PathLike | None = None
) -> Path:
    """Find a story file: ``story_file``, else ``<game>.z5`` (``.z3``, ``.z8``) in ``story_dir``, else in
    ``$SCALEZERO_JERICHO_DIR``.

    Raises:
        FileNotFoundError: Naming both the argument and the environment variable.
    """
    hint = f"pass story_file=/story_dir= to make_task('jericho/{game}', ...) or set {STORY_DIR_ENV}"
    if story_file is not None:
        path = Path(story_file)
        if not path.is_file():
            raise FileNotFoundError(f"story file {path} (argument story_file) does not exist; {hint}")
        return path
    source = "argument story_dir" if story_dir is not None else f"environment variable {STORY_DIR_ENV}"
    directory = story_dir if story_dir is not None else os.environ.get(STORY_DIR_ENV)
    if not directory:
        raise FileNotFoundError(f"no story file for jericho/{game}: {hint} (a directory holding {game}.z5)")
    for suffix in (".z5", ".z3", ".z8"):
        path = Path(directory) / f"{game}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(f"{game}.z5 not found in {directory} (from {source}); {hint}")


def jericho_task(game: str, **options: Any) -> Task:
    """Build the factory and ``TaskSpec`` for ``jericho/<game>``.

    Args:
        game: One of ``scores.JERICHO_GAMES`` (detective, omniquest, acorncourt, zork1, 905).
        **options: Overrides of ``JERICHO_DEFAULTS``: ``story_file``, ``story_dir``, ``max_actions``,
            ``max_steps`` (defaults per game), ``with_location_inventory``, ``with_valid_actions``,
            ``max_text_length``, ``object_extraction`` (``"vocab"`` or ``"objtree"``), ``discount``.
    """
    name = f"jericho/{game}"
    opts = check_options(name, options, JERICHO_DEFAULTS)
    info = JERICHO_GAMES[game]
    max_actions = info.max_actions if opts["max_actions"] is None else int(opts["max_actions"])
    max_steps = info.max_steps if opts["max_steps"] is None else int(opts["max_steps"])
    if max_actions < 1 or max_steps < 1 or opts["max_text_length"] < 16:
        raise ValueError("max_actions and max_steps must be >= 1 and max_text_length >= 16")
    if opts["object_extraction"] not in ("vocab", "objtree"):
        raise ValueError(f"object_extraction must be 'vocab' or 'objtree', got {opts['object_extraction']!r}")
    path = resolve_story_file(game, opts["story_file"], opts["story_dir"])
    spec = TaskSpec(
        name=name,
        family="jericho",
        modality="text",
        obs_shape=(opts["max_text_length"],),
        obs_dtype="str",
        action_kind="discrete",
        num_actions=max_actions,
        has_action_mask=True,
        discount=opts["discount"],
        max_episode_steps=max_steps,
        random_score=0.0,
        reference_score=float(info.max_return),
        target_return=float(info.max_return),
        eval_protocol=(
            f"Jericho: episode return = game score gained within {max_steps} steps "
            f"(at most {info.max_return}; "
            f"max score {info.max_score}); "
            f"actions index the sorted valid-action list (at most {max_actions}); masked indices are no-ops."
        ),
    )
    env_opts = {
        "game": game,
        "story_file": str(path),
        "max_actions": max_actions,
        "max_steps": max_steps,
        "with_location_inventory": opts["with_location_inventory"],
        "with_valid_actions": opts["with_valid_actions"],
        "max_text_length": opts["max_text_length"],
        "object_extraction": opts["object_extraction"],
    }
    return Task(EnvFactory(name, _build_jericho, env_opts), spec)


def _build_jericho(mode: Mode, **options: Any) -> JerichoEnv:
    return JerichoEnv(mode=mode, **options)


class JerichoEnv(gym.Env[dict, np.int64]):
    """A Jericho game as a Gymnasium env (rules in the module docstring); prefer ``make_task``."""

    metadata = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        *,
        game: str,
        story_file: str,
        mode: Mode = "eval",
        max_actions: int = 10,
        max_steps: int = 50,
        with_location_inventory: bool = False,
        with_valid_actions: bool = True,
        max_text_length: int = 2048,
        object_extraction: ObjectExtraction = "vocab",
    ) -> None:
        check_mode(mode)
        if max_actions < 1 or max_steps < 1 or max_text_length < 16:
            raise ValueError("max_actions and max_steps must be >= 1 and max_text_length >= 16")
        from jericho import FrotzEnv

        self.game, self.mode = game, mode
        self._frotz = FrotzEnv(str(story_file))
        if not self._frotz.is_fully_supported:
            raise ValueError(f"{story_file} is not fully supported by jericho (no score, no valid actions)")
        self._digest = hashlib.sha256(Path(story_file).read_bytes()).hexdigest()
        self._walkthrough_seed = int(self._frotz.bindings.get("seed", 0) or 0)
        self._seeded = False
        self._extractor = DictionaryObjectExtractor(self._frotz.get_dictionary(), object_extraction)
        self._max_actions, self._max_steps = max_actions, max_steps
        self._with_loc_inv, self._with_valid = with_location_inventory, with_valid_actions
        self._max_len = max_text_length
        self._steps = 0
        self._score = 0
        self._text = ""
        self._actions: tuple[str, ...] = ()
        self._num_valid = 0
        self._mask = np.zeros(max_actions, dtype=np.int8)
        self.action_space = gym.spaces.Discrete(max_actions)
        self.observation_space = gym.spaces.Dict(
            {
                "text": gym.spaces.Text(max_text_length, min_length=0, charset=TEXT_CHARSET),
                "action_mask": gym.spaces.Box(0, 1, (max_actions,), np.int8),
            }
        )

    # ------------------------------------------------------------------ valid actions
    def valid_actions(self) -> tuple[str, ...]:
        """The current state's valid actions (sorted, untruncated), from the cache when possible."""
        if self._frotz.game_over() or self._frotz.victory():
            return ()
        key = (self._digest, self._extractor.mode, self._frotz.get_world_state_hash())
        actions = VALID_ACTIONS_CACHE.get(key)
        if actions is None:
            with _offline_extraction(self._extractor):
                found = self._frotz.get_valid_actions(use_object_tree=True, use_ctypes=True, use_parallel=False)
            actions = tuple(sorted(set(found)))
            VALID_ACTIONS_CACHE.put(key, actions)
        return actions

    def _refresh_actions(self, game_text: str) -> None:
        valid = self.valid_actions()
        self._num_valid = len(valid)
        self._actions = valid[: self._max_actions] if valid else (FALLBACK_COMMAND,)
        self._mask[:] = 0
        self._mask[: len(self._actions)] = 1
        self._text = self._compose(game_text)

    def _compose(self, game_text: str) -> str:
        """Prefix (location, inventory) + game text + valid actions; the game text is cut first if too long."""
        prefix = suffix = ""
        if self._with_loc_inv:
            location = self._frotz.get_player_location()
            inventory = ", ".join(o.name for o in self._frotz.get_inventory()) or "nothing"
            prefix = f"Location: {location.name if location else 'unknown'}\nInventory: {inventory}\n"
        if self._with_valid:
            suffix = "\nValid actions: " + " | ".join(self._actions)
        body = game_text.replace("\r", "").strip()[: max(0, self._max_len - len(prefix) - len(suffix))]
        return _NON_TEXT.sub("?", prefix + body + suffix)[: self._max_len]

    def _observation(self) -> dict[str, Any]:
        return {"text": self._text, "action_mask": self._mask.copy()}

    def _info(self, *, invalid: bool, command: str | None) -> dict[str, Any]:
        return {
            "valid_actions": self._actions,
            "num_valid_actions": self._num_valid,
            "invalid_action": invalid,
            "command": command,
            "score": self._score,
            "moves": int(self._frotz.get_moves()),
        }

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """Restart the game.

        The emulator's RNG seed is the game's walkthrough seed until the env is first seeded; after
        ``reset(seed=s)`` each reset draws it from the env's generator (so ``s`` fixes every later episode).
        """
        super().reset(seed=seed)
        self._seeded = self._seeded or seed is not None
        emulator_seed = int(self.np_random.integers(1, 2**31 - 1)) if self._seeded else self._walkthrough_seed
        self._frotz.seed(emulator_seed)
        text, _ = self._frotz.reset()
        self._steps = 0
        self._score = int(self._frotz.get_score())
        self._refresh_actions(text)
        return self._observation(), self._info(invalid=False, command=None)

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict[str, Any]]:
        """Play the valid action at index ``action`` (a masked index is a no-op; see the module docstring)."""
        index = int(action)
        if not 0 <= index < self._max_actions:
            raise ValueError(f"action must be in [0, {self._max_actions}), got {action!r}")
        if not self._mask[index]:
            self._steps += 1
            truncated = self._steps >= self._max_steps
            return self._observation(), 0.0, False, truncated, self._info(invalid=True, command=None)
        return self.step_command(self._actions[index])

    def step_command(self, command: str) -> tuple[dict, float, bool, bool, dict[str, Any]]:
        """Play a raw text command (e.g. a walkthrough step); counts as one step."""
        text, _, done, _ = self._frotz.step(command)
        # The reward is our own score difference: jericho's is relative to a score that its valid-action
        # search (which replays candidate commands and restores the state) can leave stale.
        score = int(self._frotz.get_score())
        reward, self._score = float(score - self._score), score
        self._steps += 1
        self._refresh_actions(text)
        truncated = not done and self._steps >= self._max_steps
        return self._observation(), reward, bool(done), truncated, self._info(invalid=False, command=command)

    def action_masks(self) -> np.ndarray:
        """Boolean mask of the legal indices (sb3-contrib ``MaskablePPO`` convention)."""
        return self._mask.astype(bool)

    def walkthrough(self) -> list[str]:
        """jericho's walkthrough for this game (replays with the walkthrough seed, i.e. an unseeded env)."""
        return list(self._frotz.get_walkthrough())

    @property
    def max_score(self) -> int:
        """The game's maximum score."""
        return int(self._frotz.get_max_score())

    def close(self) -> None:
        """Release the emulator."""
        self._frotz.close()
