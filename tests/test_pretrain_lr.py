"""benchmarks/pretrain_lr.py at a tiny budget: one arm, two rates on the smoke profile."""

import json

import pytest

from benchmarks import pretrain_lr
from medlib.methods import get
from medlib.store import RunStore


def test_sweep_stores_a_pretraining_and_a_probe_per_rate_and_prints_the_choice(real_data, tmp_path, capsys):
    out = tmp_path / "lr"
    assert pretrain_lr.main(["--profile", "smoke", "--arms", "tl", "--scales", "1", "0.5", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "pretrain_lr.jsonl").read_text().splitlines()]
    assert [(r["arm"], r["scale"], r["lr"]) for r in rows] == [("tl", 0.5, get("tl").lr / 2), ("tl", 1.0, get("tl").lr)]
    assert all(0 <= r["val_auc"] <= 1 and "test_auc" not in r for r in rows)
    runs = RunStore().runs("pretrain")
    assert sorted(r["config"]["lr"] for r in runs) == [get("tl").lr / 2, get("tl").lr]  # one stored run per rate
    assert "chosen pretrain_lrs: {'tl': " in capsys.readouterr().out
    (out / "pretrain_lr.png").unlink()
    assert pretrain_lr.main(["--replot", "--out", str(out)]) == 0 and (out / "pretrain_lr.png").stat().st_size > 0


def test_the_choice_keeps_the_methods_own_rate_unless_another_is_clearly_better():
    rows = [{"arm": a, "scale": s, "lr": 0.06 * s, "val_auc": v}
            for a, s, v in [("tl", 0.5, 0.80), ("tl", 1.0, 0.797), ("tl", 2.0, 0.79),
                            ("ssl-simclr", 0.5, 0.70), ("ssl-simclr", 1.0, 0.72), ("ssl-simclr", 2.0, 0.75)]]
    assert pretrain_lr.choice(rows, 0.005) == {"tl": 0.06, "ssl-simclr": 0.12}
    assert pretrain_lr.choice(rows, 0.0) == {"tl": 0.03, "ssl-simclr": 0.12}


def test_an_arm_that_does_not_train_is_refused_in_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        pretrain_lr.main(["--profile", "smoke", "--arms", "fusion"])
    assert e.value.code == 2 and capsys.readouterr().err.startswith("error: arms=['fusion'] contains 'fusion'")
