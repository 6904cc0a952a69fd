import math

import numpy as np
import pandas as pd
import pytest

from benchmarks.interval_coverage import simulate
from medlib import decision, plots, prose, stats, tables
from medlib.validation import ParameterError

B = 400  # resamples: enough for these tests, quick on a shared CPU


def _runs(means: dict, seeds=3, protocol="linear", rng_seed=0, pretrainings=None, **scenario):
    """Simulated runs of one condition (every arm with ``seeds`` pre-trainings, or ``pretrainings`` with
    ``seeds`` adaptations each) and their predictions, as :func:`decision.decision_table` takes them."""
    columns = dict(protocol=protocol, label_fraction=None, per_class=None, imbalance_ratio=None,
                   label_noise=None) | scenario
    rng = np.random.default_rng(rng_seed)
    if pretrainings is None:
        return simulate(rng, means, pretrainings=seeds, tau=0.1, **columns)
    return simulate(rng, means, pretrainings=pretrainings, adaptations=seeds, tau=0.1, **columns)


def _study(*parts):
    runs = decision.label_conditions(pd.concat([r for r, _ in parts], ignore_index=True))
    scores = {k: v for _, p in parts for k, v in p.items()}
    return runs, scores


def _table(runs, scores, metric="auc", **kw):
    return decision.decision_table(runs, metric, resamples=B, predictions=scores, **kw)


def test_winner_is_the_arm_with_the_highest_mean_and_margin_is_to_the_runner_up():
    df, scores = _study(_runs({"scratch": 0.4, "tl": 1.2, "ssl-simclr": 0.9}))
    table = _table(df, scores)
    assert len(table) == 1
    row = table.iloc[0]
    means = df.groupby("arm")["auc"].mean()
    assert row["winner"] == means.idxmax() == "tl" and row["runner_up"] == "ssl-simclr"
    assert row["margin"] == pytest.approx(means["tl"] - means["ssl-simclr"])
    assert row["vs_scratch"] == pytest.approx(means["tl"] - means["scratch"])
    assert row["auc_std"] == pytest.approx(df[df["arm"] == "tl"]["auc"].std(ddof=1))
    assert row["ci_low"] < row["auc"] < row["ci_high"] and row["margin_low"] < row["margin"] < row["margin_high"]
    assert row["scenario"] == "all labels" and math.isnan(row["level"])


def test_table_p_is_the_paired_bootstrap_and_calls_come_from_holm_over_conditions():
    df, scores = _study(_runs({"tl": 1.3, "ssl-byol": 0.5}), _runs({"tl": 1.0, "ssl-byol": 0.7}, label_fraction=0.1),
                        _runs({"tl": 1.0, "ssl-byol": 1.02}, label_fraction=0.5, rng_seed=1))
    table = _table(df, scores)
    reps = decision.replicates(df, predictions=scores, resamples=B)
    expected = [stats.paired(r, w, o)["p"] for r, w, o in zip(reps.values(), table["winner"], table["runner_up"])]
    assert table["p"].tolist() == pytest.approx(expected)
    assert table["p_adjusted"].tolist() == pytest.approx(stats.adjust(expected, "holm").tolist())
    assert table["beyond_noise"].tolist() == [q < 0.05 for q in table["p_adjusted"]]
    assert table["beyond_noise"].iloc[0] and not table["beyond_noise"].iloc[2]
    assert table["p"].iloc[1] < 0.05 and not table["beyond_noise"].iloc[1]  # called before Holm, not after
    assert table["verdict"].tolist() == ["TL (supervised) ahead", stats.UNDECIDED, stats.UNDECIDED]
    bh = _table(df, scores, correction="bh")
    assert bh["p_adjusted"].tolist() == pytest.approx(stats.adjust(expected, "bh").tolist())


def test_one_pretraining_per_arm_is_shown_as_leaving_out_pretraining_variance():
    df, scores = _study(_runs({"scratch": 0.6, "tl": 1.0}, pretrainings=1))
    table = _table(df, scores)
    assert table["pretrainings"].iloc[0] == 1 and table["pretraining_in_ci"].iloc[0] == False  # noqa: E712
    shown = tables.display_table(table)
    assert shown["pre-trainings"].iloc[0] == "1: not in CI"
    assert shown.index[0] == ("breastmnist", "all labels", "Linear probe")
    assert "one pre-training, so without pre-training variance" in prose.findings(table)
    assert "In 1 of 1 conditions a pre-trained arm has one pre-training" in prose.recommendations(table)
    note = decision.compare_arms(df, "tl", ["scratch"], resamples=B, predictions=scores)["note"].iloc[0]
    assert "pre-training variance not in the interval" in note
    df3, scores3 = _study(_runs({"scratch": 0.6, "tl": 1.0}))
    assert tables.display_table(_table(df3, scores3))["pre-trainings"].iloc[0] == "3"


