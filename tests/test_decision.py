import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from medlib import decision


def _runs(means: dict, seeds=3, noise=0.01, protocol="linear", **scenario):
    rng = np.random.default_rng(0)
    rows = []
    for arm, mean in means.items():
        for seed in range(seeds):
            rows.append(dict(arm=arm, target="breastmnist", protocol=protocol, seed=seed, label_fraction=None,
                             per_class=None, imbalance_ratio=None, skipped=None)
                        | scenario | {"auc": mean + noise * rng.standard_normal()})
    return pd.DataFrame(rows)


def test_winner_is_the_arm_with_the_highest_mean_and_margin_is_to_the_runner_up():
    df = decision.label_conditions(_runs({"scratch": 0.6, "tl": 0.75, "ssl-simclr": 0.7}))
    table = decision.decision_table(df)
    assert len(table) == 1
    row = table.iloc[0]
    means = df.groupby("arm")["auc"].mean()
    assert row["winner"] == means.idxmax() == "tl" and row["runner_up"] == "ssl-simclr"
    assert row["margin"] == pytest.approx(means["tl"] - means["ssl-simclr"])
    assert row["vs_scratch"] == pytest.approx(means["tl"] - means["scratch"])
    assert row["scenario"] == "all labels" and math.isnan(row["level"])


def test_paired_p_value_matches_scipy():
    a, b = [0.71, 0.74, 0.69, 0.73], [0.70, 0.70, 0.68, 0.69]
    p, diff, d_z, note = decision.paired_test(a, b)
    assert p == pytest.approx(stats.ttest_rel(a, b).pvalue) and note == ""
    d = np.subtract(a, b)
    assert diff == pytest.approx(d.mean()) and d_z == pytest.approx(d.mean() / d.std(ddof=1))
    p_w, *_ = decision.paired_test(a + [0.8, 0.75], b + [0.7, 0.72], test="wilcoxon")
    assert p_w == pytest.approx(stats.wilcoxon(a + [0.8, 0.75], b + [0.7, 0.72]).pvalue)


def test_table_p_value_is_scipys_paired_test_over_seeds():
    df = decision.label_conditions(_runs({"tl": 0.75, "ssl-byol": 0.73}, seeds=4, noise=0.02))
    row = decision.decision_table(df).iloc[0]
    w = df[df["arm"] == row["winner"]].sort_values("seed")["auc"].to_numpy()
    r = df[df["arm"] == row["runner_up"]].sort_values("seed")["auc"].to_numpy()
    assert row["p"] == pytest.approx(stats.ttest_rel(w, r).pvalue)
    assert row["beyond_noise"] == (row["p"] < 0.05)


def test_too_few_seeds_gives_no_test_and_says_so():
    df = decision.label_conditions(_runs({"scratch": 0.6, "tl": 0.7}, seeds=2))
    row = decision.decision_table(df).iloc[0]
    assert math.isnan(row["p"]) and row["beyond_noise"] is None and "too few seeds" in row["note"]
    shown = decision.display_table(decision.decision_table(df))
    assert shown["beyond seed noise"].iloc[0] == "no test (2 seeds)" and shown["p"].iloc[0] == "–"
    assert shown.index[0] == ("breastmnist", "all labels", "Linear probe")


def test_conditions_split_by_scenario_level_and_protocol_and_skipped_rows_are_ignored():
    df = pd.concat([
        _runs({"scratch": 0.6, "tl": 0.7}),
        _runs({"scratch": 0.65, "tl": 0.6}, protocol="finetune"),
        _runs({"scratch": 0.6, "ssl-simclr": 0.8}, label_fraction=0.1),
        _runs({"scratch": 0.7, "ssl-byol": 0.6}, imbalance_ratio=10.0),
        pd.DataFrame([dict(arm="imagenet", target="breastmnist", protocol="linear", seed=0, label_fraction=None,
                           per_class=None, imbalance_ratio=None, skipped="offline", auc=np.nan)]),
    ], ignore_index=True)
    table = decision.decision_table(decision.label_conditions(df))
    assert list(zip(table["scenario"], table["protocol"], table["winner"])) == [
        ("all labels", "linear", "tl"), ("all labels", "finetune", "scratch"),
        ("label fraction", "linear", "ssl-simclr"), ("imbalance", "linear", "scratch")]
    assert table.loc[1, "vs_scratch"] == 0.0
    wins = decision.wins(table)
    assert wins.set_index(["protocol", "arm"]).loc[("linear", "scratch"), "wins"] == 1
    assert list(wins["protocol"]) == ["linear", "linear", "linear", "finetune"]  # protocols kept together
    assert decision.situations(table) == ["all labels", "all labels", "10% of labels", "imbalance 10:1"]
    assert decision.run_counts(decision.label_conditions(df))["runs"].tolist() == [13, 6, 6]


