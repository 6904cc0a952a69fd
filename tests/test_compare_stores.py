"""benchmarks/compare_stores.py on two tiny stores with made-up results (no training)."""

import dataclasses

import pytest

from benchmarks import compare_stores
from medlib.experiment import AdaptConfig
from medlib.pretrain import PretrainConfig
from medlib.store import RunStore

POOL = PretrainConfig("tl", ("pneumoniamnist",), ("breastmnist",))


def fill(root, aucs, pool=POOL):
    """One store: per (arm, protocol) one AUC per seed (``n_train`` 100, ``seconds`` 2); plus a scarcity run that
    must be left out of the AUC comparison."""
    store = RunStore(root)
    for (arm, protocol), values in aucs.items():
        for seed, auc in enumerate(values):
            cfg = AdaptConfig(arm, "breastmnist", protocol, seed, pretrain=pool if arm == "tl" else None)
            store.cached("adapt", cfg.to_dict(),
                         lambda run_dir, auc=auc: {"test": {"auc": auc}, "n_train": 100, "seconds": 2.0})
    scarce = AdaptConfig("scratch", "breastmnist", "linear", 0, label_fraction=0.1)
    store.cached("adapt", scarce.to_dict(), lambda run_dir: {"test": {"auc": 0.1}, "n_train": 10, "seconds": 1.0})


def test_conditions_are_matched_on_their_config_and_summarised(tmp_path):
    fill(tmp_path / "a", {("tl", "linear"): [0.70, 0.72], ("scratch", "linear"): [0.80, 0.80]})
    fill(tmp_path / "b", {("tl", "linear"): [0.80, 0.82], ("scratch", "linear"): [0.79, 0.81],
                          ("tl", "finetune"): [0.9]})
    fill(tmp_path / "b", {("tl", "linear"): [0.0]}, dataclasses.replace(POOL, seed=1))  # only in b: not averaged
    df, summary = compare_stores.compare(tmp_path / "a", tmp_path / "b")
    assert df[["arm", "protocol", "pool"]].values.tolist() == [["scratch", "linear", "-"],
                                                               ["tl", "linear", "pneumoniamnist"]]
    assert df["difference"].tolist() == pytest.approx([0.0, 0.10])
    assert summary.loc[("pre-trained (tl, ssl-*)", "linear"), "largest_abs_difference"] == pytest.approx(0.10)


def test_stores_without_a_common_run_are_reported(tmp_path):
    fill(tmp_path / "a", {("scratch", "linear"): [0.8]})
    with pytest.raises(SystemExit, match="no all-labels adaptation run"):
        compare_stores.compare(tmp_path / "a", tmp_path / "empty")


def test_adaptation_seconds_are_summed_over_the_shared_runs(tmp_path):
    fill(tmp_path / "a", {("scratch", "linear"): [0.8, 0.8]})
    fill(tmp_path / "b", {("scratch", "linear"): [0.8, 0.8, 0.8]})
    seconds = compare_stores.adaptation_seconds(tmp_path / "a", tmp_path / "b")
    assert seconds.loc[("linear", "< 500"), "runs"] == 3  # two seeds and the scarcity run are in both
    assert seconds.loc[("linear", "< 500"), "first_seconds"] == pytest.approx(5.0)
    assert seconds.loc[("linear", "< 500"), "ratio"] == pytest.approx(1.0)