def test_bad_correction_or_alpha_is_refused_before_any_resampling():
    df, _ = _study(_runs({"scratch": 0.6, "tl": 1.0}))
    with pytest.raises(ParameterError, match="correction='bonferroni' is not allowed"):
        decision.decision_table(df, correction="bonferroni", predictions={})  # no predictions: never read
    with pytest.raises(ParameterError, match="alpha"):
        decision.compare_arms(df, "tl", ["scratch"], alpha=5, predictions={})


def test_display_table_puts_the_decision_first_with_short_headers():
    df, scores = _study(_runs({"scratch": 0.6, "tl": 1.0}))
    shown = tables.display_table(_table(df, scores), decimals=2)
    assert list(shown.columns)[:7] == ["leader", "AUC", "95% CI", "margin", "margin CI", "p (Holm)", "verdict"]
    assert max(len(c) for c in shown.columns) <= 13
    assert shown["95% CI"].iloc[0].count(" to ") == 1
    assert shown["leader"].iloc[0] == "TL" and shown["runner-up"].iloc[0] == "Scratch"
    assert shown["verdict"].iloc[0] in ("TL ahead", "not decided")
    assert max(len(v) for v in shown.reset_index().astype(str).to_numpy().ravel()) <= 14  # narrow cells


def test_conditions_split_by_scenario_level_and_protocol_and_skipped_rows_are_ignored():
    df, scores = _study(
        _runs({"scratch": 0.6, "tl": 1.0}),
        _runs({"scratch": 0.8, "tl": 0.6}, protocol="finetune"),
        _runs({"scratch": 0.6, "ssl-simclr": 1.2}, label_fraction=0.1),
        _runs({"scratch": 1.0, "ssl-byol": 0.6}, imbalance_ratio=10.0),
        (pd.DataFrame([dict(arm="imagenet", target="breastmnist", protocol="linear", seed=0, label_fraction=None,
                            per_class=None, imbalance_ratio=None, skipped="offline", auc=np.nan)]), {}))
    table = _table(df, scores)
    assert list(zip(table["scenario"], table["protocol"], table["winner"])) == [
        ("all labels", "linear", "tl"), ("all labels", "finetune", "scratch"),
        ("label fraction", "linear", "ssl-simclr"), ("imbalance", "linear", "scratch")]
    assert table.loc[1, "vs_scratch"] == 0.0
    wins = tables.wins(table)
    assert wins.set_index(["protocol", "arm"]).loc[("linear", "scratch"), "wins"] == 1
    assert list(wins["protocol"]) == ["linear", "linear", "linear", "finetune"]  # protocols kept together
    assert tables.situations(table) == ["all labels", "all labels", "10% of labels", "imbalance 10:1"]
    assert tables.run_counts(df)["runs"].tolist() == [13, 6, 6]


def test_recommendations_say_ahead_only_where_the_corrected_test_calls_it():
    df, scores = _study(_runs({"scratch": 0.3, "tl": 1.6}), _runs({"scratch": 0.3, "tl": 1.6}, label_fraction=0.1),
                        _runs({"scratch": 1.0, "tl": 1.01}, label_fraction=0.5))
    table = _table(df, scores)
    assert table["beyond_noise"].tolist() == [True, True, False]
    text = prose.recommendations(table, decision.compare_arms(df, "tl", ["scratch"], resamples=B,
                                                                 predictions=scores))
    assert "Over 3 conditions" in text and "in 2 of 3 conditions (TL (supervised) 2)" in text
    assert f"the other 1 are {stats.UNDECIDED}" in text
    assert "called ahead of scratch in 2 of 3" in text
    assert f"TL (supervised) ahead in 2, Scratch (random init) ahead in 0, {stats.UNDECIDED} in 1" in text


def test_compare_arms_gives_intervals_corrected_p_and_verdicts():
    df, scores = _study(_runs({"tl": 0.5, "ssl-simclr": 1.5, "ssl-byol": 0.52}))
    out = decision.compare_arms(df, "tl", ["ssl-simclr", "ssl-byol"], resamples=B, predictions=scores)
    assert out["other"].tolist() == ["ssl-simclr", "ssl-byol"]
    assert out["p_adjusted"].tolist() == pytest.approx(stats.adjust(out["p"], "holm").tolist())
    assert out["verdict"].tolist() == ["SSL SimCLR ahead", stats.UNDECIDED]
    assert (out["ci_low"] <= out["difference"]).all() and (out["difference"] <= out["ci_high"]).all()
    assert out["note"].tolist() == ["", ""]


