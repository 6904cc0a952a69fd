"""Figures and display tables on small synthetic frames: the right number of bars, lines, panels, strings."""

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from medlib import plots, prose, tables  # noqa: E402
from medlib.data import ImageSet  # noqa: E402
from medlib.experiment import ARMS  # noqa: E402

ARMS3 = ["scratch", "tl", "ssl-simclr"]


def summary(x=None, xs=(1,), arms=ARMS3, protocols=("linear", "finetune")):
    rows = []
    for arm in arms:
        for p in protocols:
            for i, v in enumerate(xs):
                row = {"arm": arm, "protocol": p, "auc_mean": 0.7 + 0.01 * i, "auc_std": 0.02,
                       "balanced_acc_mean": 0.6, "balanced_acc_std": float("nan"), "seeds": 3}
                rows.append(row | ({x: v} if x else {}))
    return pd.DataFrame(rows)


def runs(ratios=(1, 10), seeds=(0, 1, 2)):
    rows = []
    for arm, loss in (("scratch", 0.2), ("tl", 0.05)):
        for seed in seeds:
            for r in ratios:
                value = 0.8 - (loss + 0.01 * seed) * (r != ratios[0])
                rows.append({"arm": arm, "protocol": "finetune", "seed": seed, "imbalance_ratio": r,
                             "balanced_acc": value, "auc": 0.9, "skipped": None})
    rows.append({"arm": "imagenet", "protocol": "finetune", "seed": 0, "imbalance_ratio": 1, "balanced_acc": None,
                 "auc": None, "skipped": "offline: no weights"})
    return pd.DataFrame(rows)


def lines(ax):
    return [line for line in ax.get_lines() if len(line.get_xdata()) > 0]


def test_every_arm_has_its_own_colour_and_label():
    assert set(plots.ARM_COLOURS) == set(ARMS) == set(plots.ARMS)
    assert len(set(plots.ARM_COLOURS.values())) == len(ARMS)
    assert plots.arm_label("tl") == "TL (supervised)"
    assert plots.arm_label("ssl-simclr") == "SSL SimCLR" and plots.arm_label("ssl-byol") == "SSL BYOL"


def test_table_formats_mean_and_std():
    df = pd.DataFrame({"arm": ["tl", "ssl-byol"], "protocol": ["linear", "finetune"], "auc_mean": [0.8123, 0.7],
                       "auc_std": [0.0101, float("nan")], "seeds": [3, 1]})
    out = tables.table(df, ["auc"])
    assert out.index.names == ["arm", "protocol"]
    assert out.loc[("TL (supervised)", "Linear probe"), "AUC"] == "0.812 ± 0.010"
    assert out.loc[("SSL BYOL", "Fine-tuning"), "AUC"] == "0.700"  # one seed: no std to show
    assert out["seeds"].tolist() == [3, 1]
    assert tables.table(df, ["auc"], decimals=2).iloc[0]["AUC"] == "0.81 ± 0.01"


def test_table_puts_the_majority_baseline_after_each_target():
    df = pd.concat([summary().assign(target=t) for t in ("b", "a")], ignore_index=True)
    base = pd.DataFrame({"target": ["a", "b"], "auc_mean": [0.5, 0.25]})
    out = tables.table(df[["target", "arm", "protocol", "auc_mean", "auc_std", "seeds"]], ["auc"], baseline=base)
    assert out.index.names == ["target", "arm", "protocol"]
    assert len(out) == 2 * (len(ARMS3) * 2 + 1)
    last_b = out.iloc[len(ARMS3) * 2]
    assert last_b.name == ("b", "Majority class (baseline)", "—")
    assert (last_b["AUC"], last_b["seeds"]) == ("0.250", "")


