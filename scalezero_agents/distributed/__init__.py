"""Multi-task training across processes with ``torch.distributed`` (launched with ``torchrun``).

Each rank owns a shard of the tasks (their environments, collection, replay and evaluation) and a full
replica of the one model; gradients are summed over ranks every update, so the ranks optimise the same
objective as one process would on all tasks::

    torchrun --standalone --nproc_per_node=2 -m scalezero_agents.distributed --suite classic --steps 20000 \\
        --log-dir runs/classic

or from Python, in every rank::

    from scalezero_adapters import make_suite
    from scalezero_agents.distributed import DistributedTrainer, init_distributed

    comm = init_distributed()                     # gloo on CPU, NCCL on CUDA
    trainer = DistributedTrainer(make_suite("classic"), comm=comm, preset="tiny", log_dir="runs/classic")
    trainer.train(env_steps_per_task=20_000)

Pieces: :mod:`~scalezero_agents.distributed.sharding` (which rank owns which task),
:mod:`~scalezero_agents.distributed.comm` (process group, bounded collectives, the gradient sum),
:mod:`~scalezero_agents.distributed.trainer` (the per-rank trainer and its checkpoints),
:mod:`~scalezero_agents.distributed.dps` (DPS decisions made on rank 0 and broadcast),
:mod:`~scalezero_agents.distributed.launch` (command line and ``torchrun`` launcher).
"""

from scalezero_agents.distributed.comm import (
    Comm,
    DistributedConfig,
    GradientAllReduce,
    PeerError,
    ReplicaMismatchError,
    current_comm,
    init_distributed,
    shutdown,
)
from scalezero_agents.distributed.dps import DistributedDPSCallback
from scalezero_agents.distributed.launch import build_parser, launch, main, run_rank, torchrun_command
from scalezero_agents.distributed.sharding import MODALITY_COST, owner_of, shard_tasks, task_cost
from scalezero_agents.distributed.trainer import DistributedTrainer

__all__ = [
    "MODALITY_COST",
    "Comm",
    "DistributedConfig",
    "DistributedDPSCallback",
    "DistributedTrainer",
    "GradientAllReduce",
    "PeerError",
    "ReplicaMismatchError",
    "build_parser",
    "current_comm",
    "init_distributed",
    "launch",
    "main",
    "owner_of",
    "run_rank",
    "shard_tasks",
    "shutdown",
    "task_cost",
    "torchrun_command",
]
