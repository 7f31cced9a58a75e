"""One rank of a distributed test (run by the tests as ``python -m tests.distributed.worker MODE ...``).

Modes:
    grads DIR               one update per rank on the batches in DIR/batches.pt, then a second one where rank 1
                            has no batch; writes DIR/rank{r}.pt (gradients and parameters after each).
    train DIR S1 S2         short classic suite with DPS, rank 0's tasks solved at the first evaluation: train to
                            S1 steps per task, save DIR/a.pt, train to S2, save DIR/b.pt; then a new trainer loads
                            DIR/a.pt, trains to S2 and saves DIR/c.pt.
    kill DIR RANK UPDATE    CartPole and Acrobot with a checkpoint every 20 steps; rank RANK ends itself (os._exit)
                            at update UPDATE.
    hang DIR RANK TIMEOUT   two sums over a group with a TIMEOUT-second limit; rank RANK sleeps before the second.
    crash DIR               CartPole and a CartPole whose training env raises after 30 steps (owned by rank 1).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import torch

torch.set_num_threads(1)


def _grads(out: Path) -> None:
    from scalezero_agents.agent import Agent
    from scalezero_agents.distributed import GradientAllReduce, init_distributed

    comm = init_distributed()
    blob = torch.load(out / "batches.pt", weights_only=False)
    agent = Agent(blob["specs"], blob["config"], seed=0)
    agent.model.load_state_dict(blob["init"])
    agent.learner.target.load_state_dict(blob["init"])
    agent.learner.grad_sync = GradientAllReduce(comm)
    rounds = [[blob["batches"][comm.rank]], blob["batches"] if comm.rank == 0 else []]
    record = []
    for batches in rounds:
        metrics, _ = agent.learner.update(batches)
        record.append({"grads": {n: None if p.grad is None else p.grad.clone()
                                 for n, p in agent.model.named_parameters()},
                       "params": {n: p.detach().clone() for n, p in agent.model.named_parameters()},
                       "loss": metrics["loss"], "grad_norm": metrics["grad_norm"], "aux_loss": metrics["aux_loss"]})
    torch.save(record, out / f"rank{comm.rank}.pt")


def _trainer(tasks: list[Any], out: Path, **trainer_kw: Any) -> Any:
    from scalezero_agents.distributed import DistributedTrainer, init_distributed
    from scalezero_agents.training import TrainerConfig
    from tests.distributed.helpers import tiny_config

    comm = init_distributed()
    tcfg = TrainerConfig(**{"num_envs": 2, "replay_ratio": 0.5, "learning_starts": 20, "eval_interval": 0,
                            "eval_episodes": 1, **trainer_kw})
    return DistributedTrainer(tasks, comm=comm, config=tiny_config(), trainer=tcfg, seed=0, log_dir=out,
                              progress_bar=False)


def _train(out: Path, s1: int, s2: int) -> None:
    from scalezero_agents.distributed import DistributedDPSCallback, DistributedTrainer, init_distributed
    from tests.distributed.helpers import DPS, easy_classic

    trainer = _trainer(easy_classic(), out)
    trainer.callbacks.append(DistributedDPSCallback(DPS))
    trainer.train(s1)
    trainer.save(out / "a.pt")
    trainer.train(s2)
    trainer.save(out / "b.pt")
    # a new trainer (new envs, actors, replays) restored from a.pt: must end where the first one did
    resumed = DistributedTrainer.load(out / "a.pt", comm=init_distributed(), log_dir=out / "resumed",
                                      callbacks=[DistributedDPSCallback(DPS)], progress_bar=False)
    resumed.train(s2)
    resumed.save(out / "c.pt")


def _kill(out: Path, rank: int, update: int) -> None:
    from scalezero_agents.training import Callback
    from tests.distributed.helpers import short_gym

    class Die(Callback):
        def on_update(self, trainer: Any, metrics: dict[str, float]) -> None:
            if trainer.comm.rank == rank and trainer.updates == update:
                print(f"rank {rank} ends itself at update {update}", flush=True)
                os._exit(9)

    trainer = _trainer(short_gym(), out, checkpoint_interval=20)
    trainer.callbacks.append(Die())
    trainer.train(10_000)


class _Crashing:
    """Gymnasium wrapper-like env that raises on its ``after``-th step."""

    def __init__(self, env: Any, after: int) -> None:
        self.env, self.after, self.steps = env, after, 0
        self.observation_space, self.action_space = env.observation_space, env.action_space

    def reset(self, **kw: Any) -> Any:
        return self.env.reset(**kw)

    def step(self, action: Any) -> Any:
        self.steps += 1
        if self.steps >= self.after:
            raise RuntimeError(f"simulated env crash at step {self.steps}")
        return self.env.step(action)


def _hang(rank: int, timeout: float) -> None:
    import time

    from scalezero_agents.distributed import DistributedConfig, init_distributed

    comm = init_distributed(DistributedConfig(timeout_s=timeout))
    x = torch.ones(3)
    comm.all_reduce_(x, "first sum")
    assert x.tolist() == [comm.world_size] * 3
    if comm.rank == rank:
        print(f"rank {rank} stops answering", flush=True)
        time.sleep(3600)
    comm.all_reduce_(x, "second sum")


def _crash(out: Path) -> None:
    import dataclasses

    from scalezero_adapters import Task, make_task

    cartpole = make_task("gym/CartPole-v1", max_episode_steps=40)
    spec = dataclasses.replace(cartpole.spec, name="gym/CrashingCartPole")
    crashing = Task(lambda mode: _Crashing(cartpole.factory(mode), 30) if mode == "train" else cartpole.factory(mode),
                    spec)
    trainer = _trainer([cartpole, crashing], out)
    trainer.train(10_000)


def main(argv: list[str]) -> int:
    from scalezero_agents.distributed import run_rank

    mode, out, rest = argv[0], Path(argv[1]), argv[2:]
    jobs = {"grads": lambda: _grads(out), "train": lambda: _train(out, int(rest[0]), int(rest[1])),
            "kill": lambda: _kill(out, int(rest[0]), int(rest[1])),
            "hang": lambda: _hang(int(rest[0]), float(rest[1])),
            "crash": lambda: _crash(out)}
    return run_rank(jobs[mode])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
