"""Data tables: task lists, random/human/reference scores, target returns and per-task settings.

Sources (numbers are cited, no code is copied):

* Atari random and human scores: the standard DQN-era tables (Mnih et al. 2015; Badia et al. 2020), as
  used by every Atari-100k paper.
* Atari and DMC target returns, task orders: ScaleZero's released configs in opendilab/LightZero
  (``atari_unizero_multitask_segment_ddp_balance_config.py``, ``get_atari_target_return_dict``;
  ``dmc2gym_state_suz_multitask_ddp_balance_config.py``), summarised in ``docs/algorithm.md`` section 4.4.
* DMC observation keys and dims: measured through shimmy 2.0.1 / dm_control 1.0.50
  (``docs/environments.md`` section 2); key order is dm_control's native ``observation_spec()`` order.
* Jericho max scores: ``FrotzEnv.get_max_score()`` (jericho 3.3.1); action-set sizes and step caps:
  LightZero's ``jericho_unizero_config.py`` (905 is our choice, see ``JERICHO_GAMES``).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "ATARI8",
    "ATARI26",
    "ATARI_SCORES",
    "DMC18",
    "DMC_TASKS",
    "JERICHO4",
    "JERICHO_GAMES",
    "AtariScores",
    "DmcTaskInfo",
    "JerichoGameInfo",
]


class AtariScores(NamedTuple):
    """Reference numbers for one Atari game (raw game score, per episode)."""

    random: float
    human: float
    target: float
    """ScaleZero's target return (mostly the human score; some well below human)."""


# Order = ScaleZero's env_id_list order (the first 8 are Atari8).
ATARI_SCORES: dict[str, AtariScores] = {
    "Pong": AtariScores(-20.7, 14.6, 20.0),
    "MsPacman": AtariScores(307.3, 6951.6, 6951.6),
    "Seaquest": AtariScores(68.4, 42054.7, 42054.7),
    "Boxing": AtariScores(0.1, 12.1, 12.1),
    "Alien": AtariScores(227.8, 7127.7, 7127.7),
    "ChopperCommand": AtariScores(811.0, 7387.8, 7387.8),
    "Hero": AtariScores(1027.0, 30826.4, 30826.4),
    "RoadRunner": AtariScores(11.5, 7845.0, 7845.0),
    "Amidar": AtariScores(5.8, 1719.5, 100.5),
    "Assault": AtariScores(222.4, 742.0, 742.0),
    "Asterix": AtariScores(210.0, 8503.3, 1503.3),
    "BankHeist": AtariScores(14.2, 753.1, 753.1),
    "BattleZone": AtariScores(2360.0, 37187.5, 12187.5),
    "CrazyClimber": AtariScores(10780.5, 35829.4, 15829.4),
    "DemonAttack": AtariScores(152.1, 1971.0, 1971.0),
    "Freeway": AtariScores(0.0, 29.6, 29.6),
    "Frostbite": AtariScores(65.2, 4334.7, 334.7),
    "Gopher": AtariScores(257.6, 2412.5, 2412.5),
    "Jamesbond": AtariScores(29.0, 302.8, 302.8),
    "Kangaroo": AtariScores(52.0, 3035.0, 3035.0),
    "Krull": AtariScores(1598.0, 2665.5, 2665.5),
    "KungFuMaster": AtariScores(258.5, 22736.3, 12736.3),
    "PrivateEye": AtariScores(24.9, 69571.3, 1001.3),
    "UpNDown": AtariScores(533.4, 11693.2, 11693.2),
    "Qbert": AtariScores(163.9, 13455.0, 13455.0),
    "Breakout": AtariScores(1.7, 30.5, 30.5),
}

ATARI26: tuple[str, ...] = tuple(ATARI_SCORES)
ATARI8: tuple[str, ...] = ATARI26[:8]


