"""The learning benchmark's report: env steps to target, multi-task vs single-task budgets, DPS vs no DPS."""

from __future__ import annotations

import json

import learning
import learning_report
import pytest

BAL, CP = "dmc/cartpole-balance", "gym/CartPole-v1"


def _record(name: str, curves: dict[str, list[tuple[int, float]]]) -> dict:
    """A learning.py record whose evaluations give ``curves[task] = [(env_steps, mean), ...]``: ``reached`` holds,
    per threshold, the first evaluation at or above it (as ``learning.run_scalezero`` writes it)."""
    thresholds = {CP: [195.0, 475.0], BAL: [800.0, 900.0]}
    reached = {t: {str(th): next(({"env_steps": n} for n, mean in c if mean >= th), None) for th in thresholds[t]}
               for t, c in curves.items()}
    return {"name": name, "tasks": list(curves), "env_steps": {t: c[-1][0] for t, c in curves.items()},
            "reached": reached}


def _rows(text: str, section: str) -> list[list[str]]:
    body = text.split(f"## {section}")[1].split("\n## ")[0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in body.strip().splitlines()[2:]]


def test_targets_come_from_the_record_or_the_acceptance_override() -> None:
    run = learning_report.parse(_record("mt_classic_s0", {CP: [(5_000, 300.0), (10_000, 480.0)],
                                                          BAL: [(5_000, 700.0), (10_000, 850.0)]}))
    assert run.kind == "mt" and run.seed == 0 and run.tag == ""
    assert run.to_target == {CP: 10_000, BAL: 10_000}  # CartPole 475 (its TaskSpec), balance 800 (not 900)
    assert run.total == 20_000 and all(run.reached.values())


def test_report_ratios_to_the_single_task_budget_and_dps_vs_no_dps() -> None:
    runs = [learning_report.parse(r) for r in (
        _record("st_gym_CartPole-v1_s0", {CP: [(5_000, 300.0), (10_000, 500.0)]}),
        _record("st_gym_CartPole-v1_s1", {CP: [(5_000, 300.0), (10_000, 400.0), (20_000, 500.0)]}),  # mean 15k
        _record("mt_classic_s0", {CP: [(5_000, 480.0)], BAL: [(5_000, 100.0), (25_000, 700.0)]}),  # never 800
        _record("mt-dps_classic_s0", {CP: [(5_000, 480.0)], BAL: [(5_000, 100.0), (20_000, 810.0)]}),
    )]
    text = learning_report.report(runs)
    runs_table = {row[0]: row[1:] for row in _rows(text, "Env steps to each task's target")}
    assert runs_table["mt_classic_s0"] == ["5,000", ">= 25,000", ">= 30,000"]
    assert runs_table["mt-dps_classic_s0"] == ["5,000", "20,000", "25,000"]
    budget = _rows(text, "Multi-task vs the single-task budget")
    assert ["gym/CartPole-v1", "15,000 (0 1)", "mt_classic_s0", "5,000", "0.33"] in budget
    dps = {row[0]: row[1:] for row in _rows(text, "DPS vs no DPS: env steps to reach all targets")}
    assert dps["ScaleZero"] == ["0", ">= 30,000", ">= 30,000", "1.00"]
    assert dps["ScaleZero + DPS"] == ["0", "25,000", "25,000", "0.83"]


def test_dps_comparison_uses_only_seeds_run_both_ways() -> None:
    runs = [learning_report.parse(_record(name, {CP: [(n, 480.0)]})) for name, n in (
        ("mt_classic_s0", 10_000), ("mt_classic_s1", 90_000), ("mt-dps_classic_s0", 5_000))]
    dps = {row[0]: row[1:] for row in _rows(learning_report.report(runs), "DPS vs no DPS")}
    assert dps["ScaleZero"] == ["0", "10,000", "10,000", "1.00"]  # seed 1 has no DPS run: left out
    assert dps["ScaleZero + DPS"] == ["0", "5,000", "5,000", "0.50"]
    unpaired = [r for r in runs if r.name != "mt_classic_s0"]
    assert "DPS vs no DPS" not in learning_report.report(unpaired)


def test_a_record_without_the_target_threshold_is_an_error() -> None:
    record = _record("mt_classic_s0", {BAL: [(5_000, 850.0)]})
    del record["reached"][BAL]["800.0"]  # the acceptance target of balance, not its TaskSpec's 900
    with pytest.raises(ValueError, match="no threshold"):
        learning_report.parse(record)


def test_report_mode_reads_only_runs_with_the_tag(tmp_path, capsys) -> None:
    for name in ("mt_classic_s0_lr3e-4", "mt_classic_s1"):
        (tmp_path / f"{name}.json").write_text(json.dumps(_record(name, {CP: [(5_000, 480.0)]})))
    assert learning.main(["report", "--out", str(tmp_path), "--tag", "_lr3e-4"]) == 0
    written = (tmp_path / "report.md").read_text()
    assert "mt_classic_s0_lr3e-4" in written and "mt_classic_s1" not in written
    assert "DPS vs no DPS" not in written  # no DPS runs, no such section
    with pytest.raises(SystemExit, match="no learning-benchmark runs"):
        learning.main(["report", "--out", str(tmp_path), "--tag", "_other"])


def test_bad_run_names_are_errors() -> None:
    with pytest.raises(ValueError, match="not st_"):
        learning_report.parse(_record("something_s0", {CP: [(5_000, 480.0)]}))
