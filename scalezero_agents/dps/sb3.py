"""Dynamic Parameter Scaling for the Stable-Baselines3 :class:`~scalezero_agents.integrations.sb3.ScaleZero`.

The glue is an SB3 callback over the one :class:`~scalezero_agents.dps.DynamicParameterScaling` controller,
mirroring the native :class:`~scalezero_agents.dps.DPSCallback`::

    from scalezero_agents.dps import DPSConfig
    from scalezero_agents.dps.sb3 import SB3DPSCallback
    from scalezero_agents.integrations.sb3 import ScaleZero

    model = ScaleZero("MultiInputPolicy", DummyVecEnv(multitask_env_fns(tasks, envs_per_task=2)), preset="small")
    dps = SB3DPSCallback(DPSConfig(min_stage0_updates=2_000, max_stage_updates=1_000), eval_freq=10_000)
    model.learn(200_000, callback=dps)
    model.save("run.zip")                  # stage, adapter specs, solved tasks: plain data in the zip
    model = ScaleZero.load("run.zip", env=env)          # adapters re-created before the weights load
    model.learn(100_000, callback=SB3DPSCallback(), reset_num_timesteps=False)   # continues the schedule

What it does:

* ``_init_callback``: attaches the controller to the model (:meth:`ScaleZero.enable_dps`; a loaded model
  already has its own, which the callback reuses);
* after **every learner update** (a per-update hook inside :meth:`ScaleZero.train`, so a switch happens right
  after the update that crosses the threshold): ``controller.step(learner.updates)``;
* every ``eval_freq`` env steps (SB3's ``num_timesteps``, summed over sub-envs): ``n_eval_episodes`` greedy
  episodes per unsolved task through the model's own ``predict`` (``evaluate_policy``), then
  ``controller.report_eval``; a newly solved task stops training and storing (:meth:`ScaleZero.stop_task`).
  SB3's ``VecEnv`` steps every sub-env at every step, so sub-envs running a solved task keep stepping (random
  actions, nothing searched or stored); ``model.task_env_steps`` counts the steps stored per task;
* logs ``dps/stage``, ``dps/solved``, ``dps/adapter_params`` and ``eval/<task>/mean_reward`` to SB3's logger;
* stops ``learn`` once every task is solved (``stop_when_all_solved``).

Evaluation envs: by default built from the training env -- for a ``MultiTaskEnv`` vector env, one
``MultiTaskEnv(tasks, mode="eval", task_id=t)`` per task; for a single registered Gymnasium env,
``gym.make(env.unwrapped.spec)`` (its registration with the same kwargs, without later wrappers) -- each
``n_eval_episodes`` copies in a ``DummyVecEnv`` (one batched search per step).
Pass ``eval_env`` for anything else.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
from scalezero_adapters import MultiTaskEnv
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.type_aliases import GymEnv
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from scalezero_agents.dps.config import DPSConfig
from scalezero_agents.dps.controller import DynamicParameterScaling
from scalezero_agents.integrations.sb3 import ScaleZero

__all__ = ["SB3DPSCallback"]

log = logging.getLogger(__name__)

EvalEnvs = GymEnv | Sequence[GymEnv] | Mapping[int | str, GymEnv]


def _monitored(make: Callable[[], gym.Env]) -> gym.Env:
    return Monitor(make())


class SB3DPSCallback(BaseCallback):
    """Runs Dynamic Parameter Scaling inside ``ScaleZero.learn`` (see the module docstring).

    Args:
        config: DPS settings; ``None`` reuses the model's controller (a loaded model) or takes the defaults.
        eval_env: evaluation env(s): one env (single-task model), a sequence with one env per task, or a
            mapping from task id or name to env; each a Gymnasium env or an SB3 ``VecEnv`` with the model's
            spaces that runs only that task. ``None``: built from the training env (module docstring).
        eval_freq: evaluate every this many env steps (SB3's ``num_timesteps``, summed over sub-envs); 0: only
            when :meth:`evaluate` is called.
        n_eval_episodes: greedy episodes per task and evaluation.
        stop_when_all_solved: return ``False`` from ``_on_step`` (ending ``learn``) once every task is solved.
        seed: seeds the evaluation episodes (evaluation ``k`` of task ``t`` resets from
            ``seed + 10_000 * k + 100 * t + i`` in sub-env ``i``).
        verbose: 1 prints stage switches and solved tasks.

    Attributes:
        controller: the :class:`DynamicParameterScaling` controller (set when ``learn`` starts).
        evaluations: one dict per evaluation: ``num_timesteps``, ``updates``, ``stage``, ``returns`` (mean per
            evaluated task name) and ``solved`` (names solved by it).
    """

    def __init__(self, config: DPSConfig | None = None, *, eval_env: EvalEnvs | None = None,
                 eval_freq: int = 10_000, n_eval_episodes: int = 5, stop_when_all_solved: bool = True,
                 seed: int = 0, verbose: int = 0) -> None:
        super().__init__(verbose)
        if config is not None and not isinstance(config, DPSConfig):
            raise ValueError(f"config must be a DPSConfig, got {type(config).__name__}")
        for name, value, low in (("eval_freq", eval_freq, 0), ("n_eval_episodes", n_eval_episodes, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        self.config, self.eval_env = config, eval_env
        self.eval_freq, self.n_eval_episodes = eval_freq, n_eval_episodes
        self.stop_when_all_solved, self.seed = bool(stop_when_all_solved), int(seed)
        self.controller: DynamicParameterScaling | None = None
        self.evaluations: list[dict[str, Any]] = []
        self._eval_envs: dict[int, GymEnv] | None = None
        self._own_envs: list[VecEnv] = []
        self._next_eval = 0

    # ------------------------------------------------------------------ binding
    @property
    def scalezero(self) -> ScaleZero:
        """The model being trained (a :class:`ScaleZero`)."""
        if not isinstance(self.model, ScaleZero):
            raise TypeError(f"SB3DPSCallback needs a ScaleZero model, got {type(self.model).__name__}")
        return self.model

    def _init_callback(self) -> None:
        model = self.scalezero
        if self.controller is not None and self.controller.agent is not model.agent:
            raise ValueError("an SB3DPSCallback serves one model; make a new callback for another model")
        self.controller = model.enable_dps(self.config)
        if self.eval_freq:
            self._next_eval = (model.num_timesteps // self.eval_freq + 1) * self.eval_freq

    def _on_training_start(self) -> None:
        self.scalezero.add_update_hook(self._on_update)
        self._record()

    def _on_training_end(self) -> None:
        self.scalezero.remove_update_hook(self._on_update)
        for env in self._own_envs:
            env.close()
        self._own_envs, self._eval_envs = [], None

    def _on_update(self, model: ScaleZero, metrics: dict[str, float]) -> None:
        assert self.controller is not None
        if self.controller.step(model.agent.learner.updates) and self.verbose:
            print(f"DPS: stage {self.controller.stage} at update {self.controller.updates}")

    # ------------------------------------------------------------------ SB3 hooks
    def _on_step(self) -> bool:
        if self.eval_freq and self.num_timesteps >= self._next_eval:
            self._next_eval = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq
            self.evaluate()
        self._record()
        model = self.scalezero
        assert model.task_active is not None
        return not (self.stop_when_all_solved and not model.task_active.any())

    def _record(self) -> None:
        assert self.controller is not None
        self.logger.record("dps/stage", self.controller.stage)
        self.logger.record("dps/solved", len(self.controller.solved))
        self.logger.record("dps/adapter_params", self.controller.num_parameters().adapters)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[int, float]:
        """Evaluate every unsolved task now and report the means (solving tasks). Returns them by task id."""
        model, controller = self.scalezero, self.controller
        assert controller is not None and model.task_active is not None
        envs = self._envs()
        returns: dict[int, float] = {}
        k = len(self.evaluations)
        for t, env in envs.items():
            if t in controller.solved:
                continue
            if isinstance(env, VecEnv):
                env.seed(self.seed + 10_000 * k + 100 * t)
            mean, _ = evaluate_policy(model, env, n_eval_episodes=self.n_eval_episodes, deterministic=True,
                                      warn=False)
            returns[t] = float(mean)
            name = model.task_specs[t].name
            self.logger.record(f"eval/{name}/mean_reward", float(mean))
            assert model.task_env_steps is not None
            self.logger.record(f"eval/{name}/env_steps", int(model.task_env_steps[t]))
        newly = self.report_eval(returns)
        self.evaluations.append({
            "num_timesteps": int(model.num_timesteps), "updates": int(model.agent.learner.updates),
            "stage": controller.stage, "returns": {model.task_specs[t].name: r for t, r in returns.items()},
            "solved": sorted(model.task_specs[t].name for t in newly)})
        return returns

    def report_eval(self, returns: Mapping[int, float]) -> set[int]:
        """Report mean evaluation returns by task id (e.g. from your own evaluation); tasks reaching their
        ``TaskSpec.target_return`` become solved and stop training. Returns the newly solved task ids."""
        model, controller = self.scalezero, self.controller
        assert controller is not None and model.task_env_steps is not None
        newly = controller.report_eval(returns)
        for t in sorted(newly):
            spec = model.task_specs[t]
            log.info("DPS: %s solved (eval mean %.1f >= target %s) after %d stored env steps; it stops training",
                     spec.name, returns[t], spec.target_return, int(model.task_env_steps[t]))
            if self.verbose:
                print(f"DPS: {spec.name} solved (eval mean {returns[t]:.1f} >= target {spec.target_return})")
            model.stop_task(t)
        return newly

    def _envs(self) -> dict[int, GymEnv]:
        if self._eval_envs is None:
            self._eval_envs = self._resolve_eval_envs()
        return self._eval_envs

    def _resolve_eval_envs(self) -> dict[int, GymEnv]:
        model = self.scalezero
        specs = model.task_specs
        names = {spec.name: t for t, spec in enumerate(specs)}
        given = self.eval_env
        if given is None:
            return self._default_eval_envs()
        if isinstance(given, Mapping):
            out: dict[int, GymEnv] = {}
            for key, env in given.items():
                if isinstance(key, str):
                    if key not in names:
                        raise ValueError(f"eval_env: unknown task {key!r}; the model's tasks are {sorted(names)}")
                    key = names[key]
                if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key < len(specs):
                    raise ValueError(f"eval_env: task id {key!r} out of range [0, {len(specs)})")
                out[key] = env
        elif isinstance(given, Sequence) and not isinstance(given, str):
            if len(given) != len(specs):
                raise ValueError(f"eval_env: {len(given)} envs for {len(specs)} tasks (give one per task)")
            out = dict(enumerate(given))
        else:
            if len(specs) != 1:
                raise ValueError(f"eval_env: one env for {len(specs)} tasks; give one env per task (a sequence or "
                                 "a mapping from task name to env)")
            out = {0: given}
        missing = [specs[t].name for t in range(len(specs)) if t not in out]
        if missing:
            raise ValueError(f"eval_env: no evaluation env for task(s) {missing}")
        for t, env in out.items():
            if env.action_space != model.action_space:
                raise ValueError(f"eval_env for {specs[t].name}: action space {env.action_space} differs from the "
                                 f"model's {model.action_space}")
        return out

    def _default_eval_envs(self) -> dict[int, GymEnv]:
        model, n = self.scalezero, self.n_eval_episodes
        train_env = self.training_env
        makers: dict[int, Callable[[], gym.Env]] = {}
        if model.layout is not None:
            tasks = train_env.get_attr("tasks", [0])[0]
            for t in range(len(model.task_specs)):
                makers[t] = functools.partial(MultiTaskEnv, tasks, mode="eval", task_id=t)
        else:
            spec = train_env.get_attr("unwrapped", [0])[0].spec  # its registration: kwargs, time limit
            if spec is None:
                raise ValueError("the training env is not a registered Gymnasium env, so SB3DPSCallback cannot "
                                 "build evaluation envs; pass eval_env=")
            makers[0] = functools.partial(gym.make, spec)
        out: dict[int, GymEnv] = {}
        for t, make in makers.items():
            venv = DummyVecEnv([functools.partial(_monitored, make)] * n)
            self._own_envs.append(venv)
            out[t] = venv
        return out