def test_recommendations_count_from_the_table():
    df = decision.label_conditions(pd.concat([_runs({"scratch": 0.6, "tl": 0.9}, noise=0.001),
                                              _runs({"scratch": 0.6, "tl": 0.9}, noise=0.001, label_fraction=0.1)]))
    table = decision.decision_table(df)
    text = decision.recommendations(table, decision.compare_arms(df, "tl", ["scratch"]))
    assert "Over 2 conditions" in text and "TL (supervised) 2" in text
    assert "in 2 of them the winner's margin" in text
    assert "beats scratch in 2 of 2" in text


def test_summary_figure_and_condition_figure_draw(tmp_path):
    df = decision.label_conditions(pd.concat([_runs({"scratch": 0.6, "tl": 0.7}),
                                              _runs({"scratch": 0.6, "tl": 0.8}, label_fraction=0.1),
                                              _runs({"scratch": 0.6, "tl": 0.75}, label_fraction=0.5)]))
    table = decision.decision_table(df)
    gain = decision.gain_matrix(df, table)
    assert gain.loc[gain.index[0], "scratch"] == 0 and gain.shape == (3, 2)
    decision.plot_summary(df, table).savefig(tmp_path / "s.png")
    decision.plot_condition(df, "breastmnist", "label fraction", "linear", "tl").savefig(tmp_path / "c.png")
    box = decision.explorer(df)
    assert len(box.children) == 3
    first_png = box.children[2].value
    assert first_png[:8] == b"\x89PNG\r\n\x1a\n"
    box.children[0].children[2].value = "tl"  # highlight another arm: the figure is redrawn
    assert box.children[2].value != first_png


def test_findings_state_the_tables_numbers_in_words():
    df = decision.label_conditions(pd.concat([_runs({"scratch": 0.6, "tl": 0.75, "ssl-simclr": 0.7}),
                                              _runs({"scratch": 0.8, "tl": 0.7}, seeds=2, protocol="finetune")]))
    table = decision.decision_table(df)
    text = decision.findings(table)
    lin = table[table["protocol"] == "linear"].iloc[0]
    assert f"TL (supervised) leads with AUC {lin['auc']:.3f} ± {lin['auc_std']:.3f}" in text
    assert f"{lin['margin']:.3f} ahead of SSL SimCLR (p = {lin['p']:.3f}, beyond seed noise)" in text
    assert f"{lin['vs_scratch']:+.3f} over scratch (p < 0.001, beyond seed noise)" in text
    assert "no pre-trained arm beats training from scratch" in text  # the fine-tuning condition
    assert "no paired test: too few seeds for a test (2 < 3)" in text


def test_findings_name_a_tie_and_do_not_repeat_scratch_as_runner_up():
    df = decision.label_conditions(pd.concat([_runs({"scratch": 0.5, "tl": 0.5}, noise=0.0),
                                              _runs({"scratch": 0.6, "tl": 0.7}, protocol="finetune")]))
    text = decision.findings(decision.decision_table(df))
    assert "Scratch (random init) and TL (supervised) tie at AUC 0.500" in text
    assert "ahead of Scratch (random init)" in text and "over scratch" not in text


def test_study_configs_do_not_count_the_head_to_head_twice():
    """A label fraction of 1 on a head-to-head target is the head-to-head run again: left out of the study."""
    from medlib.profiles import parameters

    P = parameters(profile="smoke", targets=["breastmnist"], target="breastmnist", label_fractions=[0.1, 1.0])
    keys = [(c.arm, c.protocol, c.seed, c.label_fraction, c.imbalance_ratio) for c in decision.study_configs(P)]
    assert len(keys) == len(set(keys))
    assert not any(c.label_fraction == 1.0 for c in decision.study_configs(P))
    assert any(c.label_fraction == 0.1 for c in decision.study_configs(P))
    other = parameters(profile="smoke", targets=["pneumoniamnist"], target="breastmnist", label_fractions=[1.0])
    assert any(c.label_fraction == 1.0 for c in decision.study_configs(other))