class DmcTaskInfo(NamedTuple):
    """Measured facts for one DMC task (through shimmy, flattened in ``obs_keys`` order)."""

    obs_keys: tuple[tuple[str, int], ...]
    """(key, size) in dm_control's native observation order."""
    action_dim: int
    target: float
    """ScaleZero's target return (``None``-free: every DMC18 task has one)."""
    action_repeat: int
    """Action repeat used by ScaleZero's multi-task DMC config (4, pendulum 8)."""

    @property
    def obs_dim(self) -> int:
        """Flattened observation size."""
        return sum(size for _, size in self.obs_keys)


_CARTPOLE = (("position", 3), ("velocity", 2))
_FINGER_TURN = (("position", 4), ("velocity", 3), ("touch", 2), ("target_position", 2), ("dist_to_target", 1))
_HOPPER = (("position", 6), ("velocity", 7), ("touch", 2))
_REACHER = (("position", 2), ("to_target", 2), ("velocity", 2))
_WALKER = (("orientations", 14), ("height", 1), ("velocity", 9))

DMC_TASKS: dict[str, DmcTaskInfo] = {
    "acrobot-swingup": DmcTaskInfo((("orientations", 4), ("velocity", 2)), 1, 500.0, 4),
    "cartpole-balance": DmcTaskInfo(_CARTPOLE, 1, 900.0, 4),
    "cartpole-balance_sparse": DmcTaskInfo(_CARTPOLE, 1, 950.0, 4),
    "cartpole-swingup": DmcTaskInfo(_CARTPOLE, 1, 750.0, 4),
    "cartpole-swingup_sparse": DmcTaskInfo(_CARTPOLE, 1, 750.0, 4),
    "cheetah-run": DmcTaskInfo((("position", 8), ("velocity", 9)), 6, 550.0, 4),
    "ball_in_cup-catch": DmcTaskInfo((("position", 4), ("velocity", 4)), 2, 950.0, 4),
    "finger-spin": DmcTaskInfo((("position", 4), ("velocity", 3), ("touch", 2)), 2, 800.0, 4),
    "finger-turn_easy": DmcTaskInfo(_FINGER_TURN, 2, 950.0, 4),
    "finger-turn_hard": DmcTaskInfo(_FINGER_TURN, 2, 950.0, 4),
    "hopper-hop": DmcTaskInfo(_HOPPER, 4, 150.0, 4),
    "hopper-stand": DmcTaskInfo(_HOPPER, 4, 600.0, 4),
    "pendulum-swingup": DmcTaskInfo((("orientation", 2), ("velocity", 1)), 1, 800.0, 8),
    "reacher-easy": DmcTaskInfo(_REACHER, 2, 900.0, 4),
    "reacher-hard": DmcTaskInfo(_REACHER, 2, 900.0, 4),
    "walker-run": DmcTaskInfo(_WALKER, 6, 500.0, 4),
    "walker-stand": DmcTaskInfo(_WALKER, 6, 900.0, 4),
    "walker-walk": DmcTaskInfo(_WALKER, 6, 900.0, 4),
}
DMC18: tuple[str, ...] = tuple(DMC_TASKS)


class JerichoGameInfo(NamedTuple):
    """Per-game settings for a Jericho story file."""

    max_score: int
    initial_score: int
    """Score at the start of the game (detective awards 10 points before the first move)."""
    max_actions: int
    """Size of the padded valid-action set (``Discrete(max_actions)``)."""
    max_steps: int
    """Episode cap in agent steps."""

    @property
    def max_return(self) -> int:
        """The largest achievable episode return (``max_score - initial_score``)."""
        return self.max_score - self.initial_score


JERICHO_GAMES: dict[str, JerichoGameInfo] = {
    "detective": JerichoGameInfo(360, 10, 12, 100),
    "omniquest": JerichoGameInfo(50, 0, 25, 100),
    "acorncourt": JerichoGameInfo(30, 0, 45, 50),
    "zork1": JerichoGameInfo(350, 0, 55, 500),
    # Not in LightZero's configs: 905 has up to 34 valid actions on its walkthrough states
    # (docs/environments.md section 3), hence 35 slots; its walkthrough is 22 steps, hence 50.
    "905": JerichoGameInfo(1, 0, 35, 50),
}
JERICHO4: tuple[str, ...] = ("detective", "omniquest", "acorncourt", "zork1")
