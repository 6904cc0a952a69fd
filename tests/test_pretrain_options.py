"""benchmarks/pretrain_options.py at a tiny budget: SimCLR's temperature at two values on the smoke profile."""

import json

import pytest

from benchmarks import pretrain_options
from medlib.store import RunStore


def test_sweep_stores_a_pretraining_per_value_and_prints_the_choice(real_data, tmp_path, capsys):
    out = tmp_path / "temperature"
    assert pretrain_options.main(["--profile", "smoke", "--arms", "ssl-simclr", "tl", "--option", "temperature",
                                  "--values", "0.5", "0.2", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "pretrain_options.jsonl").read_text().splitlines()]
    assert [(r["arm"], r["option"], r["value"], r["default"]) for r in rows] == [
        ("ssl-simclr", "temperature", 0.2, 0.5), ("ssl-simclr", "temperature", 0.5, 0.5)]
    assert all(0 <= r["val_auc"] <= 1 and "test_auc" not in r for r in rows)
    assert [r["config"].get("options") for r in RunStore().runs("pretrain")] in ([[["temperature", 0.2]], None],
                                                                               [None, [["temperature", 0.2]]])
    printed = capsys.readouterr().out
    assert "tl have no such option" in printed and "chosen pretrain_options: {'ssl-simclr': {'temperature': " in printed
    assert pretrain_options.main(["--replot", "--out", str(out)]) == 0 and (out / "pretrain_options.png").exists()


def test_the_choice_keeps_the_default_unless_another_value_is_clearly_better():
    rows = [{"arm": a, "option": o, "value": v, "default": d, "val_auc": auc}
            for a, o, d, v, auc in [("ssl-simclr", "temperature", 0.5, 0.2, 0.803), ("ssl-simclr", "temperature", 0.5, 0.5, 0.80),
                                    ("ssl-byol", "momentum", 0.99, 0.99, 0.70), ("ssl-byol", "momentum", 0.99, 0.996, 0.75)]]
    assert pretrain_options.choice(rows, 0.005) == {"ssl-simclr": {"temperature": 0.5}, "ssl-byol": {"momentum": 0.996}}
    assert pretrain_options.choice(rows, 0.0)["ssl-simclr"] == {"temperature": 0.2}


@pytest.mark.parametrize("argv, message", [
    (["--arms", "tl", "ssl-vicreg"], "error: option='temperature': no arm of ['tl', 'ssl-vicreg'] has it"),
    (["--option", "momentum", "--values", "0.99", "1"], "error: values['momentum']=1.0 is not allowed"),
    (["--replot", "--out", "nowhere"], "error: no pretrain_options.jsonl in nowhere to replot")])
def test_bad_options_are_one_line_before_any_pretraining(argv, message, capsys):
    with pytest.raises(SystemExit):
        pretrain_options.main(["--profile", "smoke", *argv])
    assert capsys.readouterr().err.startswith(message)
