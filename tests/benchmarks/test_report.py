"""The benchmark statistics and report: IQM, stratified bootstrap CIs, run records, the table and the plots."""

from __future__ import annotations

import json

import numpy as np
import pytest
import report
from report import (
    Interval,
    curves_from_history,
    iqm,
    iqm_rows,
    load_runs,
    mean_rows,
    render_table,
    stratified_bootstrap_ci,
    validate_record,
    write_report,
    write_run,
)

# ------------------------------------------------------------------------------------------------ IQM


def test_iqm_of_known_arrays():
    assert iqm(np.arange(8)) == pytest.approx(3.5)  # drops 0, 1 and 6, 7: mean of 2..5
    assert iqm([1, 2, 3, 4, 100]) == pytest.approx(3.0)  # n = 5: one value trimmed from each end
    assert iqm([[4.0, 1.0], [3.0, 2.0]]) == pytest.approx(2.5)  # all values pooled
    assert iqm([7.0]) == 7.0
    outlier = iqm([0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1e6])
    assert outlier == pytest.approx(1.0)  # robust to one huge score, unlike the mean


def test_iqm_matches_scipy_trim_mean():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for n in (4, 5, 7, 12, 33):
        x = rng.normal(size=n)
        assert iqm(x) == pytest.approx(float(stats.trim_mean(x, 0.25)), abs=1e-12)


def test_iqm_rows_is_rowwise_and_rejects_empty():
    rows = np.array([[0, 1, 2, 3, 4, 5, 6, 7], [7, 6, 5, 4, 3, 2, 1, 100]], dtype=float)
    np.testing.assert_allclose(iqm_rows(rows), [3.5, 4.5])  # second row: mean of 3, 4, 5, 6
    with pytest.raises(ValueError, match="empty"):
        iqm([])
    with pytest.raises(ValueError, match="2-D"):
        iqm_rows(np.zeros(3))


# ------------------------------------------------------------------------------------------------ bootstrap
SCORES = [np.array([0.1, 0.4, 0.3, 0.9, 0.5]), np.array([1.2, 0.8, 1.0]), np.array([0.0, 0.2, 0.1, 0.15])]


def test_bootstrap_is_seeded_and_reproducible():
    a = stratified_bootstrap_ci(SCORES, reps=2_000, seed=7)
    b = stratified_bootstrap_ci(SCORES, reps=2_000, seed=7)
    c = stratified_bootstrap_ci(SCORES, reps=2_000, seed=8)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)
    assert a.point == c.point  # the point estimate does not depend on the resampling


def test_ci_contains_the_point_estimate_and_orders_its_bounds():
    for stat, func in ((iqm_rows, iqm), (mean_rows, np.mean)):
        ci = stratified_bootstrap_ci(SCORES, stat, reps=5_000, seed=0)
        assert ci.point == pytest.approx(float(func(np.concatenate(SCORES))))
        assert ci.low < ci.point < ci.high
        assert ci.num_scores == 12 and ci.num_tasks == 3 and ci.min_runs_per_task == 3
        assert not ci.degenerate


def test_resampling_stays_within_each_task():
    # every seed of a task scores the same: resampling seeds within tasks cannot change anything, whereas a
    # bootstrap that pooled the tasks would give a wide interval
    ci = stratified_bootstrap_ci([np.full(4, 0.0), np.full(4, 1.0), np.full(4, 5.0)], mean_rows, reps=1_000, seed=1)
    assert ci.low == pytest.approx(2.0) and ci.high == pytest.approx(2.0) and ci.point == pytest.approx(2.0)


def test_wider_confidence_gives_a_wider_interval():
    narrow = stratified_bootstrap_ci(SCORES, confidence=0.5, reps=4_000, seed=2)
    wide = stratified_bootstrap_ci(SCORES, confidence=0.99, reps=4_000, seed=2)
    assert wide.low <= narrow.low and wide.high >= narrow.high
    assert wide.high - wide.low > narrow.high - narrow.low


