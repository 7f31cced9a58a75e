"""The native multi-task trainer: collect → train → evaluate, with a fixed replay ratio.

Every collection step acts in all environments of all active tasks with **one** planner call, steps the
environments, and stores the transitions. The learner then catches up to ``replay_ratio`` updates per
environment step per task, so the amount of learning per sample does not depend on machine speed.
Evaluation runs greedy searches on separate environments every ``eval_interval`` env steps per task.

Checkpoints hold everything needed to continue exactly as if never stopped: model, target model,
optimiser, replay, every random stream (torch, NumPy, the search trees'), counters, the actors'
contexts, and, for each environment, the seed of its current episode and the actions taken since, which
are replayed on load to restore the environment's state, and the state of callbacks that declare a
``state_key`` (Dynamic Parameter Scaling: its stage and adapters, restored before the weights). They are
written atomically.

A few protected hooks (``_local_tasks``, ``_after_collect``, ``_tasks_ready``, ``_update``,
``_gather_eval``, ``is_main``) let :class:`scalezero_agents.distributed.DistributedTrainer` run one shard of
the tasks per process; in one process they cover every task and change nothing.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scalezero_adapters import EnvFactory, Task

from scalezero_agents.agent import Agent
from scalezero_agents.config import AgentConfig
from scalezero_agents.config import preset as make_preset
from scalezero_agents.training.episodes import play_episodes
from scalezero_agents.training.progress import StepBar

CHECKPOINT_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class TrainerConfig:
    """Settings of the collect → train → evaluate loop."""

    num_envs: int = 8
    """Training environments per task."""
    replay_ratio: float = 0.25
    """Learner updates per environment step per task (each update draws one batch from every task)."""
    learning_starts: int = 1_000
    """Environment steps per task collected before the first update."""
    eval_interval: int = 5_000
    """Evaluate every this many environment steps per task (0: only at the end)."""
    eval_episodes: int = 10
    """Evaluation episodes per task (run in parallel)."""
    checkpoint_interval: int = 0
    """Write ``checkpoint.pt`` into the log dir every this many env steps per task (0: never)."""
    log_interval: int = 100
    """Learner updates between TensorBoard scalars."""
    reanalyze_interval: int = 0
    """Learner updates between reanalysis passes (0: off, as in the released ScaleZero configs)."""
    reanalyze_steps: int = 160
    """Stored steps per task whose policy targets each pass refreshes with the target model."""

    def __post_init__(self) -> None:
        for name in ("num_envs", "eval_episodes", "log_interval"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("learning_starts", "eval_interval", "checkpoint_interval", "reanalyze_interval",
                     "reanalyze_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if not isinstance(self.replay_ratio, int | float) or not 0 < self.replay_ratio <= 64:
            raise ValueError(f"replay_ratio must be in (0, 64], got {self.replay_ratio!r}")


class Callback:
    """Hooks into :class:`MultiTaskTrainer` (override what you need).

    A callback with state (e.g. Dynamic Parameter Scaling) sets ``state_key`` to a unique name: its
    :meth:`state_dict` then goes into every checkpoint, and :meth:`MultiTaskTrainer.load` hands it back to
    :meth:`load_state_dict` of the callback with the same key **before** the agent's weights are loaded.
    """

    state_key: str | None = None
    """Name of this callback's entry in checkpoints (``None``: the callback is stateless)."""

    def state_dict(self, trainer: MultiTaskTrainer) -> dict[str, Any]:
        """Plain data to checkpoint (only used when ``state_key`` is set)."""
        return {}

    def load_state_dict(self, trainer: MultiTaskTrainer, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s data; may rebuild modules (the agent's weights are loaded after)."""

    def on_train_start(self, trainer: MultiTaskTrainer) -> None:
        """Called once when ``train`` starts."""

    def on_update(self, trainer: MultiTaskTrainer, metrics: dict[str, float]) -> None:
        """Called after every learner update."""

    def on_eval(self, trainer: MultiTaskTrainer, results: dict[str, dict[str, float]]) -> None:
        """Called after every evaluation with per-task results."""

    def on_train_end(self, trainer: MultiTaskTrainer) -> None:
        """Called when ``train`` returns."""


class _EnvSlot:
    """One training environment: the env, its current observation, and how to rebuild its state."""

    def __init__(self, env: Any, task_id: int, env_index: int) -> None:
        self.env, self.task_id, self.env_index = env, task_id, env_index
        self.obs: Any = None
        self.seed = 0
        self.actions: list[Any] = []
        self.episode_return = 0.0
        self.episode_length = 0

    def reset(self, seed: int) -> None:
        self.seed, self.actions = seed, []
        self.obs, _ = self.env.reset(seed=seed)
        self.episode_return, self.episode_length = 0.0, 0


class MultiTaskTrainer:
    """Train one agent on several tasks at once.

    Args:
        tasks: tasks from :func:`scalezero_adapters.make_task` / :func:`make_suite`.
        preset: configuration preset (``tiny``, ``small``, ``paper``) when ``config`` is not given.
        variant: ``unizero`` (dense) or ``scalezero`` (MoE); default: ``scalezero`` for several tasks.
        config: a full :class:`AgentConfig` (overrides ``preset``/``variant``).
        trainer: loop settings.
        seed: seeds everything (model init, replay sampling, env seeds, search streams).
        log_dir: where TensorBoard scalars, ``history.json`` and checkpoints go (None: no files).
        callbacks: :class:`Callback` instances.
        progress_bar: show a rich progress bar over environment steps (rate, elapsed, ETA, recent returns).

    Example:
        >>> from scalezero_adapters import make_task
        >>> trainer = MultiTaskTrainer([make_task("gym/CartPole-v1")], preset="tiny")
        >>> trainer.train(env_steps_per_task=2_000)  # doctest: +SKIP
    """

    def __init__(
        self,
        tasks: Sequence[Task],
        *,
        preset: str = "tiny",
        variant: str | None = None,
        config: AgentConfig | None = None,
        trainer: TrainerConfig | None = None,
        seed: int = 0,
        log_dir: str | os.PathLike[str] | None = None,
        callbacks: Sequence[Callback] = (),
        progress_bar: bool = True,
    ) -> None:
        if not tasks:
            raise ValueError("MultiTaskTrainer needs at least one task")
        self.tasks = list(tasks)
        specs = [t.spec for t in self.tasks]
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate tasks: {names}")
        if config is None:
            config = make_preset(preset, variant or ("scalezero" if len(tasks) > 1 else "unizero"))
        self.config, self.trainer_config = config, trainer or TrainerConfig()
        self.seed, self.callbacks, self.progress_bar = seed, list(callbacks), progress_bar
        self.log_dir = Path(log_dir) if log_dir is not None else None
        n_env = self.trainer_config.num_envs
        self.agent = Agent(specs, config, num_envs=n_env, seed=seed)
        self.rng = np.random.default_rng(seed + 7919)
        self.active = np.ones(len(specs), dtype=bool)
        # the tasks this process collects, stores, trains and evaluates (all of them unless distributed), and
        # whether it writes logs, history.json and checkpoints (distributed: rank 0 only)
        self.local_tasks = tuple(self._local_tasks())
        self.is_main = True
        self.slots = [_EnvSlot(self.tasks[i].factory("train"), i, e) for i in self.local_tasks for e in range(n_env)]
        self.actor = self.agent.actor([s.task_id for s in self.slots], explore=True, seed=seed)
        self.env_steps = np.zeros(len(specs), dtype=np.int64)
        self.episodes = np.zeros(len(specs), dtype=np.int64)
        self.num_evals = 0
        self.history: list[dict[str, Any]] = []
        self.recent_returns: list[list[float]] = [[] for _ in specs]
        self.train_time = 0.0
        self._writer: Any = None
        self._eval_envs: dict[int, list[Any]] = {}
        self._started = False
        self._evals_due_marker = 0
        self._ckpt_marker = 0

    # ------------------------------------------------------------------ properties
    @property
    def specs(self) -> tuple:
        return self.agent.specs

    @property
    def updates(self) -> int:
        return self.agent.learner.updates

    def stop_task(self, task_id: int) -> None:
        """Stop collecting and training on a task (e.g. solved, for Dynamic Parameter Scaling)."""
        self.active[task_id] = False

    # ------------------------------------------------------------------ hooks (distributed training)
    def _local_tasks(self) -> list[int]:
        """Task ids this process owns (called once by ``__init__``; every task in one process)."""
        return list(range(len(self.tasks)))

    def _after_collect(self) -> None:
        """Called after every collection round (distributed: makes the step counters global)."""

    def _tasks_ready(self, task_ids: np.ndarray) -> bool:
        """Whether every task in ``task_ids`` has windows to sample."""
        return all(self.agent.replays[i].num_ready() > 0 for i in task_ids)

    def _update(self, task_ids: list[int]) -> dict[str, float]:
        """One learner update on one batch from each task in ``task_ids``."""
        return self.agent.update(task_ids)

    def _gather_eval(self, results: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        """This process's per-task evaluation results -> every task's (distributed: gathered from all ranks)."""
        return results

    # ------------------------------------------------------------------ main loop
    def train(self, env_steps_per_task: int) -> list[dict[str, Any]]:
        """Collect and learn until every active task has ``env_steps_per_task`` environment steps.

        Returns the evaluation history (one dict per evaluation). Calling ``train`` again with a larger
        budget continues; a trainer restored with :meth:`load` continues exactly.
        """
        if env_steps_per_task < 1:
            raise ValueError(f"env_steps_per_task must be >= 1, got {env_steps_per_task}")
        cfg = self.trainer_config
        self.budget = int(env_steps_per_task)
        if not self._started:
            self._start()
        for cb in self.callbacks:
            cb.on_train_start(self)
        with StepBar(self.budget * len(self.specs), int(self.env_steps.sum()), enabled=self.progress_bar) as bar:
            while self._remaining():
                t0 = time.perf_counter()
                before = int(self.env_steps.sum())
                self._collect()
                self._after_collect()
                self._learn()
                self.train_time += time.perf_counter() - t0
                bar.update(int(self.env_steps.sum()) - before, self._status())
                steps = int(self.env_steps[self.active].min()) if self.active.any() else self.budget
                if cfg.eval_interval and steps // cfg.eval_interval > self._evals_due_marker:
                    self._evals_due_marker = steps // cfg.eval_interval
                    self.evaluate()
                if cfg.checkpoint_interval and self.log_dir and steps // cfg.checkpoint_interval > self._ckpt_marker:
                    self._ckpt_marker = steps // cfg.checkpoint_interval
                    self.save(self.log_dir / "checkpoint.pt")
            if not self.history or self.history[-1]["env_steps"] != int(self.env_steps.max()):
                self.evaluate()
        for cb in self.callbacks:
            cb.on_train_end(self)
        return self.history

    def _start(self) -> None:
        for slot in self.slots:
            slot.reset(self._env_seed())
        self.actor.reset()
        self._started = True

    def _env_seed(self) -> int:
        return int(self.rng.integers(0, 2**31 - 1))

    def _remaining(self) -> bool:
        return bool(self.active.any() and (self.env_steps[self.active] < self.budget).any())

    def _collect(self) -> None:
        rows = [i for i, s in enumerate(self.slots)
                if self.active[s.task_id] and self.env_steps[s.task_id] < self.budget]
        if not rows:  # distributed: this rank's tasks are done or stopped while others still collect
            return
        progress = float(self.env_steps[self.active].min()) / self.budget if self.active.any() else 1.0
        out = self.actor.act([self.slots[i].obs for i in rows], rows,
                             temperature=self.config.collect_temperature(progress))
        done_rows = []
        for j, i in enumerate(rows):
            slot = self.slots[i]
            action = out.actions[j]
            next_obs, reward, terminated, truncated, _ = slot.env.step(action)
            slot.actions.append(action)
            slot.episode_return += float(reward)
            slot.episode_length += 1
            self.agent.observe(slot.task_id, slot.env_index, out, j, float(reward))
            self.env_steps[slot.task_id] += 1
            if terminated or truncated:
                self.agent.end_episode(slot.task_id, slot.env_index, next_obs, terminated=bool(terminated))
                self.episodes[slot.task_id] += 1
                recent = self.recent_returns[slot.task_id]
                recent.append(slot.episode_return)
                del recent[:-20]
                slot.reset(self._env_seed())
                done_rows.append(i)
            else:
                slot.obs = next_obs
        if done_rows:
            self.actor.reset(done_rows)

    def _learn(self) -> None:
        cfg = self.trainer_config
        active = np.nonzero(self.active)[0]
        if int(self.env_steps[active].min()) < cfg.learning_starts:
            return
        if not self._tasks_ready(active):
            return
        # updates owed: replay_ratio per env step per collecting task, counted from learning_starts. Collecting
        # tasks step together (same num_envs), a stopped one freezes below them: the max is a collecting task's.
        steps = float(self.env_steps.max()) - cfg.learning_starts
        owed = math.floor(steps * cfg.replay_ratio) - self.updates
        for _ in range(max(owed, 0)):
            metrics = self._update([int(i) for i in active])
            for cb in self.callbacks:
                cb.on_update(self, metrics)
            if cfg.reanalyze_interval and self.updates % cfg.reanalyze_interval == 0:
                for t in active:
                    if int(t) in self.local_tasks:
                        self.agent.reanalyze(int(t), cfg.reanalyze_steps)
            if self.log_dir is not None and self.updates % cfg.log_interval == 0:
                self._log({f"train/{k}": v for k, v in metrics.items()})

    def _status(self) -> str:
        out = [f"upd={self.updates}"]
        for spec, recent in zip(self.specs, self.recent_returns, strict=True):
            if recent:
                out.append(f"{spec.task[:12]}={np.mean(recent):.1f}")
        return " ".join(out)

    # ------------------------------------------------------------------ evaluation
    def evaluate(
        self, episodes: int | None = None, *, num_simulations: int | None = None
    ) -> dict[str, dict[str, float]]:
        """Greedy evaluation of every task (``episodes`` in parallel per task); appends to ``history``."""
        n = episodes or self.trainer_config.eval_episodes
        t0 = time.perf_counter()
        local = self.local_tasks
        rows_task = [t for t in local for _ in range(n)]
        for t in local:
            envs = self._eval_envs.setdefault(t, [])
            while len(envs) < n:
                envs.append(self.tasks[t].factory("eval"))
        envs = [self._eval_envs[t][k] for t in local for k in range(n)]
        actor = self.agent.actor(rows_task, explore=False, seed=self.seed + 1_000_003 * (self.num_evals + 1),
                                 num_simulations=num_simulations)
        base = (self.seed * 1_000 + self.num_evals) * 10_000
        # episode k of task t starts from seed base + t * n + k, whichever process evaluates it
        obs = [self._eval_envs[t][k].reset(seed=base + t * n + k)[0] for t in local for k in range(n)]
        returns, lengths = play_episodes(envs, obs, lambda o, rows: actor.act(o, rows).actions)
        self.num_evals += 1
        results: dict[str, dict[str, float]] = {}
        record: dict[str, Any] = {"env_steps": int(self.env_steps.max()), "updates": self.updates,
                                  "train_time": round(self.train_time, 2), "eval_time": 0.0, "tasks": {}}
        for j, t in enumerate(local):
            spec = self.specs[t]
            r = returns[j * n:(j + 1) * n]
            res = {"mean": float(r.mean()), "std": float(r.std()), "min": float(r.min()), "max": float(r.max()),
                   "length": float(lengths[j * n:(j + 1) * n].mean()), "env_steps": int(self.env_steps[t]),
                   "solved": bool(spec.is_solved(float(r.mean())))}
            if spec.has_score_normalisation:
                res["normalized"] = spec.normalize(float(r.mean()))
            results[spec.name] = res
        results = self._gather_eval(results)
        for t, spec in enumerate(self.specs):
            if spec.name in results:
                record["tasks"][spec.name] = results[spec.name]
                self._log({f"eval/{spec.name}/return": results[spec.name]["mean"]}, step=int(self.env_steps[t]))
        record["eval_time"] = round(time.perf_counter() - t0, 2)
        self.history.append(record)
        if self.log_dir is not None and self.is_main:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            (self.log_dir / "history.json").write_text(json.dumps(self.history, indent=1))
        for cb in self.callbacks:
            cb.on_eval(self, results)
        return results

    # ------------------------------------------------------------------ logging
    def _log(self, scalars: dict[str, float], step: int | None = None) -> None:
        if self.log_dir is None or not self.is_main:
            return
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter
            self._writer = SummaryWriter(str(self.log_dir))
        for k, v in scalars.items():
            self._writer.add_scalar(k, v, self.updates if step is None else step)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Full training state (see the module docstring)."""
        return {
            "version": CHECKPOINT_VERSION,
            "agent": self.agent.state_dict(),
            "actor": self.actor.state_dict(),
            "rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "active": self.active.copy(),
            "env_steps": self.env_steps.copy(),
            "episodes": self.episodes.copy(),
            "num_evals": self.num_evals,
            "history": self.history,
            "recent_returns": self.recent_returns,
            "train_time": self.train_time,
            "markers": (self._evals_due_marker, self._ckpt_marker),
            "started": self._started,
            "envs": [{"seed": s.seed, "actions": list(s.actions), "return": s.episode_return,
                      "length": s.episode_length} for s in self.slots],
            "callbacks": {key: cb.state_dict(self) for key, cb in self._stateful_callbacks().items()},
        }

    def _stateful_callbacks(self) -> dict[str, Callback]:
        out: dict[str, Callback] = {}
        for cb in self.callbacks:
            if cb.state_key is not None:
                if cb.state_key in out:
                    raise ValueError(f"two callbacks share the state_key {cb.state_key!r}")
                out[cb.state_key] = cb
        return out

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write a full checkpoint atomically (a temporary file renamed into place).

        Distributed: every rank must call it (the state is gathered); only the main process writes.
        """
        path = Path(path)
        full_state = self.state_dict()
        if not self.is_main:
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        # registry-built factories (EnvFactory) pickle with their options (e.g. DMC action repeat), so load()
        # can rebuild the very same tasks; custom callables are stored as None and must be passed to load().
        factories = [t.factory if isinstance(t.factory, EnvFactory) else None for t in self.tasks]
        state = {"state": full_state, "config": self.config, "trainer": asdict(self.trainer_config),
                 "seed": self.seed, "tasks": [t.spec for t in self.tasks], "factories": factories}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        os.close(fd)
        try:
            torch.save(state, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], tasks: Sequence[Task] | None = None, **kwargs: Any) -> MultiTaskTrainer:
        """Restore a trainer from :meth:`save`; ``tasks`` default to the saved tasks (same names and options).

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: not a trainer checkpoint, another checkpoint version, tasks that differ from the saved
                ones, or ``tasks`` omitted for a checkpoint of tasks with custom env factories.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint at {path}")
        blob = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(blob, dict) or not {"state", "config", "tasks"} <= set(blob):
            raise ValueError(f"{path} is not a MultiTaskTrainer checkpoint")
        if blob["state"].get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"{path}: unsupported checkpoint version {blob['state'].get('version')}")
        if tasks is None:
            factories = blob.get("factories") or [None] * len(blob["tasks"])
            custom = [spec.name for spec, f in zip(blob["tasks"], factories, strict=True) if f is None]
            if custom:
                raise ValueError(f"{path}: tasks {custom} were built with custom env factories; pass tasks=")
            tasks = [Task(f, spec) for f, spec in zip(factories, blob["tasks"], strict=True)]
        if len(tasks) != len(blob["tasks"]):
            raise ValueError(f"{path} was trained on {[s.name for s in blob['tasks']]}, got {len(tasks)} task(s)")
        for task, spec in zip(tasks, blob["tasks"], strict=True):
            if task.spec != spec:
                raise ValueError(f"task {spec.name}: its spec differs from the checkpoint's; pass the same tasks")
        trainer = cls(tasks, config=blob["config"], trainer=TrainerConfig(**blob["trainer"]), seed=blob["seed"],
                      **kwargs)
        trainer.load_state_dict(blob["state"])
        return trainer

    def load_state_dict(self, state: dict[str, Any]) -> None:
        stateful, saved = self._stateful_callbacks(), state.get("callbacks", {})
        missing = sorted(set(saved) - set(stateful))
        if missing:
            raise ValueError(f"the checkpoint holds the state of callback(s) {missing}; pass the same callbacks "
                             "(e.g. callbacks=[DPSCallback(...)] for 'dps') to load()")
        for key, cb_state in saved.items():  # first: a callback may rebuild modules the weights need
            stateful[key].load_state_dict(self, cb_state)
        self.agent.load_state_dict(state["agent"])
        self.actor.load_state_dict(state["actor"])
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        self.active[:] = state["active"]
        self.env_steps[:] = state["env_steps"]
        self.episodes[:] = state["episodes"]
        self.num_evals = int(state["num_evals"])
        self.history = list(state["history"])
        self.recent_returns = [list(r) for r in state["recent_returns"]]
        self.train_time = float(state["train_time"])
        self._evals_due_marker, self._ckpt_marker = state["markers"]
        self._started = bool(state["started"])
        if self._started:
            for slot, env_state in zip(self.slots, state["envs"], strict=True):
                slot.reset(int(env_state["seed"]))
                for action in env_state["actions"]:  # replay the running episode to restore the env
                    slot.obs, _, _, _, _ = slot.env.step(action)
                slot.actions = list(env_state["actions"])
                slot.episode_return = float(env_state["return"])
                slot.episode_length = int(env_state["length"])
