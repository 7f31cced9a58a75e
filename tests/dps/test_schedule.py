"""The stage schedule, driven through the controller's real API (update counts and solve events)."""

from __future__ import annotations

import json

import pytest

from scalezero_agents.agent import Agent
from scalezero_agents.dps import DPSConfig, DynamicParameterScaling, tasks_per_stage
from tests.dps.helpers import tiny_config, vector_spec

SMALL = {"rank": 1, "alpha": 1.0}


def _controller(num_tasks: int, targets: list[float | None] | None = None, **config) -> DynamicParameterScaling:
    targets = targets or [10.0] * num_tasks
    agent = Agent([vector_spec(i, t) for i, t in enumerate(targets)], tiny_config(), seed=0)
    return DynamicParameterScaling(agent, DPSConfig(**{**SMALL, **config}))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"num_stages": 0}, "num_stages"), ({"rank": 0}, "rank"), ({"max_stage_updates": 0}, "max_stage_updates"),
    ({"min_stage0_updates": -1}, "min_stage0"), ({"alpha": 0.0}, "alpha"), ({"dropout": 1.0}, "dropout"),
    ({"target_groups": ("attn",)}, "unknown target group"), ({"target_groups": "attention"}, "tuple"),
    ({"target_groups": ()}, "non-empty"), ({"target_groups": ("attention", "attention")}, "repeats"),
    ({"scale_init": float("nan")}, "scale_init"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DPSConfig(**kwargs)


def test_paper_presets():
    dmc, atari = DPSConfig.paper("dmc"), DPSConfig.paper("atari")
    assert (dmc.min_stage0_updates, dmc.max_stage_updates, dmc.rank, dmc.alpha, dmc.dropout) == (10_000, 5_000, 64,
                                                                                                    1.0, 0.0)
    assert (atari.min_stage0_updates, atari.max_stage_updates, atari.rank, atari.alpha, atari.dropout) == (
        50_000, 20_000, 64, 32.0, 0.1)
    assert dmc.num_stages == atari.num_stages == 5
    assert DPSConfig(target_groups=["attention"]).target_groups == ("attention",)
    with pytest.raises(ValueError, match="benchmark"):
        DPSConfig.paper("mujoco")


def test_tasks_per_stage():
    assert [tasks_per_stage(u, 4) for u in (0, 1, 4, 5, 8, 9)] == [1, 1, 1, 2, 2, 3]
    assert tasks_per_stage(7, 1) == 7


def test_timed_switches_and_last_stage_persists():
    dps = _controller(2, num_stages=3, min_stage0_updates=100, max_stage_updates=50)
    switches = [u for u in range(0, 400) if dps.step(u)]
    # stage 0 ends at the first check after min_stage0 (100 - 0 >= 50), then every 50 updates; stage 2 is last
    assert switches == [100, 150]
    assert dps.stage == 2 and [a.name for a in dps.adapters] == ["stage1", "stage2"]
    with pytest.raises(ValueError, match="last stage"):
        dps.advance()


def test_one_stage_means_no_adapters():
    dps = _controller(1, num_stages=1, min_stage0_updates=0, max_stage_updates=1)
    assert not any(dps.step(u, solved={0} if u == 5 else ()) for u in range(50))
    assert dps.stage == 0 and dps.num_parameters().adapters == 0


def test_min_stage0_longer_than_first_timeout():
    dps = _controller(1, num_stages=3, min_stage0_updates=10, max_stage_updates=30)
    assert [u for u in range(0, 100) if dps.step(u)] == [30, 60]


def test_solve_events_switch_stages():
    # 7 tasks, 3 stages: a stage ends after max(1, ceil(unsolved / remaining stages)) new solves
    dps = _controller(7, num_stages=3, min_stage0_updates=10, max_stage_updates=10_000)
    assert not dps.step(3, solved={0, 1, 2})  # solved early, but stage 0 lasts min_stage0_updates
    assert dps.solved == {0, 1, 2}
    assert dps.step(10)  # 3 newly solved >= ceil(4 / 2)
    assert (dps.stage, dps.last_switch_updates, dps.last_solved_count) == (1, 10, 3)
    assert not dps.step(11)
    assert dps.report_eval({3: 9.99, 4: 3.0}) == set()  # below the targets (10)
    assert not dps.step(12)
    assert dps.report_eval({3: 10.0}) == {3}
    assert not dps.step(13)  # 1 newly solved < ceil(3 unsolved / 1 remaining stage)
    assert dps.report_eval({3: 50.0, 4: 12.0}) == {4}  # 3 was solved already
    assert dps.step(14) and dps.stage == 2  # 2 newly solved >= ceil(2 / 1)
    assert (dps.last_switch_updates, dps.last_solved_count) == (14, 5)
    assert not dps.step(10_000, solved={5, 6})  # the last stage persists


def test_quota_rounds_up():
    dps = _controller(5, num_stages=3, min_stage0_updates=0, max_stage_updates=10_000)
    assert not dps.step(1, solved={0})  # unsolved 4, remaining 2 -> needs 2
    assert dps.step(2, solved={1}) and dps.stage == 1


def test_tasks_without_target_never_solve_and_bad_input():
    dps = _controller(2, targets=[None, 5.0], num_stages=2)
    assert dps.report_eval({0: 1e9, 1: 5.0}) == {1}
    assert dps.solved == {1}
    with pytest.raises(ValueError, match="out of range"):
        dps.report_eval({2: 0.0})
    with pytest.raises(ValueError, match="out of range"):
        dps.step(0, solved={-1})
    dps.step(5)
    with pytest.raises(ValueError, match="never decreases"):
        dps.step(4)


def test_state_is_plain_data_and_restores_on_a_fresh_agent():
    dps = _controller(3, num_stages=4, min_stage0_updates=2, max_stage_updates=3)
    for u in range(7):
        dps.step(u, solved={1} if u == 6 else ())
    state = dps.state_dict()
    assert state == json.loads(json.dumps(state))
    fresh = _controller(3, num_stages=4, min_stage0_updates=2, max_stage_updates=3)
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state and fresh.stage == 2
    assert fresh.num_parameters() == dps.num_parameters()
    assert len(fresh.agent.learner.optimizer.param_groups) == len(dps.agent.learner.optimizer.param_groups)
    # both continue the same way
    assert [u for u in range(7, 20) if fresh.step(u)] == [u for u in range(7, 20) if dps.step(u)] == [9]
    too_few = _controller(3, num_stages=2)
    with pytest.raises(ValueError, match="num_stages"):
        too_few.load_state_dict(state)