def test_one_seed_per_task_is_flagged_degenerate():
    ci = stratified_bootstrap_ci([[0.2], [0.6], [0.4]], reps=100, seed=0)
    assert ci.degenerate and ci.low == ci.high == ci.point
    assert ci.format() == "0.40 [n/a: 1 seed]"
    assert Interval(0.5, 0.25, 0.75, 0.95, 10, 4, 2, 2).format() == "0.50 [0.25, 0.75]"


def test_bootstrap_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one task"):
        stratified_bootstrap_ci([])
    with pytest.raises(ValueError, match="task 1 has no scores"):
        stratified_bootstrap_ci([[1.0], []])
    with pytest.raises(ValueError, match="non-finite"):
        stratified_bootstrap_ci([[1.0, np.nan]])
    with pytest.raises(ValueError, match="confidence"):
        stratified_bootstrap_ci([[1.0]], confidence=1.0)


def test_agrees_with_rliable_when_installed():
    rly = pytest.importorskip("rliable.library")
    metrics = pytest.importorskip("rliable.metrics")
    scores = np.random.default_rng(5).normal(size=(6, 4))  # (runs, tasks), rliable's layout
    np.random.seed(0)  # noqa: NPY002 (rliable resamples from NumPy's global state, whatever random_state says)
    points, intervals = rly.get_interval_estimates({"m": scores}, lambda x: np.array([metrics.aggregate_iqm(x)]),
                                                   reps=5_000)
    ours = stratified_bootstrap_ci([scores[:, t] for t in range(4)], reps=5_000, seed=0)
    assert ours.point == pytest.approx(float(points["m"][0]))
    assert ours.low == pytest.approx(float(intervals["m"][0, 0]), abs=0.04)
    assert ours.high == pytest.approx(float(intervals["m"][1, 0]), abs=0.04)


# ------------------------------------------------------------------------------------------------ records
def _record(method: str, tasks: list[str], finals: dict[str, tuple[float, float]], seed: int = 0,
            **extra) -> dict:
    curves = {t: [{"env_steps": 500, "mean": m / 2, "std": s}, {"env_steps": 1_000, "mean": m, "std": s}]
              for t, (m, s) in finals.items()}
    return {"schema": 1, "name": f"{method}_{'_'.join(t.split('/')[-1] for t in tasks)}_s{seed}", "method": method,
            "seed": seed, "tasks": tasks, "budget_per_task": 1_000, "curves": curves,
            "env_steps": {t: 1_000 for t in tasks}, "train_time": 120.0,
            "protocol": {"eval_interval": 500, "eval_episodes": 10}, **extra}


TASK_INFO = {"gym/CartPole-v1": {"random": 20.0, "reference": 500.0, "target": 475.0},
             "dmc/cartpole-balance": {"random": 0.0, "reference": 1000.0, "target": 900.0}}


def test_curves_from_a_trainer_history():
    history = [{"env_steps": 504, "train_time": 10.0, "tasks": {
        "a/x": {"env_steps": 504, "mean": 1.0, "std": 0.5, "min": 0.0, "max": 2.0, "length": 9.0, "solved": False},
        "b/y": {"env_steps": 496, "mean": 3.0, "std": 0.0, "min": 3.0, "max": 3.0, "normalized": 0.3}}}]
    curves = curves_from_history(history)
    assert curves["a/x"] == [{"env_steps": 504, "mean": 1.0, "std": 0.5, "min": 0.0, "max": 2.0, "train_time": 10.0}]
    assert curves["b/y"][0]["env_steps"] == 496 and curves["b/y"][0]["normalized"] == 0.3


def test_records_are_validated(tmp_path):
    good = _record("unizero", ["gym/CartPole-v1"], {"gym/CartPole-v1": (100.0, 5.0)})
    validate_record(good)
    with pytest.raises(ValueError, match=r"missing key\(s\) \['curves'\]"):
        validate_record({k: v for k, v in good.items() if k != "curves"})
    with pytest.raises(ValueError, match="not among its tasks"):
        validate_record({**good, "curves": {"gym/Acrobot-v1": []}})
    with pytest.raises(ValueError, match="lacks"):
        validate_record({**good, "curves": {"gym/CartPole-v1": [{"env_steps": 1}]}})
    with pytest.raises(FileNotFoundError, match="no run directory"):
        load_runs(tmp_path / "missing")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "bad.json").write_text(json.dumps({"schema": 1}))
    with pytest.raises(ValueError, match=r"bad\.json"):
        load_runs(tmp_path / "runs")


