"""Failures end the run on every rank with a clear error within a bounded time; the last checkpoint stays valid."""

from __future__ import annotations

import pytest
import torch

from scalezero_agents.training import MultiTaskTrainer
from tests.distributed.helpers import run_ranks


def test_killed_rank_ends_the_others_and_leaves_a_valid_checkpoint(tmp_path):
    rank0, rank1 = run_ranks(["kill", str(tmp_path), "1", "12"], timeout=150)
    assert rank1.returncode == 9 and "ends itself at update 12" in rank1.output
    assert rank0.returncode == 1, rank0.output[-3000:]
    assert "[rank 0/2] error: PeerError: rank 0 of 2:" in rank0.output, rank0.output[-3000:]
    assert rank0.seconds - rank1.seconds < 30  # the survivor noticed at once (its timeout is 900 s)
    # the checkpoint written at 40 env steps per task (update 10) is intact and loads in one process
    trainer = MultiTaskTrainer.load(tmp_path / "checkpoint.pt", progress_bar=False)
    assert list(trainer.env_steps) == [40, 40] and trainer.updates == 10
    assert all(torch.isfinite(p).all() for p in trainer.agent.model.parameters())
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.slow  # ~25 s: two processes start; the killed-rank test covers the peers' side
def test_crashing_env_ends_every_rank_with_its_error(tmp_path):
    rank0, rank1 = run_ranks(["crash", str(tmp_path)], timeout=150)
    assert rank1.returncode == 1 and "[rank 1/2] error: RuntimeError: simulated env crash at step 30" in rank1.output
    assert rank0.returncode == 1 and "[rank 0/2] error: PeerError" in rank0.output, rank0.output[-3000:]


def test_unresponsive_rank_times_out(tmp_path):
    timeout = 4.0
    rank0, rank1 = run_ranks(["hang", str(tmp_path), "1", str(timeout)], timeout=90, wait_for=[0])
    assert "rank 1 stops answering" in rank1.output
    assert rank0.returncode == 1, rank0.output[-3000:]
    assert "PeerError: rank 0 of 2: second sum failed" in rank0.output and f"within {timeout:g} s" in rank0.output
