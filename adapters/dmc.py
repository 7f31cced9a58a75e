"""DeepMind Control Suite adapter, through shimmy 2.x (``dm_control/<domain>-<task>-v0``).

Conventions (also in every ``TaskSpec``):

* **State observations** are one ``float32`` vector: the dm_control observation dict flattened **in
  dm_control's native ``observation_spec()`` key order** (the order dmc2gym and LightZero use; *not* the
  alphabetical order of gymnasium's ``FlattenObservation`` over shimmy's ``Dict`` space). For the 18 ScaleZero
  tasks the order is fixed in ``scores.DMC_TASKS`` and checked against dm_control; ``TaskSpec.obs_layout``
  lists ``(key, size)`` in that order for every task.
* **Actions** are ``Box(-1, 1, (d,), float32)``: clipped to [-1, 1], then mapped affinely onto the task's
  bounds (only quadruped is not already [-1, 1]).
* **Action repeat** ``k`` (option ``action_repeat``, default 1; the ``dmc18`` suite uses ScaleZero's 4, and 8
  for pendulum): each agent step runs ``k`` physics control steps and sums their rewards. Episodes are 1000
  control steps, i.e. ``ceil(1000 / k)`` agent steps, and end ``truncated`` (never ``terminated``).
* **Pixels** (``pixels=True``): ``uint8 (3, S, S)`` frames rendered once per agent step (after the repeat) by
  one persistent camera with shadows, reflections and multisampling off (measured 0.5-3 ms per frame instead
  of 15-20 ms). Headless rendering needs ``MUJOCO_GL``: if unset when dm_control is first imported, the
  adapter picks ``egl`` when ``libEGL`` is found, else ``osmesa`` (apt ``libosmesa6``).
"""

from __future__ import annotations

import ctypes.util
import math
import os
import sys
from typing import Any

import gymnasium as gym
import numpy as np

from ._common import EnvFactory, Mode, Task, check_mode, check_options, rescale_to_bounds
from .scores import DMC_TASKS
from .spec import TaskSpec

__all__ = ["DMC_DEFAULTS", "DMCEnv", "dmc_task", "dmc_task_names", "select_gl_backend"]

DMC_DEFAULTS: dict[str, Any] = {
    "action_repeat": 1,
    "pixels": False,
    "image_size": 64,
    "camera_id": 0,
    "discount": 0.99,
}
_EPISODE_CONTROL_STEPS = 1000  # every dm_control suite task: 20 s (cartpole: 10 s at 100 Hz)


def select_gl_backend() -> str:
    """Choose ``MUJOCO_GL`` for headless rendering, unless the user already set it.

    Must run before dm_control is imported (dm_control reads the variable once, at import). Picks ``egl``
    if ``libEGL`` is found, else ``osmesa`` (also setting ``PYOPENGL_PLATFORM=osmesa``) if ``libOSMesa`` is
    found; otherwise leaves the variable unset (state observations still work, rendering will fail).

    Returns:
        The backend in effect (``""`` if none).
    """
    if "MUJOCO_GL" in os.environ or "dm_control.mujoco" in sys.modules:
        return os.environ.get("MUJOCO_GL", "")
    if ctypes.util.find_library("EGL"):
        os.environ["MUJOCO_GL"] = "egl"
    elif ctypes.util.find_library("OSMesa"):
        os.environ["MUJOCO_GL"] = "osmesa"
        os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
    return os.environ.get("MUJOCO_GL", "")


def dmc_task_names() -> list[str]:
    """Every DM Control Suite task as ``"<domain>-<task>"`` (the valid ``dmc/...`` names)."""
    select_gl_backend()
    from dm_control import suite

    return sorted(f"{domain}-{task}" for domain, task in suite.ALL_TASKS)