def test_table_renders_a_known_run():
    runs = [
        _record("scalezero", ["gym/CartPole-v1", "dmc/cartpole-balance"],
                {"gym/CartPole-v1": (260.0, 10.0), "dmc/cartpole-balance": (300.0, 20.0)}),
        _record("sb3-dqn", ["gym/CartPole-v1"], {"gym/CartPole-v1": (140.0, 4.0)}),
        _record("sb3-dqn", ["gym/CartPole-v1"], {"gym/CartPole-v1": (100.0, 6.0)}, seed=1),
    ]
    table = render_table(runs, title="T", notes=["a note"], task_info=TASK_INFO, reps=500)
    lines = table.splitlines()
    assert lines[0] == "# T" and "- a note" in lines
    assert "| task | random | ScaleZero (MT) | SB3 DQN |" in lines
    # one seed: ± the episode std (ᵉ); two seeds: ± the std over seeds; (normalised score of the mean)
    assert "| gym/CartPole-v1 | 20.0 | 260.0 ± 10.0ᵉ (0.50) | 120.0 ± 20.0 (0.21) |" in lines
    assert "| dmc/cartpole-balance | 0.0 | 300.0 ± 20.0ᵉ (0.30) | — |" in lines
    iqm_row = next(line for line in lines if line.startswith("| **IQM"))
    assert "0.40 [n/a: 1 seed]" in iqm_row  # ScaleZero: IQM of (0.5, 0.3) with one seed
    assert "0.21 [0.17, 0.25] (1 of 2 tasks)" in iqm_row  # DQN: two seeds of one task -> a real interval
    assert "| env steps used (all tasks) |  | 2,000 | 1,000 |" in lines
    assert "| seeds · runs · train time (min, all runs) |  | 1 · 1 · 2.0 | 2 · 2 · 4.0 |" in lines


def test_final_eval_takes_precedence_over_the_curve():
    rec = _record("sb3-sac", ["dmc/cartpole-balance"], {"dmc/cartpole-balance": (300.0, 20.0)})
    rec["final_eval"] = {"dmc/cartpole-balance": {"mean": 800.0, "std": 50.0, "min": 700.0, "max": 900.0,
                                                  "episodes": 10, "normalized": 0.8}}
    table = render_table([rec], task_info=TASK_INFO)
    assert "| dmc/cartpole-balance | 0.0 | 800.0 ± 50.0ᵉ (0.80) |" in table.splitlines()
    assert "IQM" not in table  # one task: no aggregate
    assert "| env steps used (all tasks) |  | 1,000 |" in table  # from the record, not the final evaluation


def test_write_report_writes_table_and_plots(tmp_path):
    runs_dir = tmp_path / "runs"
    for seed in (0, 1):
        write_run(_record("unizero", ["gym/CartPole-v1"], {"gym/CartPole-v1": (200.0 + seed, 3.0)}, seed), runs_dir)
        write_run(_record("unizero", ["dmc/cartpole-balance"], {"dmc/cartpole-balance": (400.0, 3.0)}, seed), runs_dir)
    (tmp_path / "benchmark.json").write_text(json.dumps({"title": "Known", "notes": ["n1"], "task_info": TASK_INFO}))
    paths = write_report(tmp_path, reps=200)
    assert set(paths) == {"table", "curves", "iqm"}
    text = paths["table"].read_text()
    assert text.startswith("# Known\n") and "- n1" in text and "UniZero (ST)" in text
    for key in ("curves", "iqm"):
        data = paths[key].read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000


def test_package_versions_name_the_stack():
    versions = report.package_versions()
    assert versions["numpy"] == np.__version__
    assert versions["python"].count(".") == 2
    assert "torch" in versions and "stable-baselines3" in versions
