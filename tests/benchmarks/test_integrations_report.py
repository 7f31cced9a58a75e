"""The integration benchmark's report: mean env steps to 475 per framework and the +-20% verdict."""

from __future__ import annotations

import json

import integrations
import pytest


def _record(framework: str, seed: int, to_475: int | None, budget: int = 50_000) -> dict:
    history = [{"env_steps": 5_000, "mean": 200.0, "updates": 1_000, "train_time": 100.0}]
    return {"framework": framework, "seed": seed, "budget": budget, "env_steps_to_195": 5_000,
            "env_steps_to_475": to_475, "wall": 150.0, "history": history}


def _summary_rows(text: str) -> dict[str, list[str]]:
    summary = text.split("\n\n")[1].splitlines()[2:]
    return {cells[0]: cells[1:] for cells in ([c.strip() for c in row.strip("|").split("|")] for row in summary)}


def test_report_ratio_and_verdict_against_native() -> None:
    records = [_record("native", s, n) for s, n in enumerate((10_000, 20_000, 15_000))]
    records += [_record("sb3", s, n) for s, n in enumerate((12_500, 20_000, 17_500))]  # mean 16,667: x1.11
    records += [_record("tianshou", s, n) for s, n in enumerate((20_000, 25_000, 22_500))]  # mean 22,500: x1.50
    rows = _summary_rows(integrations.report(records))
    assert rows["native"] == ["0 1 2", "15,000", "1.00", "-"]
    assert rows["sb3"] == ["0 1 2", "16,667", "1.11", "yes"]
    assert rows["tianshou"] == ["0 1 2", "22,500", "1.50", "no"]


def test_a_run_that_never_reaches_475_counts_its_budget_and_fails() -> None:
    records = [_record("native", 0, 20_000), _record("sb3", 0, None, budget=22_000)]
    text = integrations.report(records)
    assert "not in 22,000" in text
    assert _summary_rows(text)["sb3"] == ["0", ">= 22,000", "1.10", "no"]  # inside +-20%, but not reached


def test_report_cli_reads_the_records_and_writes_table(tmp_path, capsys) -> None:
    for r in (_record("native", 0, 10_000), _record("tianshou", 0, 11_000)):
        (tmp_path / f"{r['framework']}_s0.json").write_text(json.dumps(r))
    assert integrations.main(["--report", "--out", str(tmp_path)]) == 0
    table = (tmp_path / "table.md").read_text()
    assert _summary_rows(table)["tianshou"][2:] == ["1.10", "yes"]
    assert "| native | 0 | 5,000 | 10,000 | 150 | 50.0 | 10.00 |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        integrations.main(["--report", "--out", str(tmp_path / "missing")])