def _validate(opts: dict[str, Any]) -> None:
    if opts["action_repeat"] < 1:
        raise ValueError(f"action_repeat must be >= 1, got {opts['action_repeat']}")
    if opts["image_size"] < 8:
        raise ValueError(f"image_size must be >= 8, got {opts['image_size']}")


def dmc_task(domain_task: str, **options: Any) -> Task:
    """Build the factory and ``TaskSpec`` for ``dmc/<domain>-<task>``.

    Args:
        domain_task: e.g. ``"walker-walk"``, ``"ball_in_cup-catch"``.
        **options: Overrides of ``DMC_DEFAULTS``: ``action_repeat``, ``pixels``, ``image_size``,
            ``camera_id``, ``discount``.
    """
    name = f"dmc/{domain_task}"
    opts = check_options(name, options, DMC_DEFAULTS)
    _validate(opts)
    info = DMC_TASKS.get(domain_task)
    if info is not None:
        layout, action_dim = info.obs_keys, info.action_dim
    else:
        layout, action_dim = _probe(domain_task)
    repeat = opts["action_repeat"]
    if opts["pixels"]:
        size = opts["image_size"]
        obs = {"modality": "image", "obs_shape": (3, size, size), "obs_dtype": "uint8", "obs_layout": ()}
    else:
        dim = sum(s for _, s in layout)
        obs = {"modality": "vector", "obs_shape": (dim,), "obs_dtype": "float32", "obs_layout": layout}
    spec = TaskSpec(
        name=name,
        family="dmc",
        **obs,
        action_kind="continuous",
        action_dim=action_dim,
        action_low=-1.0,
        action_high=1.0,
        discount=opts["discount"],
        max_episode_steps=math.ceil(_EPISODE_CONTROL_STEPS / repeat),
        action_repeat=repeat,
        random_score=0.0,
        reference_score=1000.0,
        target_return=info.target if info else None,
        eval_protocol=(
            f"DMC: 1000 control steps per episode (action repeat {repeat}, rewards summed), return = sum of "
            "per-step rewards in [0, 1]; normalised score = return / 1000."
        ),
    )
    env_opts = {k: v for k, v in opts.items() if k != "discount"}
    return Task(EnvFactory(name, _build_dmc, {"domain_task": domain_task, "layout": layout, **env_opts}), spec)


def _probe(domain_task: str) -> tuple[tuple[tuple[str, int], ...], int]:
    env = _make_shimmy(domain_task)
    try:
        return _native_layout(env), int(env.action_space.shape[0])
    finally:
        env.close()


def _native_layout(shimmy_env: Any) -> tuple[tuple[str, int], ...]:
    spec = shimmy_env._env.observation_spec()  # dm_control's OrderedDict, native order
    return tuple((key, int(np.prod(value.shape))) for key, value in spec.items())


def _make_shimmy(domain_task: str) -> Any:
    select_gl_backend()
    import shimmy

    gym.register_envs(shimmy)
    return gym.make(f"dm_control/{domain_task}-v0", disable_env_checker=True).unwrapped


def _build_dmc(mode: Mode, **options: Any) -> DMCEnv:
    return DMCEnv(mode=mode, **options)


