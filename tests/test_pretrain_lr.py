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


def test_a_rate_that_diverges_is_a_row_and_the_sweep_goes_on(monkeypatch, tmp_path, capsys):
    """A NaN loss at one rate (medlib.pretrain.NonFiniteLoss) is recorded as diverged, never chosen, drawn as a gap
    and tabled as "diverged"; the other rates are still measured and chosen from."""
    from medlib.pretrain import NonFiniteLoss

    def fake(P, arm, target, store):
        lr = P.pretrain_lrs[arm]
        if lr > get(arm).lr:
            raise NonFiniteLoss(f"{arm} pre-training loss became nan in epoch 3")
        history = [{"knn_acc": 0.5 + lr, "loss": 1.0}]
        return ({"history": history, "seconds": 1.0, "device": "cpu", "precision": "fp32"}, {"val_auc": 0.7 + lr})

    monkeypatch.setattr(pretrain_lr, "pretrain_and_probe", fake)
    out = tmp_path / "lr"
    assert pretrain_lr.main(["--profile", "smoke", "--arms", "ssl-vicreg", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "pretrain_lr.jsonl").read_text().splitlines()]
    assert [r["scale"] for r in rows] == [0.5, 1.0, 2.0]
    assert rows[2]["val_auc"] is None and "epoch 3" in rows[2]["diverged"] and "diverged" not in rows[1]
    printed = capsys.readouterr().out
    assert "ssl-vicreg lr 0.04 (x2): diverged: ssl-vicreg pre-training loss became nan in epoch 3" in printed
    assert "| diverged |" in printed and "chosen pretrain_lrs: {'ssl-vicreg': 0.02}" in printed
    assert (out / "pretrain_lr.png").stat().st_size > 0
    every = [dict(r, val_auc=None) for r in rows]
    assert pretrain_lr.choice(every, 0.005) == {} and "(every value diverged)" in pretrain_lr.table(every, 0.005)
