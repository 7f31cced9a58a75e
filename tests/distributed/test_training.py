"""A 2-rank run of the classic suite (short episodes, DPS) under torchrun: rank 0's two tasks are solved at the
first evaluation, so rank 0 then only joins the gradient sums; its checkpoint resumes exactly with 2 ranks, and in
one process (a different world size), through the distributed trainer and the plain one."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from scalezero_agents.distributed import DistributedDPSCallback, DistributedTrainer, init_distributed, shutdown
from scalezero_agents.dps import DPSCallback
from scalezero_agents.training import MultiTaskTrainer
from tests.distributed.helpers import DPS, torchrun

S1, S2 = 40, 60  # env steps per task at the first checkpoint (a.pt) and at the end (b.pt, c.pt)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("classic")
    proc = torchrun(["train", str(out), str(S1), str(S2)], timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return out


def _blob(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def test_rank0_writes_one_checkpoint_with_every_task(run_dir):
    blob = _blob(run_dir / "a.pt")
    state = blob["state"]
    assert [s.name for s in blob["tasks"]] == ["gym/CartPole-v1", "gym/Acrobot-v1", "dmc/cartpole-balance",
                                               "dmc/cartpole-swingup"]
    info = state["distributed"]
    assert info["world_size"] == 2 and info["shards"] == [[0, 2], [1, 3]]  # equal costs: round-robin
    assert list(state["env_steps"]) == [S1] * 4
    assert state["agent"]["learner"]["updates"] == int((S1 - 20) * 0.5)  # replay_ratio accounting, global
    # DPS: stage 0 ended after 10 updates; the evaluation at S1 solved rank 0's tasks on every rank
    assert state["callbacks"]["dps"]["stage"] == 1 and state["callbacks"]["dps"]["solved"] == [0, 2]
    assert list(state["active"]) == [False, True, False, True]
    for t, replay in enumerate(state["agent"]["replays"]):  # each task's replay came from its owner
        assert (replay["head"] > 0).all(), f"task {t}: empty replay in the checkpoint"
    assert len(state["envs"]) == 4 * 2 and all(e["seed"] for e in state["envs"])
    assert state["actor"]["latents"].shape[0] == 4 * 2
    history = json.loads((run_dir / "history.json").read_text())
    assert [set(h["tasks"]) for h in history] == [{s.name for s in blob["tasks"]}] * 2  # gathered from both ranks
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1  # only rank 0 writes TensorBoard


def test_solved_tasks_stop_on_every_rank_and_the_idle_rank_keeps_stepping(run_dir):
    state = _blob(run_dir / "b.pt")["state"]
    assert list(state["env_steps"]) == [S1, S2, S1, S2]  # rank 0 collected nothing after S1 ...
    assert state["agent"]["learner"]["updates"] == int((S2 - 20) * 0.5)  # ... but took part in every update
    dps = state["callbacks"]["dps"]
    assert dps["stage"] == 2 and dps["last_switch_updates"] == int((S1 - 20) * 0.5) + 1  # 2 solves end stage 1


def test_same_world_size_resume_continues_exactly(run_dir):
    straight, resumed = _blob(run_dir / "b.pt")["state"], _blob(run_dir / "c.pt")["state"]
    assert straight["agent"]["learner"]["updates"] == resumed["agent"]["learner"]["updates"]
    assert straight["callbacks"] == resumed["callbacks"]  # the same DPS switch after the checkpoint
    for name, value in straight["agent"]["model"].items():
        assert torch.equal(value, resumed["agent"]["model"][name]), name
    for a, b in zip(straight["agent"]["replays"], resumed["agent"]["replays"], strict=True):
        for key in ("obs", "reward", "policy", "head"):
            np.testing.assert_array_equal(a[key], b[key])
    assert straight["envs"] == resumed["envs"]
    assert straight["history"][-1]["tasks"] == resumed["history"][-1]["tasks"]


def test_one_process_resumes_a_two_rank_checkpoint(run_dir):
    init_distributed()  # a group of one, in this process
    try:
        trainer = DistributedTrainer.load(run_dir / "a.pt", callbacks=[DistributedDPSCallback(DPS)],
                                          progress_bar=False)
        assert trainer.local_tasks == (0, 1, 2, 3) and trainer.updates == int((S1 - 20) * 0.5)
        saved = _blob(run_dir / "a.pt")["state"]
        for name, value in trainer.agent.model.state_dict().items():
            assert torch.equal(value, saved["agent"]["model"][name]), name
        for slot in trainer.slots:  # every env's running episode was replayed, whichever rank ran it
            assert slot.actions == saved["envs"][slot.task_id * 2 + slot.env_index]["actions"]
        trainer.train(S2)
        straight = _blob(run_dir / "b.pt")["state"]
        assert list(trainer.env_steps) == [S1, S2, S1, S2]
        assert trainer.updates == straight["agent"]["learner"]["updates"]  # same objective, same update count
        assert trainer.callbacks[0].controller.state_dict() == straight["callbacks"]["dps"]
        assert all(torch.isfinite(p).all() for p in trainer.agent.model.parameters())
    finally:
        shutdown()
    # the plain trainer reads it too (with the plain DPS callback: same checkpoint state)
    plain = MultiTaskTrainer.load(run_dir / "a.pt", callbacks=[DPSCallback(DPS)], progress_bar=False)
    assert list(plain.env_steps) == [S1] * 4 and len(plain.slots) == 8 and plain.callbacks[0].controller.stage == 1
    assert torch.equal(plain.actor.latents, saved["actor"]["latents"])