def test_summary_figure_and_condition_figure_draw(tmp_path):
    df, scores = _study(_runs({"scratch": 0.6, "tl": 1.0}), _runs({"scratch": 0.6, "tl": 1.4}, label_fraction=0.1),
                        _runs({"scratch": 0.6, "tl": 1.2}, label_fraction=0.5))
    table = _table(df, scores)
    gain = decision.gain_matrix(df, table)
    assert gain.loc[gain.index[0], "scratch"] == 0 and gain.shape == (3, 2)
    plots.plot_summary(decision.gain_matrix(df, table), table).savefig(tmp_path / "s.png")
    plots.plot_condition(df, "breastmnist", "label fraction", "linear", "tl").savefig(tmp_path / "c.png")
    box = plots.explorer(df)
    assert len(box.children) == 3
    first_png = box.children[2].value
    assert first_png[:8] == b"\x89PNG\r\n\x1a\n"
    box.children[0].children[2].value = "tl"  # highlight another arm: the figure is redrawn
    assert box.children[2].value != first_png


def test_findings_state_the_tables_numbers_in_words():
    df, scores = _study(_runs({"scratch": 0.3, "tl": 1.6, "ssl-simclr": 0.6}),
                        _runs({"scratch": 1.0, "tl": 0.99}, protocol="finetune"))
    table = _table(df, scores)
    text = prose.findings(table)
    lin = table[table["protocol"] == "linear"].iloc[0]
    assert (f"TL (supervised) leads with AUC {lin['auc']:.3f} ± {lin['auc_std']:.3f} "
            f"(95 % CI {lin['ci_low']:.3f} to {lin['ci_high']:.3f})") in text
    q = lin["p_adjusted"]
    assert q < 0.05 and f"{lin['margin']:.3f} ahead of SSL SimCLR (corrected p " in text
    assert f"(corrected p {'< 0.001' if q < 0.001 else f'= {q:.3f}'}, called)" in text
    assert f"{lin['vs_scratch']:+.3f} over scratch (corrected p < 0.001, called)" in text
    fine = table[table["protocol"] == "finetune"].iloc[0]
    assert f"(corrected p = {fine['p_adjusted']:.3f}, {stats.UNDECIDED})" in text
    assert "no pre-trained arm has a higher mean than training from scratch" in text


def test_the_headline_reads_the_hardest_level_and_calls_only_what_correction_calls():
    """The opening sentence of a scenario chapter: the hardest level of its scenario (the highest noise rate,
    the smallest label fraction), the leader with its interval, and its lead called or not as the table says."""
    df, scores = _study(_runs({"scratch": 1.0, "tl": 0.3}, label_noise=0.1, rng_seed=1),
                        _runs({"scratch": 0.3, "tl": 1.6}, label_noise=0.4, rng_seed=2),
                        _runs({"scratch": 1.0, "tl": 0.99}, label_noise=0.4, protocol="finetune", rng_seed=3))
    table = _table(df, scores)
    text = prose.headline(table)
    lin = table[(table["protocol"] == "linear") & (table["level"] == 0.4)].iloc[0]
    assert text.startswith(f"At 40% of train labels flipped on {lin['target']} under linear probe, TL (supervised) "
                           f"has the highest mean test AUC ({lin['auc']:.2f}, 95 % CI {lin['ci_low']:.2f} to "
                           f"{lin['ci_high']:.2f}), a lead over Scratch (random init) that is called")
    assert "10%" not in text and text.count(". ") + 1 == 2  # the hardest level only, a sentence per protocol
    assert text.endswith(f"is {stats.UNDECIDED}.")  # fine-tuning: means 1.0 and 0.99, a tie in all but name
    assert prose.headline(table.iloc[:0]) == "No stored results for this chapter's grid yet."


def test_findings_name_a_tie_and_do_not_repeat_scratch_as_runner_up():
    tie, tie_scores = _runs({"scratch": 0.5})
    twin = tie.assign(arm="tl", pretrain_seed=tie["seed"].astype(float))
    df, scores = _study((pd.concat([tie, twin]), tie_scores), _runs({"scratch": 0.6, "tl": 1.0}, protocol="finetune"))
    text = prose.findings(_table(df, scores))
    assert "Scratch (random init) and TL (supervised) tie at AUC" in text
    assert "ahead of Scratch (random init)" in text and "over scratch" not in text


