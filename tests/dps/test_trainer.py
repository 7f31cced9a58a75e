"""DPS in the native MultiTaskTrainer: solved tasks stop, checkpoints resume mid-stage exactly."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from gymnasium.wrappers import TimeLimit
from scalezero_adapters import Task, make_task

from scalezero_agents.dps import DPSCallback, DPSConfig
from scalezero_agents.training import Callback, MultiTaskTrainer, TrainerConfig
from tests.dps.helpers import tiny_config


class _Record(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []
        self.stages: list[float] = []
        self.task_keys: list[set[str]] = []

    def on_update(self, trainer, metrics):
        self.losses.append(metrics["loss"])
        self.stages.append(metrics["dps_stage"])
        self.task_keys.append({k.rsplit("/", 1)[0] for k in metrics if k.endswith("/loss")})


# attention only: peft's per-layer Python overhead makes adapted experts slow on a loaded CPU
DPS = DPSConfig(num_stages=4, min_stage0_updates=4, max_stage_updates=6, rank=2, alpha=2.0,
                target_groups=("attention",))


def _short_pendulum(steps: int = 25) -> Task:
    """Pendulum-v1 (continuous, no target return) cut to ``steps``-step episodes, to keep evaluations short."""
    task = make_task("gym/Pendulum-v1")
    return Task(lambda mode: TimeLimit(task.factory(mode), steps),
                dataclasses.replace(task.spec, max_episode_steps=steps))


def _trainer(tmp_path, tasks, callbacks, eval_interval=0):
    tcfg = TrainerConfig(num_envs=2, replay_ratio=0.5, learning_starts=20, eval_interval=eval_interval,
                         eval_episodes=1)
    config = tiny_config("scalezero", **{"search.num_samples": 4})
    return MultiTaskTrainer(tasks, config=config, trainer=tcfg, seed=0, log_dir=tmp_path, callbacks=callbacks,
                            progress_bar=False)


def test_resume_mid_stage_continues_exactly(tmp_path):
    tasks = [make_task("gym/CartPole-v1"), _short_pendulum()]
    straight, dps = _Record(), DPSCallback(DPS)
    a = _trainer(tmp_path / "a", tasks, [dps, straight])
    a.train(50)  # 15 updates: switches at 6 and 12, so stage 2, mid-stage
    assert dps.controller.stage == 2 and a.updates == 15
    path = a.save(tmp_path / "ckpt.pt")
    a.train(70)  # 25 updates: the switch to stage 3 at update 18 happens after the checkpoint
    assert straight.stages.index(3.0) == 17 and dps.controller.stage == 3

    resumed, dps_b = _Record(), DPSCallback(DPS)
    b = MultiTaskTrainer.load(path, tasks, callbacks=[dps_b, resumed], progress_bar=False, log_dir=tmp_path / "b")
    assert dps_b.controller.stage == 2 and dps_b.controller.last_switch_updates == 12
    b.train(70)
    assert len(resumed.losses) == 10
    assert straight.losses[15:] == resumed.losses  # bit-identical continuation across the stage switch
    assert straight.stages[15:] == resumed.stages
    assert dps_b.controller.state_dict() == dps.controller.state_dict()
    for (na, pa), (nb, pb) in zip(a.agent.model.named_parameters(), b.agent.model.named_parameters(), strict=True):
        assert na == nb and torch.equal(pa, pb) and pa.requires_grad == pb.requires_grad, na
    for pa, pb in zip(a.agent.learner.target.parameters(), b.agent.learner.target.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert len(a.agent.learner.optimizer.param_groups) == len(b.agent.learner.optimizer.param_groups) == 2 + 2 * 3

    with pytest.raises(ValueError, match="'dps'"):  # a DPS checkpoint needs the callback to rebuild the adapters
        MultiTaskTrainer.load(path, tasks, progress_bar=False)


def test_solved_task_stops_collecting_and_training(tmp_path):
    cartpole, pendulum = make_task("gym/CartPole-v1"), _short_pendulum()
    easy = Task(cartpole.factory, dataclasses.replace(cartpole.spec, target_return=1.0))  # solved at once
    record, dps = _Record(), DPSCallback(dataclasses.replace(DPS, num_stages=3, min_stage0_updates=0,
                                                             max_stage_updates=10_000))
    trainer = _trainer(tmp_path, [easy, pendulum], [dps, record], eval_interval=30)
    trainer.train(60)
    first = trainer.history[0]
    assert first["tasks"]["gym/CartPole-v1"]["solved"] and not first["tasks"]["gym/Pendulum-v1"]["solved"]
    solved_at = first["tasks"]["gym/CartPole-v1"]["env_steps"]
    assert dps.controller.solved == {0} and list(trainer.active) == [False, True]
    assert trainer.env_steps[0] == solved_at == 30 and trainer.env_steps[1] == 60  # CartPole's counter froze
    # updates before the evaluation trained both tasks, all later ones Pendulum only
    n_before = first["updates"]
    assert record.task_keys[:n_before] == [{"gym/CartPole-v1", "gym/Pendulum-v1"}] * n_before
    assert record.task_keys[n_before:] and all(k == {"gym/Pendulum-v1"} for k in record.task_keys[n_before:])
    # the solve ended stage 0 at the first update after it (1 new solve >= ceil(1 unsolved / 2 stages))
    assert dps.controller.stage == 1 and dps.controller.last_switch_updates == n_before + 1
    assert record.stages[n_before - 1] == 0.0 and record.stages[n_before] == 1.0
