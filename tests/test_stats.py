import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from benchmarks.interval_coverage import coverage, simulate
from medlib import stats
from medlib.metrics import evaluate
from medlib.validation import ParameterError


@pytest.mark.parametrize("task,k", [("binary-class", 2), ("multi-class", 4), ("multi-label, binary-class", 3)])
def test_resampled_metrics_are_medmnists_on_the_drawn_images(task, k):
    rng = np.random.default_rng(0)
    n = 120
    y = rng.integers(0, 2, (n, k)) if task.startswith("multi-label") else rng.integers(0, k, (n, 1))
    score = np.round(rng.random((n, k)), 1)  # ties
    pred = stats.Prediction(y, score, task)
    counts = stats.image_counts(y, task, 3, rng)
    draws = np.hstack([np.ones((n, 1), dtype=np.float32), counts])
    for metric in ["auc", "acc"] + ([] if task.startswith("multi-label") else ["balanced_acc", "macro_f1",
                                                                                "minority_recall"]):
        got = stats.resampled_metric(metric, pred, draws)
        for b in range(draws.shape[1]):
            index = np.repeat(np.arange(n), draws[:, b].astype(int))
            assert got[b] == pytest.approx(evaluate(y[index], score[index], task)[metric], abs=1e-9), (metric, b)


def test_image_draws_keep_each_class_size():
    y = np.r_[np.zeros(30, int), np.ones(12, int)].reshape(-1, 1)
    counts = stats.image_counts(y, "binary-class", 50, np.random.default_rng(0))
    assert (counts[:30].sum(0) == 30).all() and (counts[30:].sum(0) == 12).all()
    assert len({tuple(c) for c in counts.T}) == 50


def test_two_stage_seed_draws():
    w = stats.seed_weights([0, 0, 0, 1, 1, 1], 2000, np.random.default_rng(0))
    assert (w.sum(1) == 6).all()
    per_unit = np.c_[w[:, :3].sum(1), w[:, 3:].sum(1)]
    assert set(map(tuple, per_unit)) == {(0, 6), (3, 3), (6, 0)}  # whole pre-trainings are drawn first
    assert len({tuple(r) for r in w[:, :3][per_unit[:, 0] == 6]}) > 5  # then seeds within them
    one = stats.seed_weights([7, 7, 7], 100, np.random.default_rng(0))
    assert (one.sum(1) == 3).all() and one.std() > 0


def test_the_95_interval_covers_the_truth_in_simulated_studies():
    """200 simulated studies (3 pre-trainings, BreastMNIST's 42 + 114 test images, pre-training s.d. about
    0.06 AUC): the interval holds the true mean AUC in 90-99 % (benchmarks/interval_coverage.py measures the
    other scenarios)."""
    row = coverage("3 pre-trainings, pre-training s.d. near 0.06 AUC", studies=200, resamples=400)
    assert 0.90 <= row["coverage"] <= 0.99


def test_paired_draws_keep_pairs():
    """Two arms with the same predictions differ by exactly 0 in every replicate, however much each varies."""
    runs, scores = simulate(np.random.default_rng(1), {"tl": 1.0})
    twin = runs.assign(arm="ssl-simclr")
    r = stats.bootstrap(pd.concat([runs, twin]), scores, resamples=300)[()]
    assert r.replicates[0].std() > 0.01
    np.testing.assert_array_equal(r.replicates[0], r.replicates[1])
    row = stats.paired(r, "tl", "ssl-simclr")
    assert row["difference"] == row["ci_low"] == row["ci_high"] == 0 and row["p"] == 1.0


def test_paired_difference_interval_p_and_effect_size():
    runs, scores = simulate(np.random.default_rng(2), {"tl": 0.6, "ssl-simclr": 1.6}, tau=0.1)
    r = stats.bootstrap(runs, scores, resamples=1000)[()]
    row = stats.paired(r, "ssl-simclr", "tl")
    means = runs.groupby("arm")["auc"].mean()
    assert row["difference"] == pytest.approx(means["ssl-simclr"] - means["tl"])
    assert 0 < row["ci_low"] < row["difference"] < row["ci_high"] and row["p"] < 0.001
    d = (runs[runs["arm"] == "ssl-simclr"]["auc"].to_numpy() - runs[runs["arm"] == "tl"]["auc"].to_numpy())
    assert row["d_z"] == pytest.approx(d.mean() / d.std(ddof=1)) and row["seeds"] == 3
    assert row["p"] == pytest.approx(2 * norm.sf(row["difference"] / row["se"]))


