"""Dynamic Parameter Scaling for Tianshou 2.0 (:class:`~scalezero_agents.integrations.tianshou.ScaleZeroAlgorithm`).

The glue is a ``training_fn`` over the one :class:`~scalezero_agents.dps.DynamicParameterScaling` controller,
mirroring the native :class:`~scalezero_agents.dps.DPSCallback`::

    from scalezero_agents.dps import DPSConfig
    from scalezero_agents.dps.tianshou import TianshouDPSHook

    dps = TianshouDPSHook(algorithm, DPSConfig(min_stage0_updates=2_000, max_stage_updates=1_000),
                          tasks=tasks, eval_freq=10_000, n_eval_episodes=5,
                          training_fn=TemperatureSchedule(policy, 200_000))   # chained
    algorithm.run_training(OffPolicyTrainerParams(..., training_fn=dps))
    torch.save(algorithm.state_dict(), "run.pt")       # "_dps": config, stage, adapter specs (plain data)
    fresh.load_state_dict(torch.load("run.pt", weights_only=False))   # adapters re-created before the weights
    dps = TianshouDPSHook(fresh, tasks=tasks)                          # reuses the restored controller

What it does:

* at construction: attaches the controller to the algorithm (:meth:`ScaleZeroAlgorithm.enable_dps`; a
  restored algorithm already has its own, which the hook reuses) and registers a per-update hook, so
  ``controller.step(learner.updates)`` runs right after every learner update (a switch happens right after the
  update that crosses the threshold);
* as the trainer's ``training_fn`` (called at the start of every training step): every ``eval_freq`` trainer
  env steps, ``n_eval_episodes`` greedy episodes per unsolved task (a ``Collector`` on that task's eval envs,
  outside the training step, so the policy searches greedily), then ``controller.report_eval``; a newly
  solved task stops training (:meth:`ScaleZeroAlgorithm.stop_task`: updates sample only active tasks'
  steps). Tianshou's Collector steps every env, so a solved task's envs keep collecting into the buffer;
* writes ``dps/stage``, ``dps/solved`` and ``dps/eval/<task>`` to a Tianshou ``logger`` if given.

Evaluation envs: ``eval_envs`` (one Tianshou vector env per task, or a mapping from task id or name), or
built from ``tasks`` (``Task`` objects): ``n_eval_episodes`` copies of ``task.factory("eval")`` for a
single-task policy, of ``MultiTaskEnv(tasks, mode="eval", task_id=t)`` for a multi-task one. Tianshou's own
test step may keep using its ``test_collector``; this evaluation is separate because Tianshou's test stats
do not say which task an episode ran.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from scalezero_adapters import MultiTaskEnv, Task
from tianshou.data import Collector, VectorReplayBuffer
from tianshou.env import BaseVectorEnv, DummyVectorEnv
from tianshou.utils import BaseLogger
from tianshou.utils.torch_utils import policy_within_training_step

from scalezero_agents.dps.config import DPSConfig
from scalezero_agents.dps.controller import DynamicParameterScaling
from scalezero_agents.integrations._tianshou_algorithm import ScaleZeroAlgorithm

__all__ = ["TianshouDPSHook"]

log = logging.getLogger(__name__)

EVAL_BUFFER_STEPS = 64
"""Steps kept per eval env by the evaluation collectors (returns are summed as steps arrive, not from it)."""


class TianshouDPSHook:
    """Runs Dynamic Parameter Scaling for a :class:`ScaleZeroAlgorithm`; pass it as ``training_fn``.

    Args:
        algorithm: the algorithm being trained.
        config: DPS settings; ``None`` reuses the algorithm's controller (a restored one) or takes the
            defaults.
        tasks: the policy's tasks as ``Task`` objects (their env factories build the evaluation envs).
        eval_envs: instead of ``tasks``: one Tianshou vector env per task (a sequence in task-id order, or a
            mapping from task id or name), each running only that task in the training env's spaces.
        eval_freq: evaluate every this many trainer env steps (0: only when :meth:`evaluate` is called).
        n_eval_episodes: greedy episodes per task and evaluation.
        training_fn: another ``training_fn`` to call first (e.g. :class:`TemperatureSchedule`).
        logger: a Tianshou logger for ``dps/*`` scalars (optional).
        seed: seeds the evaluation episodes (evaluation ``k`` of task ``t`` seeds its envs from
            ``seed + 10_000 * k + 100 * t``).

    Attributes:
        controller: the :class:`DynamicParameterScaling` controller.
        evaluations: one dict per evaluation: ``env_step``, ``updates``, ``stage``, ``returns`` (mean per
            evaluated task name) and ``solved`` (names solved by it).
    """

    def __init__(self, algorithm: ScaleZeroAlgorithm, config: DPSConfig | None = None, *,
                 tasks: Sequence[Task] | None = None,
                 eval_envs: Sequence[BaseVectorEnv] | Mapping[int | str, BaseVectorEnv] | None = None,
                 eval_freq: int = 10_000, n_eval_episodes: int = 5,
                 training_fn: Callable[[int, int], None] | None = None, logger: BaseLogger | None = None,
                 seed: int = 0) -> None:
        if not isinstance(algorithm, ScaleZeroAlgorithm):
            raise ValueError(f"TianshouDPSHook needs a ScaleZeroAlgorithm, got {type(algorithm).__name__}")
        for name, value, low in (("eval_freq", eval_freq, 0), ("n_eval_episodes", n_eval_episodes, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if training_fn is not None and not callable(training_fn):
            raise ValueError(f"training_fn must be callable, got {training_fn!r}")
        self.algorithm = algorithm
        self.eval_freq, self.n_eval_episodes, self.seed = eval_freq, n_eval_episodes, int(seed)
        self.training_fn, self.logger = training_fn, logger
        self._owned: list[BaseVectorEnv] = []
        self._eval_envs = self._resolve_eval_envs(tasks, eval_envs)
        self.controller: DynamicParameterScaling = algorithm.enable_dps(config)
        algorithm.add_update_hook(self._on_update)
        self.evaluations: list[dict[str, Any]] = []
        self._next_eval = eval_freq
        self._env_step = 0

    @property
    def specs(self) -> tuple:
        return self.algorithm.policy.agent.specs

    # ------------------------------------------------------------------ hooks
    def _on_update(self, algorithm: ScaleZeroAlgorithm, metrics: dict[str, float]) -> None:
        self.controller.step(algorithm.learner.updates)  # logs a switch

    def __call__(self, epoch: int, env_step: int) -> None:
        """``training_fn(epoch, env_step)``: the chained ``training_fn``, then an evaluation when one is due."""
        if self.training_fn is not None:
            self.training_fn(epoch, env_step)
        if env_step < self._env_step:  # a new trainer run counts env steps from 0 again
            self._next_eval = self.eval_freq
        self._env_step = env_step
        if self.eval_freq and env_step >= self._next_eval:
            self._next_eval = (env_step // self.eval_freq + 1) * self.eval_freq
            self.evaluate()

    def close(self) -> None:
        """Unregister the per-update hook and close the evaluation envs this hook built."""
        self.algorithm.remove_update_hook(self._on_update)
        for env in self._owned:
            env.close()
        self._owned = []

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> dict[int, float]:
        """Evaluate every unsolved task now (greedy search) and report the means. Returns them by task id."""
        policy = self.algorithm.policy
        returns: dict[int, float] = {}
        k = len(self.evaluations)
        with policy_within_training_step(policy, enabled=False):  # training_fn runs inside a training step
            for t, venv in self._eval_envs.items():
                if t in self.controller.solved:
                    continue
                collector = Collector(policy, venv, VectorReplayBuffer(EVAL_BUFFER_STEPS * venv.env_num,
                                                                       venv.env_num))
                venv.seed(self.seed + 10_000 * k + 100 * t)
                collector.reset()
                stats = collector.collect(n_episode=self.n_eval_episodes)
                returns[t] = float(stats.returns.mean())
        newly = self.report_eval(returns)
        self.evaluations.append({
            "env_step": self._env_step, "updates": int(self.algorithm.learner.updates),
            "stage": self.controller.stage, "returns": {self.specs[t].name: r for t, r in returns.items()},
            "solved": sorted(self.specs[t].name for t in newly)})
        if self.logger is not None:
            data: dict[str, Any] = {"stage": self.controller.stage, "solved": len(self.controller.solved)}
            data.update({f"eval/{self.specs[t].name}": r for t, r in returns.items()})
            self.logger.write("dps/env_step", self._env_step, data)
        return returns

    def report_eval(self, returns: Mapping[int, float]) -> set[int]:
        """Report mean evaluation returns by task id (e.g. from your own evaluation); tasks reaching their
        ``TaskSpec.target_return`` become solved and stop training. Returns the newly solved task ids."""
        newly = self.controller.report_eval(returns)
        for t in sorted(newly):
            spec = self.specs[t]
            log.info("DPS: %s solved (eval mean %.1f >= target %s) at trainer env step %d; it stops training",
                     spec.name, returns[t], spec.target_return, self._env_step)
            self.algorithm.stop_task(t)
        return newly

    def _resolve_eval_envs(self, tasks: Sequence[Task] | None,
                           eval_envs: Sequence[BaseVectorEnv] | Mapping[int | str, BaseVectorEnv] | None
                           ) -> dict[int, BaseVectorEnv]:
        specs = self.specs
        if (tasks is None) == (eval_envs is None):
            raise ValueError("pass exactly one of tasks= (Task objects) or eval_envs= (one vector env per task)")
        if tasks is not None:
            tasks = list(tasks)
            if [getattr(t, "spec", None) for t in tasks] != list(specs):
                raise ValueError(f"tasks must be the policy's tasks as Task objects, in order: "
                                 f"{[s.name for s in specs]}")
            multitask = self.algorithm.policy.codec.multitask
            out: dict[int, BaseVectorEnv] = {}
            for t, task in enumerate(tasks):
                make: Callable[[], Any]
                if multitask:
                    make = functools.partial(MultiTaskEnv, tasks, mode="eval", task_id=t)
                else:
                    make = functools.partial(task.factory, "eval")
                out[t] = DummyVectorEnv([make] * self.n_eval_episodes)
                self._owned.append(out[t])
            return out
        assert eval_envs is not None
        names = {spec.name: t for t, spec in enumerate(specs)}
        if isinstance(eval_envs, Mapping):
            out = {}
            for key, venv in eval_envs.items():
                if isinstance(key, str):
                    if key not in names:
                        raise ValueError(f"eval_envs: unknown task {key!r}; the policy's tasks are {sorted(names)}")
                    key = names[key]
                if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key < len(specs):
                    raise ValueError(f"eval_envs: task id {key!r} out of range [0, {len(specs)})")
                out[key] = venv
        else:
            if len(eval_envs) != len(specs):
                raise ValueError(f"eval_envs: {len(eval_envs)} envs for {len(specs)} tasks (give one per task)")
            out = dict(enumerate(eval_envs))
        missing = [specs[t].name for t in range(len(specs)) if t not in out]
        if missing:
            raise ValueError(f"eval_envs: no evaluation env for task(s) {missing}")
        for t, venv in out.items():
            if not isinstance(venv, BaseVectorEnv):
                raise ValueError(f"eval_envs for {specs[t].name}: need a tianshou vector env (e.g. DummyVectorEnv), "
                                 f"got {type(venv).__name__}")
        return out