def test_metric_points_one_point_per_arm_and_protocol_on_an_axis_that_shows_the_differences():
    fig = plots.metric_points(summary(), ["auc", "balanced_acc"], baseline={"auc": 0.5}, reference={"auc": 0.9})
    assert len(fig.axes) == 2
    ax = fig.axes[0]
    points = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert len(points) == len(ARMS3) and all(len(p.get_xdata()) == 2 for p in points)
    assert [matplotlib.colors.to_rgb(p.get_color()) for p in points] == [
        matplotlib.colors.to_rgb(plots.ARM_COLOURS[a]) for a in ARMS3]
    styles = sorted(line.get_linestyle() for line in ax.get_lines() if line.get_label().startswith(("Maj", "pub")))
    assert styles == ["--", ":"]
    assert not [line for line in fig.axes[1].get_lines() if line.get_label().startswith(("Maj", "pub"))]
    low, high = ax.get_ylim()  # the points, the baseline and the reference, padded; not 0-1
    values = [*summary()["auc_mean"], 0.5, 0.9]
    assert 0 < low < min(values) and max(values) < high < 1
    low, high = fig.axes[1].get_ylim()  # no lines there: the axis spans the points alone
    assert high - low < 0.5


def test_learning_curves_one_line_per_arm_per_protocol_with_bands():
    fig = plots.learning_curves(summary("label_fraction", (0.1, 0.5, 1.0)), ["auc"], baseline={"auc": 0.5})
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert ax.get_xscale() == "log"
        assert len(lines(ax)) == len(ARMS3) + 1  # arms + majority baseline
        assert len(ax.collections) == len(ARMS3)  # one ±std band per arm
        assert len(lines(ax)[0].get_xdata()) == 3


def test_imbalance_curves_one_panel_per_metric_and_protocol():
    fig = plots.imbalance_curves(summary("imbalance_ratio", (1, 10)), ["auc", "balanced_acc"])
    assert len(fig.axes) == 4
    assert all(len(lines(ax)) == len(ARMS3) for ax in fig.axes)


def test_pretraining_curves_loss_per_arm_and_shared_knn_panel():
    history = [{"epoch": e, "loss": 1 / e, "knn_acc": 0.5 + 0.1 * e, "seconds": 1.0, "images_per_s": 100.0}
               for e in (1, 2, 3)]
    results = {arm: {"history": history, "n_images": 256, "seconds": 3.0, "images_per_s": 100.0}
               for arm in ("ssl-byol", "tl")}
    fig = plots.pretraining_curves(results)
    assert len(fig.axes) == 3
    assert fig.axes[0].get_title().startswith("TL")  # book order, not dict order
    assert len(lines(fig.axes[2])) == 2
    table = tables.pretraining_table(results)
    assert table.index.tolist() == ["TL (supervised)", "SSL BYOL"]
    assert table["images"].tolist() == [256, 256] and table["epochs"].tolist() == [3, 3]


def test_sample_grid_and_class_bars():
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    images = ImageSet(torch.randint(0, 255, (6, 1, 8, 8), dtype=torch.uint8), labels, "multi-class",
                      ("a", "b", "c"), ("toy",), torch.zeros(6, dtype=torch.long), "train", 28)
    fig = plots.sample_grid(images, per_class=2)
    assert len(fig.axes) == 6
    assert sum(len(ax.images) for ax in fig.axes) == 5  # class c has one image only
    counts = pd.DataFrame({"train": [3, 2, 1], "test": [1, 1, 1]}, index=list("abc"))
    ax = plots.class_bars(counts).axes[0]
    assert len(ax.patches) == 6


def test_drop_table_pairs_seeds_and_marks_the_least_drop():
    out = tables.drop_table(runs(), metrics=["balanced_acc", "auc"])
    assert out.loc[("Fine-tuning", "Scratch (random init)"), "drop in Balanced acc."] == "0.210 ± 0.010"
    assert out.loc[("Fine-tuning", "TL (supervised)"), "drop in AUC"] == "0.000 ± 0.000"
    assert out["least drop (Balanced acc.)"].tolist() == ["", "✓"]
    assert out.attrs["x"] == (1, 10)


