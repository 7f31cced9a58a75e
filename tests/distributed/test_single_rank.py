"""A group of one runs exactly the single-process algorithm: same updates, same losses, same weights."""

from __future__ import annotations

import torch

from scalezero_agents.distributed import DistributedTrainer, init_distributed, shutdown
from scalezero_agents.training import Callback, MultiTaskTrainer, TrainerConfig
from tests.distributed.helpers import short_gym, tiny_config


class _Losses(Callback):
    def __init__(self) -> None:
        self.losses: list[dict[str, float]] = []

    def on_update(self, trainer, metrics):
        self.losses.append({k: v for k, v in metrics.items() if k.endswith("loss")})


def test_one_rank_equals_the_plain_trainer(tmp_path):
    tcfg = TrainerConfig(num_envs=2, replay_ratio=0.5, learning_starts=20, eval_interval=0, eval_episodes=1)
    kwargs = {"config": tiny_config(), "trainer": tcfg, "seed": 3, "progress_bar": False}
    plain_losses, dist_losses = _Losses(), _Losses()
    plain = MultiTaskTrainer(short_gym(), callbacks=[plain_losses], log_dir=tmp_path / "plain", **kwargs)
    plain.train(40)
    comm = init_distributed()
    try:
        dist = DistributedTrainer(short_gym(), comm=comm, callbacks=[dist_losses], log_dir=tmp_path / "dist",
                                  **kwargs)
        assert dist.shards == [(0, 1)] and comm.world_size == 1
        dist.train(40)
    finally:
        shutdown()
    assert len(plain_losses.losses) == len(dist_losses.losses) == plain.updates == 10
    assert plain_losses.losses == dist_losses.losses  # bit-identical, update by update
    for (name, a), b in zip(plain.agent.model.state_dict().items(), dist.agent.model.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    assert plain.history[-1]["tasks"] == dist.history[-1]["tasks"]
