"""`scalezero eval` and `evaluate_checkpoint` on a DMC (shimmy) checkpoint."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from scalezero_agents.evaluation import evaluate_checkpoint
from tests.cli.helpers import DMC_EPISODE, run_cli

TASK = "dmc/cartpole-balance"


def test_eval_prints_per_task_returns_writes_json_and_a_video(dmc_run: tuple[Path, str], tmp_path: Path) -> None:
    import imageio.v3 as iio

    out = dmc_run[0]
    report, videos = tmp_path / "eval.json", tmp_path / "videos"
    code, stdout, stderr = run_cli(["eval", str(out), "--episodes", "2", "--seed", "1", "--json", str(report),
                                    "--video", str(videos)])
    assert code == 0, stderr
    data = json.loads(report.read_text())
    res = data["results"][TASK]
    assert res["episodes"] == 2 and res["length"] == DMC_EPISODE  # rebuilt with the run's action repeat 20
    assert res["min"] <= res["mean"] <= res["max"] and res["std"] == pytest.approx((res["max"] - res["min"]) / 2)
    assert 0 < res["mean"] <= DMC_EPISODE * 20 and res["normalized"] == pytest.approx(res["mean"] / 1000)
    assert data["simulations"] == 2 and not data["video_errors"]  # the checkpoint's eval_simulations
    assert TASK in stdout and f"{res['mean']:.1f}" in stdout and "video of dmc/cartpole-balance" in stdout
    (video,) = videos.iterdir()
    assert data["videos"][TASK] == str(video) and video.stem == "dmc_cartpole-balance"
    frames = iio.imread(video, index=None)
    assert frames.ndim == 4 and frames.shape[-1] == 3 and 2 < len(frames) <= DMC_EPISODE + 1 and np.ptp(frames) > 0
    # the function, without video, gives the same numbers: the recorded episode is an evaluated one
    again = evaluate_checkpoint(out / "checkpoint.pt", tasks=[TASK], episodes=2, seed=1)
    assert again[TASK] == res


def test_text_tasks_cannot_render() -> None:
    from scalezero_adapters import make_task

    from scalezero_agents.evaluation import _render_env

    story_dir = Path(os.environ.get("SCALEZERO_JERICHO_DIR", Path(__file__).parents[3] / "shared/data/jericho"))
    if not (story_dir / "detective.z5").is_file():
        pytest.skip(f"Jericho story files not found in {story_dir}")
    with pytest.raises(RuntimeError, match="jericho/detective is a text game"):
        _render_env(make_task("jericho/detective", story_dir=str(story_dir)))
