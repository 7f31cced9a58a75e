"""Atari adapter (ale-py 0.12 + gymnasium 1.x), Atari-100k protocol by default.

Protocol (also stored in ``TaskSpec.eval_protocol``):

* ``ALE/<Game>-v5`` with ``frameskip=1`` underneath and **no sticky actions** (``repeat_action_probability
  = 0``); the adapter repeats each action for ``frame_skip=4`` frames and max-pools the last two.
* Up to ``noop_max=30`` no-op actions after every reset (drawn from the env's seeded generator).
* Episodes are capped at ``max_frames=108_000`` emulator frames (27,000 agent steps; reset no-ops count).
* Observations are ``uint8`` channel-first ``(C, 64, 64)``: RGB (``C=3``, ScaleZero's choice) or grayscale
  (``C=1``); with ``frame_stack=k`` the last ``k`` frames are concatenated, ``C*k`` channels.
* The minimal action set by default; ``full_action_space=True`` gives all 18 actions for every game
  (ScaleZero's multi-task setting).
* Training-only transforms (``mode="train"``): rewards replaced by their sign (``clip_rewards``) and, with
  ``life_loss_terminal``, a lost life ends the episode (the next ``reset()`` without a seed continues the
  same game, as DQN's episodic-life wrapper does). ``info["raw_reward"]`` always holds the game reward.
* Evaluation (``mode="eval"``) reports the raw game score over full games.

``make_atari_vector_env`` builds ALE's native C++ vector env with the same protocol; on 2 cores it was
measured faster than gymnasium's vector envs and needs no opencv (``docs/environments.md`` section 1).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from ._common import EnvFactory, Mode, Task, check_mode, check_options
from .scores import ATARI_SCORES
from .spec import TaskSpec

__all__ = ["ATARI_DEFAULTS", "AtariEnv", "AtariVectorEnvAdapter", "atari_task", "make_atari_vector_env"]

ATARI_DEFAULTS: dict[str, Any] = {
    "grayscale": False,
    "image_size": 64,
    "frame_stack": 1,
    "full_action_space": False,
    "noop_max": 30,
    "frame_skip": 4,
    "max_frames": 108_000,
    "sticky_actions": 0.0,
    "clip_rewards": True,
    "life_loss_terminal": False,
    "discount": 0.997,
}

_MINIMAL_ACTIONS = {
    "Alien": 18,
    "Amidar": 10,
    "Assault": 7,
    "Asterix": 9,
    "BankHeist": 18,
    "BattleZone": 18,
    "Boxing": 18,
    "Breakout": 4,
    "ChopperCommand": 18,
    "CrazyClimber": 9,
    "DemonAttack": 6,
    "Freeway": 3,
    "Frostbite": 18,
    "Gopher": 8,
    "Hero": 18,
    "Jamesbond": 18,
    "Kangaroo": 18,
    "Krull": 18,
    "KungFuMaster": 14,
    "MsPacman": 9,
    "Pong": 6,
    "PrivateEye": 18,
    "Qbert": 6,
    "RoadRunner": 18,
    "Seaquest": 18,
    "UpNDown": 6,
}  # measured, docs/environments.md section 1


def atari_game_ids() -> list[str]:
    """Names of every game with an ``ALE/<Game>-v5`` id (the valid ``atari/<Game>`` names)."""
    import ale_py

    gym.register_envs(ale_py)
    prefix, suffix = "ALE/", "-v5"
    return sorted(k[len(prefix) : -len(suffix)] for k in gym.registry if k.startswith(prefix) and k.endswith(suffix))


def _validate(opts: dict[str, Any]) -> None:
    if opts["image_size"] < 8:
        raise ValueError(f"image_size must be >= 8, got {opts['image_size']}")
    if opts["frame_stack"] < 1 or opts["frame_skip"] < 1 or opts["noop_max"] < 0:
        raise ValueError("frame_stack and frame_skip must be >= 1 and noop_max >= 0")
    if opts["max_frames"] < opts["frame_skip"]:
        raise ValueError(f"max_frames must be >= frame_skip, got {opts['max_frames']}")
    if not 0.0 <= opts["sticky_actions"] < 1.0:
        raise ValueError(f"sticky_actions must be in [0, 1), got {opts['sticky_actions']}")


def _protocol(opts: dict[str, Any]) -> str:
    return (
        f"Atari-100k protocol: sticky actions p={opts['sticky_actions']}, frame skip {opts['frame_skip']} "
        f"(max-pool of the last 2 frames), up to {opts['noop_max']} no-op starts, episodes capped at "
        f"{opts['max_frames']} emulator frames; evaluation reports the raw (unclipped) game score over full "
        "games (no life-loss terminal); training mode applies "
        f"{'sign reward clipping' if opts['clip_rewards'] else 'no reward clipping'}"
        f"{' and life-loss terminals' if opts['life_loss_terminal'] else ''}."
    )


def atari_task(game: str, **options: Any) -> Task:
    """Build the factory and ``TaskSpec`` for ``atari/<game>``.

    Args:
        game: ALE game name as in ``ALE/<Game>-v5`` (e.g. ``"Pong"``, ``"MsPacman"``).
        **options: Overrides of ``ATARI_DEFAULTS``: ``grayscale``, ``image_size``, ``frame_stack``,
            ``full_action_space``, ``noop_max``, ``frame_skip``, ``max_frames``, ``sticky_actions``,
            ``clip_rewards``, ``life_loss_terminal``, ``discount``.

    Returns:
        ``Task(factory, spec)``.
    """
    name = f"atari/{game}"
    opts = check_options(name, options, ATARI_DEFAULTS)
    _validate(opts)
    num_actions = 18 if opts["full_action_space"] else _MINIMAL_ACTIONS.get(game) or _probe_num_actions(game)
    channels = (1 if opts["grayscale"] else 3) * opts["frame_stack"]
    scores = ATARI_SCORES.get(game)
    spec = TaskSpec(
        name=name,
        family="atari",
        modality="image",
        obs_shape=(channels, opts["image_size"], opts["image_size"]),
        obs_dtype="uint8",
        action_kind="discrete",
        num_actions=num_actions,
        discount=opts["discount"],
        max_episode_steps=opts["max_frames"] // opts["frame_skip"],
        action_repeat=opts["frame_skip"],
        random_score=scores.random if scores else None,
        reference_score=scores.human if scores else None,
        target_return=scores.target if scores else None,
        reward_transform="sign" if opts["clip_rewards"] else "none",
        eval_protocol=_protocol(opts),
    )
    env_opts = {k: v for k, v in opts.items() if k != "discount"}
    return Task(EnvFactory(name, _build_atari, {"game": game, **env_opts}), spec)


def _probe_num_actions(game: str) -> int:
    env = _make_base(game, grayscale=True, full_action_space=False, max_frames=108_000, sticky_actions=0.0)
    try:
        return int(env.action_space.n)
    finally:
        env.close()


def _build_atari(mode: Mode, **options: Any) -> AtariEnv:
    return AtariEnv(mode=mode, **options)


def _make_base(
    game: str, *, grayscale: bool, full_action_space: bool, max_frames: int, sticky_actions: float
) -> gym.Env:
    import ale_py

    gym.register_envs(ale_py)
    env = gym.make(
        f"ALE/{game}-v5",
        obs_type="grayscale" if grayscale else "rgb",
        frameskip=1,
        repeat_action_probability=sticky_actions,
        full_action_space=full_action_space,
        max_num_frames_per_episode=max_frames,
        disable_env_checker=True,
    )
    return env.unwrapped


class AtariEnv(gym.Env[np.ndarray, np.int64]):
    """One Atari game under the Atari-100k protocol (see the module docstring).

    Prefer ``make_task("atari/<Game>", ...)``; the options are those of ``ATARI_DEFAULTS`` minus
    ``discount``.

    Example:
        >>> factory, spec = make_task("atari/Pong", grayscale=True)  # doctest: +SKIP
        >>> env = factory("eval"); obs, info = env.reset(seed=0)      # doctest: +SKIP
        >>> obs.shape, obs.dtype                                      # doctest: +SKIP
        ((1, 64, 64), dtype('uint8'))
    """

    metadata = {"render_modes": ["rgb_array"]}  # noqa: RUF012

    def __init__(self, *, game: str, mode: Mode = "eval", render_mode: str | None = None, **options: Any) -> None:
        check_mode(mode)
        opts = check_options(f"atari/{game}", options, {k: v for k, v in ATARI_DEFAULTS.items() if k != "discount"})
        _validate(opts)
        from gymnasium.wrappers import AtariPreprocessing

        self.game, self.mode, self.render_mode = game, mode, render_mode
        base = _make_base(
            game,
            grayscale=opts["grayscale"],
            full_action_space=opts["full_action_space"],
            max_frames=opts["max_frames"],
            sticky_actions=opts["sticky_actions"],
        )
        self._ale = base.ale
        self._pre = AtariPreprocessing(
            base,
            noop_max=opts["noop_max"],
            frame_skip=opts["frame_skip"],
            screen_size=opts["image_size"],
            grayscale_obs=opts["grayscale"],
            grayscale_newaxis=True,
        )
        channels = 1 if opts["grayscale"] else 3
        self._channels = channels
        self._stack = np.zeros((channels * opts["frame_stack"], opts["image_size"], opts["image_size"]), np.uint8)
        self._clip = mode == "train" and opts["clip_rewards"]
        self._life_loss = mode == "train" and opts["life_loss_terminal"]
        self._lives = 0
        self._continue_game = False
        self.action_space = gym.spaces.Discrete(int(base.action_space.n))
        self.observation_space = gym.spaces.Box(0, 255, self._stack.shape, np.uint8)

    def _push(self, frame_hwc: np.ndarray, *, fill: bool) -> np.ndarray:
        frame = frame_hwc.transpose(2, 0, 1)
        c = self._channels
        if fill:
            self._stack[:] = np.tile(frame, (self._stack.shape[0] // c, 1, 1))
        else:
            self._stack[:-c] = self._stack[c:]
            self._stack[-c:] = frame
        return self._stack.copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start a new game (or, after a training-mode life-loss terminal without ``seed``, continue it)."""
        super().reset(seed=seed)
        if self._continue_game and seed is None:
            self._continue_game = False
            frame, _, terminated, truncated, info = self._pre.step(0)
            if not (terminated or truncated):
                self._lives = int(info["lives"])
                return self._push(frame, fill=True), info
        self._continue_game = False
        frame, info = self._pre.reset(seed=seed, options=options)
        self._lives = int(self._ale.lives())
        return self._push(frame, fill=True), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Repeat ``action`` for ``frame_skip`` frames; see the module docstring for the reward rules."""
        a = int(action)
        if not 0 <= a < self.action_space.n:
            raise ValueError(f"action must be in [0, {self.action_space.n}), got {action!r}")
        frame, reward, terminated, truncated, info = self._pre.step(a)
        raw = float(reward)
        info["raw_reward"] = raw
        if self._life_loss:
            lives = int(info["lives"])
            if lives < self._lives and not (terminated or truncated):
                terminated, self._continue_game = True, True
            self._lives = lives
        out = float(np.sign(raw)) if self._clip else raw
        return self._push(frame, fill=False), out, bool(terminated), bool(truncated), info

    def action_masks(self) -> np.ndarray:
        """All actions are always legal (sb3-contrib ``MaskablePPO`` convention)."""
        return np.ones(self.action_space.n, dtype=bool)

    def render(self) -> np.ndarray | None:
        """The current RGB screen, (210, 160, 3) uint8, when ``render_mode="rgb_array"``."""
        return self._ale.getScreenRGB() if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        """Close the emulator."""
        self._pre.close()


class AtariVectorEnvAdapter(gym.vector.VectorWrapper):
    """ALE's native ``AtariVectorEnv`` presented with the adapter's conventions.

    Observations become ``(N, C*stack, H, W)`` uint8 (channel-first, like ``AtariEnv``); in ``"train"`` mode
    rewards are sign-clipped by the adapter (ALE's own clipping and FIRE-on-reset are turned off) and
    ``info["raw_reward"]`` holds the game rewards. Note: ALE's native env does not count the reset no-ops
    toward ``max_frames`` (gymnasium's ``AtariPreprocessing`` does), so its episodes can be up to 30 agent
    steps longer.
    """

    def __init__(self, env: gym.vector.VectorEnv, *, clip: bool, channels: int) -> None:
        super().__init__(env)
        self._clip = clip
        self._channels = channels
        single = env.single_observation_space
        stack, height, width = single.shape[0], single.shape[1], single.shape[2]
        shape = (stack * channels, height, width)
        self.single_observation_space = gym.spaces.Box(0, 255, shape, np.uint8)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, env.num_envs)

    def _obs(self, obs: np.ndarray) -> np.ndarray:
        if obs.ndim == 5:  # (N, stack, H, W, 3) -> (N, stack * 3, H, W)
            n, s, h, w, c = obs.shape
            return np.ascontiguousarray(obs.transpose(0, 1, 4, 2, 3)).reshape(n, s * c, h, w)
        return obs

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        """Reset every sub-env."""
        obs, info = self.env.reset(seed=seed, options=options)
        return self._obs(obs), info

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Step every sub-env (autoreset as configured)."""
        obs, reward, terminated, truncated, info = self.env.step(np.asarray(actions, dtype=np.int64))
        raw = reward.astype(np.float64)
        info["raw_reward"] = raw
        return self._obs(obs), np.sign(raw) if self._clip else raw.copy(), terminated, truncated, info


def make_atari_vector_env(
    game: str,
    num_envs: int,
    *,
    mode: Mode = "eval",
    num_threads: int = 0,
    autoreset_mode: AutoresetMode = AutoresetMode.SAME_STEP,
    **options: Any,
) -> AtariVectorEnvAdapter:
    """Build ``num_envs`` copies of ``atari/<game>`` as one ALE-native (C++ threads) vector env.

    Args:
        game: ALE game name, e.g. ``"Pong"``.
        num_envs: Number of sub-envs.
        mode: ``"train"`` (sign-clipped rewards, optional life-loss terminals) or ``"eval"``.
        num_threads: ALE worker threads (0 = ALE's default).
        autoreset_mode: Gymnasium autoreset mode; ``SAME_STEP`` (default) returns the first observation of the
            next episode in the step that ends one, with the final observation in ``info``.
        **options: As for ``atari_task`` (``discount`` is not accepted here).
    """
    check_mode(mode)
    opts = check_options(f"atari/{game}", options, {k: v for k, v in ATARI_DEFAULTS.items() if k != "discount"})
    _validate(opts)
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    from ale_py.roms import get_all_rom_ids
    from ale_py.vector_env import AtariVectorEnv

    roms = {rom.replace("_", ""): rom for rom in get_all_rom_ids()}
    rom = roms.get(game.lower())
    if rom is None:
        raise ValueError(f"no ALE ROM for game {game!r}")
    env = AtariVectorEnv(
        rom,
        num_envs,
        num_threads=num_threads,
        max_num_frames_per_episode=opts["max_frames"],
        repeat_action_probability=opts["sticky_actions"],
        full_action_space=opts["full_action_space"],
        autoreset_mode=autoreset_mode,
        img_height=opts["image_size"],
        img_width=opts["image_size"],
        grayscale=opts["grayscale"],
        stack_num=opts["frame_stack"],
        frameskip=opts["frame_skip"],
        noop_max=opts["noop_max"],
        episodic_life=mode == "train" and opts["life_loss_terminal"],
        reward_clipping=False,
        use_fire_reset=False,
    )
    return AtariVectorEnvAdapter(
        env, clip=mode == "train" and opts["clip_rewards"], channels=1 if opts["grayscale"] else 3
    )
