"""The framework-free agent: world model + planner + learner + replay behind ``act`` / ``observe`` / ``update``.

``Agent`` owns the model, its learner (optimiser, EMA target) and one replay store per task. Acting
goes through an ``Actor``: a set of environment slots (each bound to a task) with their real recent
contexts and their own planner (trees and inference cache), so collection and evaluation actors never
share state. Everything above this layer (the native trainer, SB3 and Tianshou glue) talks to these
two classes only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from scalezero_adapters import TaskSpec

from scalezero_agents.config import AgentConfig
from scalezero_agents.learning.learner import Learner
from scalezero_agents.learning.replay import TaskReplay
from scalezero_agents.model.world_model import WorldModel
from scalezero_agents.planner import Planner
from scalezero_agents.search import SearchConfig


def resolve_device(name: str) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; other names as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class ActOutput(NamedTuple):
    """What an actor did for each of its active rows."""

    actions: list[Any]
    """Native actions for the envs (int for discrete tasks, float32 arrays for continuous ones)."""
    unified: np.ndarray
    """[n, P] float32 unified actions (what the replay stores)."""
    stored_obs: list[np.ndarray]
    """Observations in replay form (text tokenised)."""
    legal: list[np.ndarray | None]
    policy: list[np.ndarray]
    sampled_actions: list[np.ndarray | None]
    root_value: np.ndarray
    network_value: np.ndarray


class Agent:
    """One world model for a list of tasks, with its learner and per-task replay.

    Args:
        specs: the tasks (their order defines the task ids).
        config: agent configuration (see :func:`scalezero_agents.config.preset`).
        num_envs: environments writing to each task's replay (an int for all tasks, or one per task).
        seed: seeds torch (model initialisation) and the replay sampler.
    """

    def __init__(self, specs: Sequence[TaskSpec], config: AgentConfig, *, num_envs: int | Sequence[int] = 1,
                 seed: int = 0) -> None:
        if not specs:
            raise ValueError("an agent needs at least one task")
        self.specs, self.config, self.seed = tuple(specs), config, seed
        self.device = resolve_device(config.device)
        torch.manual_seed(seed)
        self.model = WorldModel(self.specs, config.model).to(self.device)
        self.learner = Learner(self.model, config.learner)
        envs = [num_envs] * len(specs) if isinstance(num_envs, int) else list(num_envs)
        if len(envs) != len(specs):
            raise ValueError(f"num_envs has {len(envs)} entries for {len(specs)} tasks")
        self.replays = [self._replay(i, spec, envs[i]) for i, spec in enumerate(self.specs)]
        self.rng = np.random.default_rng(seed)

    def _replay(self, task_id: int, spec: TaskSpec, num_envs: int) -> TaskReplay:
        cfg, model = self.config, self.model
        if spec.modality == "text":
            obs_shape, obs_dtype = (cfg.model.text_max_tokens,), np.int64
        else:
            obs_shape, obs_dtype = spec.obs_shape, np.dtype(spec.obs_dtype)
        continuous = not spec.is_discrete
        K = cfg.search.num_samples
        return TaskReplay(
            task_id=task_id, num_envs=num_envs, config=cfg.replay, window=cfg.model.train_steps,
            discount=spec.discount, obs_shape=obs_shape, obs_dtype=obs_dtype, action_width=model.action_width,
            policy_width=K if continuous else spec.num_actions,
            sample_shape=(K, spec.action_dim) if continuous else None,
            legal_width=spec.num_actions if spec.has_action_mask else None)

    # ------------------------------------------------------------------ acting
    def actor(self, task_ids: Sequence[int], *, explore: bool, seed: int = 0,
              num_simulations: int | None = None) -> Actor:
        """A set of env slots bound to ``task_ids``, acting with exploration or greedily."""
        sims = num_simulations or (self.config.search.num_simulations if explore else self.config.eval_simulations)
        search = dataclasses.replace(self.config.search, num_simulations=sims)
        return Actor(self, task_ids, explore=explore, search=search, seed=seed)

    def prepare_obs(self, task_id: int, obs: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """An env observation in replay form, plus its legal-action mask (tasks with masks)."""
        spec = self.specs[task_id]
        legal = None
        if isinstance(obs, dict):
            if "action_mask" not in obs:
                raise ValueError(f"{spec.name}: dict observations must carry an 'action_mask'")
            legal = np.asarray(obs["action_mask"], dtype=bool)
            rest = [k for k in obs if k != "action_mask"]
            if len(rest) != 1:
                raise ValueError(f"{spec.name}: expected one observation key besides 'action_mask', got {rest}")
            obs = obs[rest[0]]
        if spec.modality == "text":
            if not isinstance(obs, str):
                raise ValueError(f"{spec.name}: text observations must be str, got {type(obs).__name__}")
            return self.model.tokenize_text([obs])[0], legal
        arr = np.asarray(obs, dtype=spec.obs_dtype)
        if arr.shape != spec.obs_shape:
            raise ValueError(f"{spec.name}: observation shape {arr.shape} != spec {spec.obs_shape}")
        if spec.modality == "vector" and not np.all(np.isfinite(arr)):
            raise ValueError(f"{spec.name}: observation contains NaN or inf")
        return arr, legal

    # ------------------------------------------------------------------ learning
    def observe(self, task_id: int, env: int, out: ActOutput, row: int, reward: float) -> None:
        """Store one step (observation, action, reward and search statistics) of env ``env``."""
        self.replays[task_id].add_step(
            env, out.stored_obs[row], out.unified[row], reward, out.policy[row], float(out.root_value[row]),
            sampled_actions=out.sampled_actions[row], legal=out.legal[row])

    def end_episode(self, task_id: int, env: int, final_obs: Any, *, terminated: bool) -> None:
        """Close env ``env``'s episode with its last observation."""
        stored, _ = self.prepare_obs(task_id, final_obs)
        self.replays[task_id].end_episode(env, stored, terminated=terminated)

    def ready(self, min_windows: int = 1) -> bool:
        """Whether every task has windows to sample."""
        return all(r.num_ready() >= min_windows for r in self.replays)

    def update(self, tasks: Sequence[int] | None = None) -> dict[str, float]:
        """One learner step on one batch from each task (default: every task with ready windows)."""
        ids = [i for i in (range(len(self.specs)) if tasks is None else tasks) if self.replays[i].num_ready() > 0]
        if not ids:
            raise RuntimeError("no task has ready windows; collect more steps before update()")
        batches = [self.replays[i].sample(self.config.learner.batch_size, self.rng) for i in ids]
        metrics, priorities = self.learner.update(batches)
        for wb, pr in zip(batches, priorities, strict=True):
            self.replays[wb.task_id].update_priorities(wb.env_index, wb.step_index, pr)
        return metrics

    @torch.no_grad()
    def reanalyze(self, task_id: int, num_steps: int, *, oldest_fraction: float = 0.75) -> int:
        """Refresh the search policy targets of ``num_steps`` stored steps with the EMA target model.

        Steps are drawn from the oldest ``oldest_fraction`` of each ring, preferring ones reanalysed less
        often (weight ``exp(-times)``); each is re-searched (no noise) from its real stored context of up
        to ``C`` observations and the actions between them. Returns the number of steps refreshed.
        """
        replay = self.replays[task_id]
        envs, steps = replay.oldest_steps(oldest_fraction)
        if envs.size == 0:
            return 0
        w = np.exp(-replay.reanalysed[envs, steps % replay.cap].astype(np.float64))
        pick = self.rng.choice(envs.size, size=min(num_steps, envs.size), replace=False, p=w / w.sum())
        envs, steps = envs[pick], steps[pick]
        C, dev, target = self.config.root_context, self.device, self.learner.target
        ctx_obs, ctx_act, ctx_steps = replay.contexts(envs, steps, C)
        n = len(envs)
        flat = torch.from_numpy(ctx_obs.reshape(n * C, *ctx_obs.shape[2:])).to(dev)
        latents = target.encode(task_id, flat).reshape(n, C, -1)
        legal = None
        if replay.legal is not None:
            legal = list(replay.legal[envs, steps % replay.cap])
        planner = Planner(target, self.config.search, seed=int(self.rng.integers(2**31)),
                          continuous=self.config.continuous_search)
        plan = planner.plan(np.full(n, task_id), latents, torch.from_numpy(ctx_act).to(dev),
                            torch.from_numpy(ctx_steps).to(dev), legal=legal, explore=False)
        j = steps % replay.cap
        replay.policy[envs, j] = np.stack(plan.policy)
        if replay.sampled is not None:
            replay.sampled[envs, j] = np.stack(plan.sampled_actions)  # type: ignore[arg-type]
        replay.reanalysed[envs, j] += 1
        return n

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "learner": self.learner.state_dict(),
                "replays": [r.state_dict() for r in self.replays], "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.learner.load_state_dict(state["learner"])
        if len(state["replays"]) != len(self.replays):
            raise ValueError("checkpoint has a different number of tasks")
        for replay, rs in zip(self.replays, state["replays"], strict=True):
            replay.load_state_dict(rs)
        self.rng.bit_generator.state = state["rng"]


