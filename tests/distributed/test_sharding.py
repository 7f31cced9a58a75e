"""Task sharding, configuration checks and the launcher's command line (no process group needed)."""

from __future__ import annotations

import dataclasses
import sys

import pytest
from scalezero_adapters import TaskSpec, make_task

from scalezero_agents.distributed import (
    DistributedConfig,
    DistributedDPSCallback,
    DistributedTrainer,
    build_parser,
    owner_of,
    shard_tasks,
    torchrun_command,
)
from scalezero_agents.dps import DPSCallback


def _spec(i: int, modality: str = "vector") -> TaskSpec:
    image = modality == "image"
    return TaskSpec(name=f"gym/task{i}", family="gym", modality=modality, obs_shape=(3, 8, 8) if image else (3,),
                    obs_dtype="uint8" if image else "float32", action_kind="discrete", num_actions=2,
                    discount=0.99, max_episode_steps=10, eval_protocol="test")


def test_equal_costs_are_round_robin():
    specs = [_spec(i) for i in range(5)]
    assert shard_tasks(specs, 1) == [(0, 1, 2, 3, 4)]
    assert shard_tasks(specs, 2) == [(0, 2, 4), (1, 3)]
    assert shard_tasks(specs, 5) == [(0,), (1,), (2,), (3,), (4,)]
    assert owner_of(shard_tasks(specs, 2)) == {0: 0, 1: 1, 2: 0, 3: 1, 4: 0}


def test_costly_tasks_are_spread_first():
    # one image task (cost 4) and four vector tasks (cost 1 each): the image task gets a rank to itself
    specs = [_spec(0), _spec(1), _spec(2, "image"), _spec(3), _spec(4)]
    assert shard_tasks(specs, 2) == [(2,), (0, 1, 3, 4)]
    # explicit costs override the modality default
    assert shard_tasks(specs, 2, costs={"gym/task2": 1.0}) == [(0, 2, 4), (1, 3)]


def test_every_task_has_one_owner_and_loads_balance():
    specs = [_spec(i, "image" if i % 3 == 0 else "vector") for i in range(11)]
    for world in range(1, 12):
        shards = shard_tasks(specs, world)
        assert sorted(t for s in shards for t in s) == list(range(11)) and all(shards)
        loads = [sum(4.0 if t % 3 == 0 else 1.0 for t in s) for s in shards]
        assert max(loads) - min(loads) <= 4.0  # greedy: off by at most one task's cost


@pytest.mark.parametrize(("world", "costs", "match"), [
    (0, None, "positive int"), (3, None, "exceeds the number of tasks"), (True, None, "positive int"),
    (1, {"gym/nope": 1.0}, "unknown task"), (1, {"gym/task0": 0.0}, "positive finite"),
])
def test_bad_sharding_requests_say_what_is_wrong(world, costs, match):
    with pytest.raises(ValueError, match=match):
        shard_tasks([_spec(0), _spec(1)], world, costs)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"backend": "mpi"}, "backend"), ({"timeout_s": 0}, "timeout_s"), ({"bucket_mb": -1}, "bucket_mb"),
])
def test_config_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DistributedConfig(**kwargs)


def test_trainer_needs_a_process_group_and_the_distributed_dps_callback():
    task = make_task("gym/CartPole-v1")
    with pytest.raises(ValueError, match="DistributedDPSCallback"):
        DistributedTrainer([task], callbacks=[DPSCallback()])
    with pytest.raises(RuntimeError, match="init_distributed"):
        DistributedTrainer([task], callbacks=[DistributedDPSCallback()])


def test_torchrun_command_and_parser():
    cmd = torchrun_command(["--suite", "classic", "--steps", "100"], 4)
    assert cmd == [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=4", "--standalone", "-m",
                   "scalezero_agents.distributed", "--suite", "classic", "--steps", "100"]
    assert torchrun_command(["train"], 2, module="scalezero_agents.cli", standalone=False)[3:] == [
        "--nproc_per_node=2", "-m", "scalezero_agents.cli", "train"]
    with pytest.raises(ValueError, match="nproc_per_node"):
        torchrun_command([], 0)
    args = build_parser().parse_args(["--suite", "classic", "--steps", "10", "--backend", "gloo", "--timeout", "30"])
    assert (args.suite, args.steps, args.backend, args.timeout, args.resume) == ("classic", 10, "gloo", 30.0, None)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--suite", "classic"])  # --steps is required


def test_sharding_uses_real_suite_specs():
    specs = [make_task(name).spec for name in ("gym/CartPole-v1", "gym/Acrobot-v1")]
    image = dataclasses.replace(specs[0], name="gym/Pixels", modality="image", obs_shape=(3, 64, 64),
                                obs_dtype="uint8")
    assert shard_tasks([*specs, image], 2) == [(2,), (0, 1)]
