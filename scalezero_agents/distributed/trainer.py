"""``DistributedTrainer``: the native multi-task trainer on one rank of a ``torch.distributed`` group.

Every rank builds the same agent over **all** tasks (same parameter shapes; rank 0's initial weights are
broadcast), but creates environments, collects, stores replay, trains and evaluates only its own shard of
the tasks (:func:`~scalezero_agents.distributed.sharding.shard_tasks`). Per loop iteration:

1. collect one step in every environment of this rank's tasks;
2. sum the step counters (and the tasks' "has windows" flags) over ranks, so every rank sees the same global
   counters and takes the same number of updates (``replay_ratio`` accounting as in one process);
3. each update: one batch per local active task, the local loss is the sum of their losses; gradients are
   **summed** over ranks (:class:`~scalezero_agents.distributed.comm.GradientAllReduce`), then clipped and
   stepped identically everywhere, so the replicas stay bit-identical. The objective is therefore the sum of
   every task's loss, whatever the world size: a 2-rank run optimises what a 1-rank run does. (The reference
   averages over ranks, weighting each task by 1 / world size.) The MoE balance loss is the global batch's
   too: expert loads are averaged over ranks, and each rank adds its rows' share of the loss;
4. evaluation: each rank evaluates its tasks; results are gathered so every rank (and every callback) sees
   all tasks; only rank 0 writes TensorBoard scalars, ``history.json`` and checkpoints.

Checkpoints are ordinary :class:`~scalezero_agents.training.MultiTaskTrainer` checkpoints holding every task's
replay, environment episode and actor context (gathered to rank 0), plus each rank's random streams. Resuming
with the same world size (same sharding) continues exactly; with another world size (or in one process with
``MultiTaskTrainer.load``) the model, target, optimiser, counters, DPS state, replays, running episodes and
contexts are restored exactly and the random streams (replay sampling, new-episode seeds, search noise)
restart from seeds derived from the rank and the update count.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scalezero_adapters import Task

from scalezero_agents.config import AgentConfig
from scalezero_agents.config import preset as make_preset
from scalezero_agents.distributed.comm import Comm, GradientAllReduce, current_comm
from scalezero_agents.distributed.sharding import owner_of, shard_tasks
from scalezero_agents.dps import DPSCallback
from scalezero_agents.training.trainer import Callback, MultiTaskTrainer, TrainerConfig

RANK_SEED_STRIDE = 104_729
"""Rank r > 0 seeds its own streams (env seeds, replay sampling, search noise, torch) with
``seed + RANK_SEED_STRIDE * r``; rank 0 uses ``seed``, as a single process does."""


class DistributedTrainer(MultiTaskTrainer):
    """A :class:`MultiTaskTrainer` for one rank: this rank's tasks, a full model replica, summed gradients.

    Create the process group first (:func:`~scalezero_agents.distributed.init_distributed`, e.g. under
    ``torchrun``); every rank must pass the same tasks (same order), config, trainer settings and seed.

    Args:
        tasks: all tasks of the run.
        comm: this rank's :class:`~scalezero_agents.distributed.comm.Comm` (default: the one
            ``init_distributed`` made).
        costs: per-step sharding cost by task name (default: by modality; see ``sharding``).
        preset, variant, config, trainer, seed, log_dir, callbacks, progress_bar: as for
            :class:`MultiTaskTrainer` (the progress bar and all files: rank 0 only). Use
            :class:`~scalezero_agents.distributed.DistributedDPSCallback` for Dynamic Parameter Scaling.

    Example (run under ``torchrun --nproc_per_node=2``)::

        comm = init_distributed()
        trainer = DistributedTrainer(make_suite("classic"), comm=comm, preset="tiny", log_dir="runs/ddp")
        trainer.train(env_steps_per_task=20_000)
        trainer.save("runs/ddp/checkpoint.pt")   # every rank calls it; rank 0 writes
    """

    def __init__(
        self,
        tasks: Sequence[Task],
        *,
        comm: Comm | None = None,
        costs: Mapping[str, float] | None = None,
        preset: str = "tiny",
        variant: str | None = None,
        config: AgentConfig | None = None,
        trainer: TrainerConfig | None = None,
        seed: int = 0,
        log_dir: Any = None,
        callbacks: Sequence[Callback] = (),
        progress_bar: bool = True,
    ) -> None:
        from scalezero_agents.distributed.dps import DistributedDPSCallback

        for cb in callbacks:
            if isinstance(cb, DPSCallback) and not isinstance(cb, DistributedDPSCallback):
                raise ValueError("use scalezero_agents.distributed.DistributedDPSCallback with DistributedTrainer: "
                                 "its solved tasks and stage switches are decided on rank 0 and broadcast")
        if not tasks:
            raise ValueError("DistributedTrainer needs at least one task")
        self.comm = comm if comm is not None else current_comm()
        self.shards = shard_tasks([t.spec for t in tasks], self.comm.world_size, costs)
        self.owner = owner_of(self.shards)
        if config is None:
            config = make_preset(preset, variant or ("scalezero" if len(tasks) > 1 else "unizero"))
        config = self._placed(config)
        rank = self.comm.rank
        self.rank_seed = seed + RANK_SEED_STRIDE * rank
        super().__init__(tasks, config=config, trainer=trainer, seed=seed, log_dir=log_dir, callbacks=callbacks,
                         progress_bar=progress_bar and rank == 0)
        self.is_main = rank == 0
        self._local_mask = np.zeros(len(self.tasks), dtype=bool)
        self._local_mask[list(self.local_tasks)] = True
        self._ready = np.zeros(len(self.tasks), dtype=bool)
        self.eval_cpu_time = 0.0  # CPU seconds this process spent evaluating (benchmarks subtract it)
        if rank > 0:  # rank-specific streams; the model was initialised from `seed` on every rank
            self._reseed(self.rank_seed)
        self.grad_sync = GradientAllReduce(self.comm)
        self.agent.learner.grad_sync = self.grad_sync
        self.comm.sync_module_(self.agent.model, "initial weight broadcast")
        self.comm.sync_module_(self.agent.learner.target, "initial target-weight broadcast")

    # ------------------------------------------------------------------ set-up
    def _placed(self, config: AgentConfig) -> AgentConfig:
        """With NCCL, each rank's model goes on its own GPU (``cuda:LOCAL_RANK``)."""
        if self.comm.backend != "nccl":
            return config
        if config.device not in ("auto", "cuda") and not config.device.startswith("cuda"):
            raise ValueError(f"the NCCL backend needs a CUDA model, got device {config.device!r}; use backend "
                             "'gloo' for CPU training")
        return config.replace(device=f"cuda:{self.comm.local_rank}")

    def _local_tasks(self) -> list[int]:
        return list(self.shards[self.comm.rank])

    def _reseed(self, seed: int) -> None:
        """Fresh random streams for this rank: env seeds, replay sampling, torch, the collection searches."""
        self.rng = np.random.default_rng(seed + 7919)
        self.agent.rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        self.actor = self.agent.actor([s.task_id for s in self.slots], explore=True, seed=seed)

    # ------------------------------------------------------------------ hooks
    def _after_collect(self) -> None:
        """Sum step counters, episode counters and "has windows" flags over ranks (each task has one owner)."""
        mine = self._local_mask
        ready = np.array([mine[t] and self.agent.replays[t].num_ready() > 0 for t in range(len(self.tasks))])
        vec = np.concatenate([np.where(mine, self.env_steps, 0), np.where(mine, self.episodes, 0), ready])
        out = self.comm.all_reduce_cpu_(torch.from_numpy(vec.astype(np.int64)), "step-counter sum").numpy()
        T = len(self.tasks)
        self.env_steps[:] = out[:T]
        self.episodes[:] = out[T:2 * T]
        self._ready = out[2 * T:] > 0

    def _tasks_ready(self, task_ids: np.ndarray) -> bool:
        return bool(self._ready[task_ids].all())

    def _update(self, task_ids: list[int]) -> dict[str, float]:
        local = [t for t in task_ids if self._local_mask[t]]
        # every trained task draws one batch of batch_size windows, on its owner
        self.grad_sync.global_rows = self.config.learner.batch_size * len(task_ids)
        if local:
            metrics = self.agent.update(local)
        else:  # all of this rank's tasks are stopped: it still joins the gradient sum, with nothing to add
            metrics, _ = self.agent.learner.update([])
        return self._merge_metrics(metrics)

    def _merge_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """Every task's metrics (from its owner); ``loss`` and ``aux_loss`` summed over ranks (each rank reports
        its share, so the sums are the global batch's)."""
        parts = self.comm.all_gather_object(metrics, "metrics gather")
        merged: dict[str, float] = {}
        for t, spec in enumerate(self.specs):
            prefix = f"{spec.name}/"
            merged.update((k, v) for k, v in parts[self.owner[t]].items() if k.startswith(prefix))
        merged.update(loss=float(sum(p["loss"] for p in parts)), grad_norm=metrics["grad_norm"], lr=metrics["lr"],
                      aux_loss=float(sum(p["aux_loss"] for p in parts)))
        for k, v in metrics.items():  # anything else a future learner reports, from this rank
            merged.setdefault(k, v)
        return merged

    def _gather_eval(self, results: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        merged: dict[str, dict[str, float]] = {}
        for part in self.comm.all_gather_object(results, "evaluation-result gather"):
            merged.update(part)
        return {s.name: merged[s.name] for s in self.specs if s.name in merged}

    def evaluate(self, episodes: int | None = None, *, num_simulations: int | None = None
                 ) -> dict[str, dict[str, float]]:
        """Each rank evaluates its tasks; every rank returns (and its callbacks see) every task's results.
        Afterwards rank 0's set of active tasks is broadcast, so a task a callback stopped stops everywhere."""
        cpu = time.process_time()
        results = super().evaluate(episodes, num_simulations=num_simulations)
        self.active[:] = self.comm.broadcast_object(self.active.copy(), "active-task broadcast")
        self.eval_cpu_time += time.process_time() - cpu
        return results

    def train(self, env_steps_per_task: int) -> list[dict[str, Any]]:
        """As :meth:`MultiTaskTrainer.train`; the replicas are checked to be identical at the end."""
        history = super().train(env_steps_per_task)
        self.check_replicas()
        return history

    def check_replicas(self) -> None:
        """Raise unless every rank's online and target models are bit-identical."""
        self.comm.check_replicas(self.agent.model, "online-model replica check")
        self.comm.check_replicas(self.agent.learner.target, "target-model replica check")

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The full state of the run, gathered on rank 0 (``{}`` on the other ranks; every rank must call it).

        It is a single-process :class:`MultiTaskTrainer` state over all tasks (environment slots and actor
        rows in task-major order), plus ``"distributed"``: the world size, the shards and each rank's streams.
        """
        parts = self.comm.gather_object(self._rank_part(), "checkpoint gather")
        if parts is None:
            return {}
        state = super().state_dict()
        n = self.trainer_config.num_envs
        T = len(self.tasks)
        actor = state["actor"]
        rows = {k: torch.zeros((T * n, *actor[k].shape[1:]), dtype=actor[k].dtype)
                for k in ("latents", "actions", "steps")}
        envs: list[Any] = [None] * (T * n)
        state["recent_returns"] = [list(r) for r in state["recent_returns"]]
        for part in parts:
            for j, (t, e) in enumerate(part["slots"]):
                for k in rows:
                    rows[k][t * n + e] = part["actor"][k][j]
                envs[t * n + e] = part["envs"][j]
            for t, replay in part["replays"].items():
                state["agent"]["replays"][t] = replay
            for t, recent in part["recent_returns"].items():
                state["recent_returns"][t] = recent
        state["actor"] = {**rows, "trees": actor["trees"]}
        state["envs"] = envs
        state["train_time"] = max(p["train_time"] for p in parts)
        state["distributed"] = {"world_size": self.comm.world_size, "shards": [list(s) for s in self.shards],
                                "num_envs": n, "streams": [p["streams"] for p in parts]}
        return state

    def _rank_part(self) -> dict[str, Any]:
        """What this rank alone knows: its tasks' replay, episodes, actor rows and recent returns; its streams."""
        actor = self.actor.state_dict()
        return {
            "slots": [(s.task_id, s.env_index) for s in self.slots],
            "actor": {k: actor[k].cpu() for k in ("latents", "actions", "steps")},
            "envs": [{"seed": s.seed, "actions": list(s.actions), "return": s.episode_return,
                      "length": s.episode_length} for s in self.slots],
            "replays": {t: self.agent.replays[t].state_dict() for t in self.local_tasks},
            "recent_returns": {t: list(self.recent_returns[t]) for t in self.local_tasks},
            "train_time": self.train_time,
            "streams": {"rng": self.rng.bit_generator.state, "agent_rng": self.agent.rng.bit_generator.state,
                        "torch_rng": torch.get_rng_state(), "trees": actor["trees"]},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore this rank's part of a full state (from :meth:`state_dict`, or a single-process checkpoint).

        Same world size and shards: every stream continues exactly. Otherwise this rank's streams restart from
        seeds derived from its rank seed and the checkpoint's update count.
        """
        n = self.trainer_config.num_envs
        info = state.get("distributed")
        if info is None:  # a single-process checkpoint: one shard holding every task
            info = {"shards": [list(range(len(self.tasks)))], "num_envs": n,
                    "streams": [{"rng": state["rng"], "agent_rng": state["agent"]["rng"],
                                 "torch_rng": state["torch_rng"], "trees": state["actor"]["trees"]}]}
        if int(info["num_envs"]) != n:
            raise ValueError(f"checkpoint has {info['num_envs']} envs per task, this trainer {n}")
        rows = [t * n + e for t in self.local_tasks for e in range(n)]
        idx = torch.as_tensor(rows, dtype=torch.long)
        actor = state["actor"]
        exact = info["shards"] == [list(s) for s in self.shards]
        local = dict(state)
        local["envs"] = [state["envs"][g] for g in rows]
        if exact:
            streams = info["streams"][self.comm.rank]
        else:
            updates = int(state["agent"]["learner"]["updates"])
            seed = int(np.random.SeedSequence([self.rank_seed, updates]).generate_state(1)[0] % 2**31)
            self._reseed(seed)  # a new actor with fresh search streams, then this rank's slots' contexts
            streams = {"rng": self.rng.bit_generator.state, "agent_rng": self.agent.rng.bit_generator.state,
                       "torch_rng": torch.get_rng_state(), "trees": {}}
        local["actor"] = {"latents": actor["latents"][idx], "actions": actor["actions"][idx],
                          "steps": actor["steps"][idx], "trees": streams["trees"]}
        local["rng"], local["torch_rng"] = streams["rng"], streams["torch_rng"]
        local["agent"] = {**state["agent"], "rng": streams["agent_rng"]}
        super().load_state_dict(local)
        self.check_replicas()