def test_skip_note_and_majority_baseline():
    df = runs()
    note = prose.skip_note(df)
    assert "ImageNet (supervised)" in note and "offline: no weights" in note and "(1 runs)" in note
    assert prose.skip_note(df[df["skipped"].isna()]) == ""
    df = df.assign(target="t", majority_auc=0.5, majority_balanced_acc=0.5)
    base = tables.majority(df, metrics=["auc", "balanced_acc"])
    assert base.to_dict("records") == [{"target": "t", "auc_mean": 0.5, "balanced_acc_mean": 0.5}]


def test_file_table_reports_missing_and_wrong_files_without_downloading(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLIB_DATA", str(tmp_path))
    monkeypatch.setenv("MEDLIB_OFFLINE", "0")  # even when downloads are allowed, the table never fetches
    (tmp_path / "retinamnist.npz").write_bytes(b"not the official file")
    out = tables.file_table(["breastmnist", "retinamnist"], 28, roles={"breastmnist": "target"})
    assert out.loc["breastmnist", "status"] == "missing: needs a download"
    assert out.loc["retinamnist", "status"] == "present, MD5 WRONG"
    assert out.loc["breastmnist", "file"] == "breastmnist.npz" and out.loc["breastmnist", "role"] == "target"
    assert len(out.loc["breastmnist", "MD5"]) == 32 and out.loc["breastmnist", "URL"].startswith("https://")
    assert not (tmp_path / "breastmnist.npz").exists()


@pytest.mark.parametrize("mean,std,expected", [(0.8125, 0.0104, "0.812 ± 0.010"), (math.nan, 0.1, "–"),
                                               (np.float64(0.5), np.nan, "0.500")])
def test_mean_std(mean, std, expected):
    assert tables.mean_std(mean, std, 3) == expected


def test_long_tick_labels_wrap_on_two_lines():
    assert plots._wrap("pneumoniamnist: pneumonia") == "pneumoniamnist:\npneumonia"
    assert plots._wrap("0: malignant") == "0: malignant"
    assert plots._wrap("1: normal, benign") == "1:\nnormal, benign"
    assert plots._wrap("a very long class name that goes on").count("\n") == 1


def test_table_sorts_in_book_order_and_pivots_a_scenario_into_columns():
    df = summary("label_fraction", (0.5, 0.1))[::-1].reset_index(drop=True)  # scrambled
    out = tables.table(df, ["auc"])
    assert out.index.get_level_values("arm").unique().tolist() == ["Scratch (random init)", "TL (supervised)",
                                                                    "SSL SimCLR"]
    assert out.index[:3].tolist() == [("Scratch (random init)", "Linear probe", 0.1),
                                      ("Scratch (random init)", "Linear probe", 0.5),
                                      ("Scratch (random init)", "Fine-tuning", 0.1)]
    wide = tables.table(df, ["auc", "balanced_acc"], columns="label_fraction")
    assert wide.shape == (len(ARMS3) * 2, 4)
    assert wide.columns.tolist() == [("AUC", 0.1), ("AUC", 0.5), ("Balanced acc.", 0.1), ("Balanced acc.", 0.5)]
    assert wide.loc[("TL (supervised)", "Fine-tuning"), ("AUC", 0.5)] == "0.700 ± 0.020"


def test_curves_draw_a_baseline_that_moves_with_x():
    base = pd.DataFrame({"imbalance_ratio": [1, 10], "auc_mean": [0.5, 0.5], "minority_recall_mean": [1.0, 0.0]})
    s = summary("imbalance_ratio", (1, 10)).assign(minority_recall_mean=0.3, minority_recall_std=0.1)
    fig = plots.imbalance_curves(s, ["minority_recall"], baseline=base)
    dashed = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_ydata().tolist() == [1.0, 0.0]
