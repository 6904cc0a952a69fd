"""benchmarks/budget_curve.py at a tiny budget: one arm, budgets of 1 and 2 epochs on the smoke profile."""

import json

import pytest

from benchmarks import budget_curve
from medlib.store import RunStore


def test_budgets_end_at_the_longest():
    assert budget_curve.budgets(100, 30) == [30, 60, 90, 100] and budget_curve.budgets(4, 2) == [2, 4]


def test_curve_records_the_monitor_every_epoch_and_the_probe_at_every_budget(real_data, tmp_path, capsys):
    assert budget_curve.main(["--profile", "smoke", "--arms", "tl", "--epochs", "2", "--every", "1",
                              "--out", str(tmp_path / "curve")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "curve" / "budget_curve.jsonl").read_text().splitlines()]
    monitor = [(r["budget"], r["epoch"]) for r in rows if r["kind"] == "monitor"]
    probes = [r for r in rows if r["kind"] == "probe"]
    assert monitor == [(1, 1), (2, 1), (2, 2)] and [r["budget"] for r in probes] == [1, 2]
    assert all(0 <= r["val_auc"] <= 1 and "test_auc" not in r for r in probes)
    assert [r["encoder_views"] for r in probes] == [256, 512]  # TL: one view of each of 256 images per epoch
    assert (tmp_path / "curve" / "budget_curve.png").stat().st_size > 0
    assert "suggested pretrain_epochs:" in capsys.readouterr().out
    assert len(RunStore().runs("pretrain")) == 2  # each budget is a stored pre-training
    (tmp_path / "curve" / "budget_curve.png").unlink()
    assert budget_curve.main(["--replot", "--out", str(tmp_path / "curve")]) == 0  # the PNG from the lines alone
    assert (tmp_path / "curve" / "budget_curve.png").stat().st_size > 0


def test_suggestion_is_the_smallest_budget_near_every_arms_best():
    rows = [{"kind": "probe", "arm": a, "budget": b, "val_auc": v}
            for a, b, v in [("tl", 50, 0.80), ("tl", 100, 0.82), ("tl", 150, 0.821),
                            ("ssl-simclr", 50, 0.70), ("ssl-simclr", 100, 0.75), ("ssl-simclr", 150, 0.78)]]
    assert budget_curve.suggestion(rows, 0.005) == 150 and budget_curve.suggestion(rows, 0.05) == 100


def test_a_bad_budget_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        budget_curve.main(["--profile", "smoke", "--epochs", "2", "--every", "3"])
    assert e.value.code == 2
    assert capsys.readouterr().err.startswith("error: every=3")
