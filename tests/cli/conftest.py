"""Fixtures of the CLI tests: one tiny trained DMC run, shared by the train, eval and error tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.cli.helpers import DMC, TINY, run_cli


@pytest.fixture(scope="session")
def dmc_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A finished `scalezero train` run on DMC cartpole-balance: 80 env steps, evaluated at the end."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("cli") / "dmc"
    code, stdout, stderr = run_cli(["train", *DMC, *TINY, "--steps", "80", "--eval-interval", "0",
                                    "--out", str(out)])
    assert code == 0, stderr
    return out, stdout