class Actor:
    """Env slots bound to tasks, with their real contexts and a private planner.

    Each slot keeps the last ``C = config.root_context`` latents it saw and the actions taken
    between them; roots are searched from that real context. Call :meth:`reset` for a slot whose
    episode ended.
    """

    def __init__(self, agent: Agent, task_ids: Sequence[int], *, explore: bool, search: SearchConfig,
                 seed: int) -> None:
        self.agent, self.explore = agent, explore
        self.task_ids = np.asarray(task_ids, dtype=np.int64)
        if self.task_ids.ndim != 1 or self.task_ids.size == 0:
            raise ValueError("task_ids must be a non-empty sequence")
        if self.task_ids.min() < 0 or self.task_ids.max() >= len(agent.specs):
            raise ValueError(f"task ids must be in [0, {len(agent.specs)}), got {sorted(set(task_ids))}")
        self.planner = Planner(agent.model, search, seed=seed, continuous=agent.config.continuous_search)
        model = agent.model
        R, C = len(self.task_ids), agent.config.root_context
        D, P = model.config.embed_dim, model.action_width
        dev = agent.device
        self.latents = torch.zeros(R, C, D, device=dev)
        self.actions = torch.zeros(R, C, model.action_width, device=dev)
        self.steps = torch.zeros(R, dtype=torch.long, device=dev)
        self.C, self.P = C, P

    def reset(self, rows: Sequence[int] | None = None) -> None:
        """Forget the context of ``rows`` (default: all), e.g. at an episode start."""
        if rows is None:
            self.steps.zero_()
        else:
            self.steps[torch.as_tensor(list(rows), dtype=torch.long)] = 0

    @torch.no_grad()
    def act(self, observations: Sequence[Any], rows: Sequence[int] | None = None, *,
            temperature: float = 0.0) -> ActOutput:
        """Search from the current observation of each slot in ``rows`` (default: all) and pick actions."""
        agent, model = self.agent, self.agent.model
        rows_arr = np.arange(len(self.task_ids)) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(observations) != len(rows_arr):
            raise ValueError(f"got {len(observations)} observations for {len(rows_arr)} rows")
        task_ids = self.task_ids[rows_arr]
        stored, legal = [], []
        for t, obs in zip(task_ids, observations, strict=True):
            s, m = agent.prepare_obs(int(t), obs)
            stored.append(s)
            legal.append(m)
        dev = agent.device
        new = torch.empty(len(rows_arr), model.config.embed_dim, device=dev)
        for t in np.unique(task_ids):
            sel = np.nonzero(task_ids == t)[0]
            batch = torch.from_numpy(np.stack([stored[i] for i in sel])).to(dev)
            new[torch.as_tensor(sel, device=dev)] = model.encode(int(t), batch)
        idx = torch.as_tensor(rows_arr, device=dev)
        self._push(idx, new)
        plan = self.planner.plan(task_ids, self.latents[idx], self.actions[idx], self.steps[idx], legal=legal,
                                 explore=self.explore, temperature=temperature)
        last = (self.steps[idx] - 1).clamp_min(0)
        self.actions[idx, last] = torch.from_numpy(plan.actions).to(dev)
        specs = agent.specs
        native: list[Any] = []
        for r, t in enumerate(task_ids):
            spec = specs[int(t)]
            native.append(int(plan.actions[r, 0]) if spec.is_discrete else plan.actions[r, : spec.action_dim].copy())
        return ActOutput(native, plan.actions, stored, legal, plan.policy, plan.sampled_actions, plan.root_value,
                         plan.network_value)

    def _push(self, idx: torch.Tensor, latents: torch.Tensor) -> None:
        """Append the new latents to the rows' contexts, dropping the oldest step when full."""
        full = self.steps[idx] >= self.C
        if bool(full.any()):
            f = idx[full]
            self.latents[f] = torch.roll(self.latents[f], -1, dims=1)
            self.actions[f] = torch.roll(self.actions[f], -1, dims=1)
            self.steps[f] -= 1
        pos = self.steps[idx]
        self.latents[idx, pos] = latents
        self.actions[idx, pos] = 0.0
        self.steps[idx] += 1

    def state_dict(self) -> dict[str, Any]:
        return {"latents": self.latents.clone(), "actions": self.actions.clone(), "steps": self.steps.clone(),
                "trees": self.planner.rng_states()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.latents.copy_(state["latents"])
        self.actions.copy_(state["actions"])
        self.steps.copy_(state["steps"])
        self.planner.load_rng_states(state["trees"])
