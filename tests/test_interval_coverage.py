"""benchmarks/interval_coverage.py at a tiny budget: every scenario and the timing row, the PNG, a refusal."""

import json

import pytest

from benchmarks import interval_coverage


def test_every_scenario_is_a_row_with_its_coverage_and_the_figure_is_drawn(tmp_path, capsys):
    out = tmp_path / "coverage"
    args = ["--studies", "3", "--resamples", "20", "--conditions", "2", "--out", str(out)]
    assert interval_coverage.main(args) == 0
    rows = [json.loads(line) for line in (out / "interval_coverage.jsonl").read_text().splitlines()]
    assert [r["scenario"] for r in rows] == [*interval_coverage.SCENARIOS, "timing"]
    for r in rows[:-1]:
        assert r["coverage"] in (0, 1 / 3, 2 / 3, 1) and r["coverage_low"] <= r["coverage"] <= r["coverage_high"]
    assert abs(rows[1]["pretraining_sd"]) < 1e-9 < rows[0]["pretraining_sd"] < rows[2]["pretraining_sd"]
    assert rows[-1]["runs"] == 2 * 5 * 3 and "coverage" in capsys.readouterr().out
    (out / "interval_coverage.png").unlink()
    assert interval_coverage.main(["--replot", "--out", str(out)]) == 0
    assert (out / "interval_coverage.png").stat().st_size > 0


def test_a_bad_count_is_refused_in_one_line_before_any_study(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        interval_coverage.main(["--studies", "0", "--out", str(tmp_path / "x")])
    assert e.value.code == 2 and capsys.readouterr().err == (
        "error: studies=0 is not allowed; expected an integer with 1 <= studies\n")
    assert not (tmp_path / "x").exists()