class DMCEnv(gym.Env[np.ndarray, np.ndarray]):
    """One DM Control Suite task with flat float32 (or pixel) observations and [-1, 1] actions.

    Prefer ``make_task("dmc/<domain>-<task>", ...)``. Training and evaluation modes behave identically
    (DMC has no training-only transforms); ``mode`` is accepted for a uniform factory interface.
    """

    metadata = {"render_modes": ["rgb_array"]}  # noqa: RUF012

    def __init__(
        self,
        *,
        domain_task: str,
        mode: Mode = "eval",
        layout: tuple[tuple[str, int], ...] | None = None,
        action_repeat: int = 1,
        pixels: bool = False,
        image_size: int = 64,
        camera_id: int = 0,
        render_mode: str | None = None,
    ) -> None:
        check_mode(mode)
        _validate({"action_repeat": action_repeat, "image_size": image_size})
        self.mode, self.render_mode = mode, render_mode
        self._env = _make_shimmy(domain_task)
        native = _native_layout(self._env)
        if layout is not None and tuple(layout) != native:
            raise RuntimeError(f"dm_control's observation layout for {domain_task} changed: {native} != {layout}")
        self._keys = tuple(key for key, _ in native)
        self._dim = sum(size for _, size in native)
        self._repeat, self._pixels = action_repeat, pixels
        self._size, self._camera_id = image_size, camera_id
        self._camera: Any = None
        self._closed = False
        low = np.asarray(self._env.action_space.low, dtype=np.float64)
        high = np.asarray(self._env.action_space.high, dtype=np.float64)
        self._symmetric = bool(np.all(low == -1.0) and np.all(high == 1.0))
        self._low, self._high = low, high
        self.action_space = gym.spaces.Box(-1.0, 1.0, low.shape, np.float32)
        if pixels:
            self.observation_space = gym.spaces.Box(0, 255, (3, image_size, image_size), np.uint8)
        else:
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self._dim,), np.float32)

    # ------------------------------------------------------------------ observations
    def _flatten(self, obs: dict[str, Any]) -> np.ndarray:
        return np.concatenate([obs[key] for key in self._keys], axis=None, dtype=np.float32)

    def _frame(self) -> np.ndarray:
        if self._camera is None:
            self._camera = self._make_camera()
        return np.ascontiguousarray(self._camera.render().transpose(2, 0, 1))

    def _make_camera(self) -> Any:
        import mujoco
        from dm_control.mujoco.engine import Camera

        physics = self._env._env.physics
        physics.model.vis.quality.offsamples = 0  # no multisampling: the main cost after shadows

        def no_shadows(_physics: Any, scene: Any) -> None:
            scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0

        try:
            return Camera(
                physics,
                height=self._size,
                width=self._size,
                camera_id=self._camera_id,
                scene_callback=no_shadows,
            )
        except Exception as exc:  # dm_control raises several types for a missing GL platform
            raise RuntimeError(
                f"headless rendering failed with MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}: {exc}. "
                "Install EGL "
                "(apt: libegl1 libgl1-mesa-dri) and set MUJOCO_GL=egl, or OSMesa (apt: libosmesa6) and set "
                "MUJOCO_GL=osmesa PYOPENGL_PLATFORM=osmesa, before importing dm_control."
            ) from exc

    def _observe(self, obs: dict[str, Any]) -> np.ndarray:
        return self._frame() if self._pixels else self._flatten(obs)

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start a new episode; ``seed`` seeds dm_control's task randomness."""
        super().reset(seed=seed)
        obs, info = self._env.reset(seed=seed)
        return self._observe(obs), dict(info)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Clip and rescale ``action``, repeat it ``action_repeat`` times and sum the rewards."""
        a = np.asarray(action, dtype=np.float64).reshape(self._low.shape)
        # minimum/maximum: a third of np.clip's cost on arrays this small.
        a = np.minimum(np.maximum(a, -1.0), 1.0) if self._symmetric else rescale_to_bounds(a, self._low, self._high)
        total = 0.0
        terminated = truncated = False
        info: dict[str, Any] = {}
        for _ in range(self._repeat):
            obs, reward, terminated, truncated, info = self._env.step(a)
            total += float(reward)
            if terminated or truncated:
                break
        return self._observe(obs), total, bool(terminated), bool(truncated), info

    def render(self) -> np.ndarray | None:
        """The current frame as ``(S, S, 3)`` uint8 when ``render_mode="rgb_array"``."""
        if self.render_mode != "rgb_array":
            return None
        return self._frame().transpose(1, 2, 0)

    def close(self) -> None:
        """Free the renderer and the physics."""
        self._camera = None
        if not self._closed:
            self._closed = True
            self._env.close()