def test_one_pretraining_is_flagged():
    runs, scores = simulate(np.random.default_rng(3), {"scratch": 0.5, "tl": 1.0}, pretrainings=1, adaptations=3)
    reps = stats.bootstrap(runs, scores, resamples=200)
    ci = stats.intervals(reps).set_index("arm")
    assert ci.loc["tl", "pretrainings"] == 1 and ci.loc["tl", "pretraining_in_ci"] is False
    assert ci.loc["scratch", "pretraining_in_ci"] is None
    assert stats.compare(reps, "tl", ["scratch"]).iloc[0]["pretraining_in_ci"] == False  # noqa: E712
    runs, scores = simulate(np.random.default_rng(3), {"scratch": 0.5, "tl": 1.0}, pretrainings=3)
    reps = stats.bootstrap(runs, scores, resamples=200)
    assert stats.intervals(reps).set_index("arm").loc["tl", "pretraining_in_ci"] is True
    assert stats.compare(reps, "tl", ["scratch"]).iloc[0]["pretraining_in_ci"] == True  # noqa: E712


def test_bootstrap_is_deterministic_and_each_condition_independent_of_the_others():
    rng = np.random.default_rng(4)
    a, sa = simulate(rng, {"tl": 1.0, "ssl-byol": 1.1}, protocol="linear")
    b, sb = simulate(rng, {"tl": 1.0, "ssl-byol": 1.1}, protocol="finetune")
    both, scores = pd.concat([a, b]), sa | sb
    first = stats.bootstrap(both, scores, by=["protocol"], resamples=200, seed=5)
    again = stats.bootstrap(both, scores, by=["protocol"], resamples=200, seed=5)
    alone = stats.bootstrap(b, sb, by=["protocol"], resamples=200, seed=5)
    other = stats.bootstrap(both, scores, by=["protocol"], resamples=200, seed=6)
    np.testing.assert_array_equal(first[("linear",)].replicates, again[("linear",)].replicates)
    np.testing.assert_array_equal(first[("finetune",)].replicates, alone[("finetune",)].replicates)
    assert not np.array_equal(first[("linear",)].replicates, other[("linear",)].replicates)


def test_predictions_must_match_the_stored_metric_and_exist():
    runs, scores = simulate(np.random.default_rng(5), {"tl": 1.0})
    with pytest.raises(ParameterError, match="its result says"):
        stats.bootstrap(runs.assign(auc=runs["auc"] + 0.01), scores, resamples=10)
    with pytest.raises(ParameterError, match="no test predictions"):
        stats.bootstrap(runs, {}, resamples=10)


def test_holm_and_benjamini_hochberg_against_hand_computed_values():
    p = [0.01, 0.04, 0.03, 0.005, math.nan]
    # Holm, sorted 0.005, 0.01, 0.03, 0.04 (m = 4): 4 x 0.005 = 0.02, 3 x 0.01 = 0.03, 2 x 0.03 = 0.06,
    # max(1 x 0.04, 0.06) = 0.06.  BH: 0.005 x 4/1 = 0.02, 0.01 x 4/2 = 0.02, 0.03 x 4/3 = 0.04, 0.04 x 4/4 = 0.04.
    np.testing.assert_allclose(stats.adjust(p, "holm"), [0.03, 0.06, 0.06, 0.02, math.nan])
    np.testing.assert_allclose(stats.adjust(p, "bh"), [0.02, 0.04, 0.04, 0.02, math.nan])
    # R: p.adjust(c(0.2, 0.6, 0.01), "holm") = 0.4 0.6 0.03; p.adjust(.., "BH") = 0.3 0.6 0.03
    np.testing.assert_allclose(stats.adjust([0.2, 0.6, 0.01], "holm"), [0.4, 0.6, 0.03])
    np.testing.assert_allclose(stats.adjust([0.2, 0.6, 0.01], "bh"), [0.3, 0.6, 0.03])
    assert stats.adjust([0.5, 0.9], "holm").tolist() == [1.0, 1.0]
    with pytest.raises(ParameterError, match="correction"):
        stats.adjust(p, "bonferroni")


def test_verdicts_follow_only_the_corrected_p():
    family = pd.DataFrame({"arm": "tl", "other": ["ssl-simclr", "ssl-byol", "scratch", "ssl-simclr"],
                           "difference": [-0.05, 0.04, 0.10, 0.01], "p": [0.02, 0.03, 0.0001, 0.5]})
    called = stats.correct(family)
    assert called["called"].tolist() == [False, False, True, False]  # 0.02 and 0.03 are not called after Holm
    assert stats.verdicts(called) == [stats.UNDECIDED, stats.UNDECIDED, "tl ahead", stats.UNDECIDED]
    alone = stats.correct(family.iloc[:1])  # a family of one: 0.02 is called
    assert stats.verdicts(alone, label=str.upper) == ["SSL-SIMCLR ahead"]


def test_seed_summary_is_mean_and_sample_sd_per_group():
    df = pd.DataFrame({"arm": ["a", "a", "a", "b"], "level": [np.nan] * 3 + [1.0], "auc": [0.6, 0.7, 0.8, 0.5]})
    out = stats.seed_summary(df, ["arm", "level"], ["auc"])
    assert out["auc_mean"].tolist() == pytest.approx([0.7, 0.5]) and out["seeds"].tolist() == [3, 1]
    assert out["auc_std"].iloc[0] == pytest.approx(0.1) and math.isnan(out["auc_std"].iloc[1])