def test_tables_read_the_runs_predictions_from_the_store(real_data, one_thread):
    from medlib.experiment import run_grid
    from medlib.profiles import parameters
    from medlib.study import adapt_configs

    P = parameters(profile="smoke", max_train_images=32, seeds=[0, 1])
    runs = decision.label_conditions(run_grid(adapt_configs(P, "breastmnist", arms=["scratch"],
                                                            protocols=["linear"]), progress=False))
    assert runs["pretrain_seed"].isna().all() and runs["run"].str.len().eq(16).all()
    row = decision.decision_table(runs, "balanced_acc", resamples=50).iloc[0]  # predictions from the run store
    assert row["balanced_acc"] == pytest.approx(runs["balanced_acc"].mean())
    assert row["ci_low"] <= row["balanced_acc"] <= row["ci_high"] and row["pretraining_in_ci"] is None


def test_study_configs_do_not_count_the_head_to_head_twice():
    """A label fraction of 1 on a head-to-head target is the head-to-head run again: left out of the study."""
    from medlib.profiles import parameters

    P = parameters(profile="smoke", targets=["breastmnist"], target="breastmnist", label_fractions=[0.1, 1.0])
    keys = [(c.arm, c.protocol, c.seed, c.label_fraction, c.imbalance_ratio, c.label_noise)
            for c in decision.study_configs(P)]
    assert len(keys) == len(set(keys))
    assert not any(c.label_fraction == 1.0 for c in decision.study_configs(P))
    assert any(c.label_fraction == 0.1 for c in decision.study_configs(P))
    other = parameters(profile="smoke", targets=["pneumoniamnist"], target="breastmnist", label_fractions=[1.0])
    assert any(c.label_fraction == 1.0 for c in decision.study_configs(other))
    noise = [c.label_noise for c in decision.study_configs(P) if c.label_noise is not None]
    assert set(noise) == {0.4}  # rate 0 is the head-to-head run itself
    assert decision.label_conditions(pd.DataFrame([{"label_noise": 0.4}]))["scenario"].tolist() == ["label noise"]


def test_the_answer_table_gives_each_arm_its_mean_and_interval_under_all_labels_only():
    df, scores = _study(_runs({"scratch": 0.3, "tl": 1.0, "ssl-simclr": 1.4}),
                        _runs({"scratch": 0.3, "tl": 1.0, "ssl-simclr": 1.4}, protocol="finetune", rng_seed=1),
                        _runs({"scratch": 0.3, "tl": 1.0}, label_fraction=0.1, rng_seed=2))
    out = tables.answer_table(decision.arm_intervals(df, resamples=B, predictions=scores))
    ci = stats.intervals(decision.replicates(df[df["scenario"] == "all labels"], predictions=scores, resamples=B),
                         decision.CONDITION)
    assert out.index.tolist() == [(p, a) for p in ("Linear probe", "Fine-tuning")
                                  for a in ("Scratch", "TL", "SSL SimCLR")]
    assert len(out.columns) == 1  # one target; no label-fraction rows
    first = ci[(ci["protocol"] == "linear") & (ci["arm"] == "tl")].iloc[0]
    cell = out.loc[("Linear probe", "TL")].iloc[0]
    assert cell == f"{first['mean']:.2f} ({first['ci_low']:.2f}-{first['ci_high']:.2f})"


def test_the_answer_counts_only_corrected_calls_and_says_when_pretraining_variance_is_left_out():
    df, scores = _study(_runs({"tl": 0.3, "ssl-simclr": 1.6}),
                        _runs({"tl": 1.0, "ssl-simclr": 1.01}, protocol="finetune"))
    table = _table(df, scores)
    comparisons = decision.compare_arms(df, "tl", ["ssl-simclr"], resamples=B, predictions=scores)
    text = prose.answer(table, comparisons, "quick")
    assert table["beyond_noise"].tolist() == [True, False]
    assert table["winner"].iloc[0] == "ssl-simclr"
    assert ("after a Holm correction the evidence calls the leader's margin in 1 of them (SSL SimCLR in 1)."
            in text)
    assert "TL is ahead of SSL SimCLR in 0, behind in 1 and not decided in 1 of 2." in text
    assert text.endswith("with one pre-training per seed in every interval.")
    single, scores1 = _study(_runs({"tl": 0.3, "ssl-simclr": 1.6}, pretrainings=1))
    text = prose.answer(_table(single, scores1), decision.compare_arms(single, "tl", [], resamples=B,
                                                                          predictions=scores1), "quick")
    assert "TL or the self-supervised arms did not run" in text and "leave out pre-training variance" in text
