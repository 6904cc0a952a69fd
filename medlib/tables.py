"""Tables of the study book: pandas DataFrames of display strings, with the formatting every table and sentence
shares (a number, an interval, a p-value, "mean ± s.d.").

Data tables (datasets, class counts, source pools, the files read and their MD5 checks), pre-training tables,
results tables (mean ± s.d. over seeds per arm and scenario, with the majority-class baseline), and the decision's
tables (:mod:`medlib.decision`: the decision table as shown, wins, run counts, and the book's answer at a glance).
Nothing here trains or scores a model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from . import scenarios, stats
from .data import SPLITS, ImageSet, data_root, ensure_file, file_info, file_name, load
from .plots import AXIS_LABELS, METRIC_LABELS, PROTOCOL_LABELS, arm_label, in_arm_order, trained
from .stats import seed_summary


# -------------------------------------------------------------------------------------------------------- formatting


def present(value) -> bool:
    """A number to show: not None and not NaN."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def number(value, decimals: int) -> str:
    """``value`` rounded to ``decimals``, "–" for none."""
    return "–" if not present(value) else f"{value:.{decimals}f}"


def interval(low, high, decimals: int) -> str:
    """A 95 % interval as "low to high", "–" for none."""
    return "–" if not present(low) else f"{low:.{decimals}f} to {high:.{decimals}f}"


def p_value(value) -> str:
    """A p-value to three decimals ("<0.001" below), "–" for none."""
    return "–" if not present(value) else "<0.001" if value < 0.001 else f"{value:.3f}"


def short_label(arm) -> str:
    """An arm's book label without its parenthesis ("TL (supervised)" -> "TL"), "–" for none."""
    return arm_label(arm).split(" (")[0] if isinstance(arm, str) else "–"


def mean_std(mean, std, decimals: int) -> str:
    """"mean ± std" rounded to ``decimals`` ("mean" alone without a spread, "–" without a mean)."""
    if not present(mean):
        return "–"
    if not present(std):
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


# -------------------------------------------------------------------------------------------------------------- data


def dataset_table(flags: Sequence[str], size: int) -> pd.DataFrame:
    """One row per dataset: task, number of classes, channels and the size of each official split."""
    rows = []
    for flag in flags:
        parts = {split: load(flag, split, size) for split in SPLITS}
        train = parts["train"]
        rows.append({"dataset": flag, "task": train.task, "classes": train.n_classes,
                     "channels": int(train.images.shape[1]), **{split: len(parts[split]) for split in SPLITS}})
    return pd.DataFrame(rows).set_index("dataset")


def class_counts(flag: str, size: int) -> pd.DataFrame:
    """Images per class (rows, ``"index: name"``) in each official split (columns) of one dataset."""
    parts = {split: load(flag, split, size) for split in SPLITS}
    classes = parts["train"].classes
    return pd.DataFrame({split: parts[split].class_counts() for split in SPLITS},
                        index=pd.Index([f"{i}: {c}" for i, c in enumerate(classes)], name=flag))


def pool_table(pools: Mapping[str, ImageSet], max_images: int | None = None) -> pd.DataFrame:
    """One row per target: its source pool's datasets, images, union classes, the images the leakage guard
    dropped (per source) and how many images pre-training uses (``max_images`` caps it)."""
    rows = []
    for target, pool in pools.items():
        rows.append({"target": target, "source pool": " + ".join(pool.names), "images": len(pool),
                     "classes (union)": pool.n_classes,
                     "dropped by leakage guard": ", ".join(f"{k}: {v}" for k, v in pool.dropped.items()),
                     "images for pre-training": len(pool) if max_images is None else min(len(pool), max_images)})
    return pd.DataFrame(rows).set_index("target")


def file_table(flags: Sequence[str], size: int, roles: Mapping[str, str] | None = None) -> pd.DataFrame:
    """For each flag at ``size``: file name, role, whether it is in the data root (MD5 verified), MD5 and URL.

    Never downloads: a file is verified only if it is already there.
    """
    rows, root = [], data_root()
    for flag in flags:
        name, (url, md5) = file_name(flag, size), file_info(flag, size)
        if not (root / name).exists():
            status = "missing: needs a download"
        else:
            try:
                ensure_file(flag, size, root)
                status = "present, MD5 verified"
            except Exception:
                status = "present, MD5 WRONG"
        rows.append({"flag": flag, "role": (roles or {}).get(flag, ""), "file": name, "status": status,
                     "MD5": md5, "URL": url})
    return pd.DataFrame(rows).set_index("flag")


# ------------------------------------------------------------------------------------------------------ pre-training


def pretraining_table(results: Mapping[str, dict]) -> pd.DataFrame:
    """Cost and outcome of each arm's pre-training: images, epochs, wall time, images/s, last loss and kNN (the
    arms that train)."""
    rows = []
    for arm in trained(results):
        r = results[arm]
        last = r["history"][-1]
        rows.append({"arm": arm_label(arm), "images": r["n_images"], "epochs": len(r["history"]),
                     "wall time (s)": round(r["seconds"], 1), "images/s": round(r["images_per_s"]),
                     "final loss": round(last["loss"], 3), "final kNN acc.": round(last["knn_acc"], 3),
                     "device": r.get("device", "")})
    return pd.DataFrame(rows).set_index("arm")


# ----------------------------------------------------------------------------------------------------------- results


def majority(df: pd.DataFrame, by: Sequence[str] = ("target",), metrics=tuple(METRIC_LABELS)) -> pd.DataFrame:
    """The majority-class baseline (mean of the ``majority_*`` columns) per group, named like a summary."""
    done = stats.completed(df)
    out = done.groupby(list(by), sort=False)[[f"majority_{m}" for m in metrics]].mean()
    out.columns = [f"{m}_mean" for m in metrics]
    return out.reset_index()


def _ordered(df: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Rows sorted by ``keys``: arms and protocols in the book's order (the baseline last), numbers ascending,
    anything else in order of first appearance."""
    def rank(col: pd.Series) -> pd.Series:
        if col.name == "arm":
            order = {a: i for i, a in enumerate(in_arm_order([*col, "majority"]))}
            order["majority"] = len(order)
        elif col.name == "protocol":
            others = [p for p in dict.fromkeys(col) if p not in PROTOCOL_LABELS and p != "—"]
            order = {p: i for i, p in enumerate([*PROTOCOL_LABELS, *others, "—"])}
        elif pd.api.types.is_numeric_dtype(col):
            return col
        else:
            order = {v: i for i, v in enumerate(dict.fromkeys(col))}
        return col.map(order)

    return df.sort_values(list(keys), key=rank, kind="stable") if keys else df


def table(summary: pd.DataFrame, metrics=tuple(METRIC_LABELS), decimals: int = 3,
          baseline: pd.DataFrame | None = None, columns: str | None = None) -> pd.DataFrame:
    """Compact display of a :func:`~medlib.experiment.summarize` frame: one "mean ± std" string per metric.

    The grouping columns become the index, sorted (arms and protocols in the book's order, with their book
    labels); a std that is missing (one seed, or a baseline) is left out; ``seeds`` is kept when present.
    ``baseline`` (from :func:`majority`) adds a "Majority class (baseline)" row to each of its groups.
    ``columns`` moves one grouping column (e.g. ``"label_fraction"``) into the columns, under each metric.
    """
    keys = [c for c in summary.columns if not c.endswith(("_mean", "_std")) and c != "seeds"]
    if baseline is not None:
        extra = baseline.assign(**{k: ("majority" if k == "arm" else "—") for k in keys if k not in baseline})
        summary = pd.concat([summary, extra[[c for c in extra.columns if c in summary.columns]]], ignore_index=True)
    summary = _ordered(summary, keys).reset_index(drop=True)
    out = summary[keys].copy()
    if "arm" in out:
        out["arm"] = out["arm"].map(arm_label)
    if "protocol" in out:
        out["protocol"] = out["protocol"].map(lambda p: PROTOCOL_LABELS.get(p, p))
    for m in metrics:
        std = summary[f"{m}_std"] if f"{m}_std" in summary else [None] * len(summary)
        out[METRIC_LABELS.get(m, m)] = [mean_std(a, b, decimals) for a, b in zip(summary[f"{m}_mean"], std)]
    if columns is not None:
        index = [k for k in keys if k != columns]
        wide = out.pivot(index=index, columns=columns, values=[METRIC_LABELS.get(m, m) for m in metrics])
        order = out[index].drop_duplicates()
        wide = wide.reindex(pd.MultiIndex.from_frame(order) if len(index) > 1 else order[index[0]])
        wide.columns.names = [None, AXIS_LABELS.get(columns, columns)]
        return wide
    if "seeds" in summary:
        out["seeds"] = ["" if pd.isna(n) else int(n) for n in summary["seeds"]]
    return out.set_index(keys) if keys else out


def drop_table(df: pd.DataFrame, x: str = "imbalance_ratio", metrics=("balanced_acc", "minority_recall", "auc"),
               decimals: int = 3) -> pd.DataFrame:
    """How much each arm x protocol loses from the smallest to the largest ``x`` (paired by seed).

    Cells are "mean ± std" of (metric at smallest x - metric at largest x) over seeds: larger is a bigger
    drop. ``least drop`` names, per protocol, the arm with the smallest mean drop of the first metric.
    """
    done = stats.completed(df)
    low, high = done[x].min(), done[x].max()
    keys = ["protocol", "arm", "seed"]
    a = done[done[x] == low].set_index(keys)[list(metrics)]
    b = done[done[x] == high].set_index(keys)[list(metrics)]
    drop = _ordered((a - b).dropna().reset_index(), ["protocol", "arm"])
    summary = seed_summary(drop, ["protocol", "arm"], metrics)
    first = metrics[0]
    ranked = summary.dropna(subset=[f"{first}_mean"])
    best = ranked.loc[ranked.groupby("protocol", sort=False)[f"{first}_mean"].idxmin()]
    out = table(summary, metrics, decimals)
    out.columns = [f"drop in {c}" if c != "seeds" else c for c in out.columns]
    out[f"least drop ({METRIC_LABELS.get(first, first)})"] = [
        "✓" if (p, a_) in set(zip(best["protocol"], best["arm"])) else ""
        for p, a_ in zip(summary["protocol"], summary["arm"])]
    out.attrs["x"] = (low, high)
    return out


def layout(table: pd.DataFrame, keep: Sequence[str] = ("seeds",)) -> pd.DataFrame:
    """A results ``table``'s rows and columns with every value blanked except the counts named in ``keep``.

    What the notebook regression (nbval) checks of a results cell: after a smoke epoch the metrics differ in the
    second decimal between CPU kinds (float32 on AVX2, bf16 on AVX-512 BF16), and so do the winners they name,
    while which rows and columns a table has, and how many seeds each row holds, are the same on every CPU.
    """
    out = pd.DataFrame("·", index=table.index, columns=table.columns)
    for column in keep:
        if column in table:
            out[column] = table[column]
    return out


# ------------------------------------------------------------------------------------------------------ the decision


def situations(df: pd.DataFrame) -> list[str]:
    """The scenario and level of each row in words: "all labels", "10% of labels", "imbalance 10:1"."""
    return [scenarios.words(s, lv) for s, lv in zip(df["scenario"], df["level"])]


def display_table(table: pd.DataFrame, metric: str = "auc", decimals: int = 3) -> pd.DataFrame:
    """The decision table for reading, narrow enough for a 1280 px screen: (target, situation, protocol) as the
    index, then the columns the decision rests on (the leader, its mean and 95 % interval, its margin over the
    runner-up with its interval, the corrected p and the verdict; short arm names), then the runner-up, the gain
    over scratch and the pre-trainings behind each interval ("1: not in CI" where it leaves out pre-training)."""
    label = METRIC_LABELS.get(metric, metric)
    pretrainings = ["–" if f is None else str(n) if f else f"{n}: not in CI"
                    for n, f in zip(table["pretrainings"], table["pretraining_in_ci"])]
    verdicts = [stats.verdict(c, d, w, o, short_label) if isinstance(o, str) else "one arm"
                for c, d, w, o in zip(table["beyond_noise"], table["margin"], table["winner"], table["runner_up"])]
    out = pd.DataFrame({
        "target": table["target"],
        "situation": situations(table),
        "protocol": table["protocol"].map(lambda p: PROTOCOL_LABELS.get(p, p)),
        "leader": table["winner"].map(short_label),
        label: [number(v, decimals) for v in table[metric]],
        "95% CI": [interval(a, b, decimals) for a, b in zip(table["ci_low"], table["ci_high"])],
        "margin": [number(v, decimals) for v in table["margin"]],
        "margin CI": [interval(a, b, decimals) for a, b in zip(table["margin_low"], table["margin_high"])],
        "p (Holm)": [p_value(v) for v in table["p_adjusted"]],
        "verdict": [v.replace(stats.UNDECIDED, "not decided") for v in verdicts],
        "runner-up": table["runner_up"].map(short_label),
        "vs scratch": [number(v, decimals) for v in table["vs_scratch"]],
        "pre-trainings": pretrainings,
    })
    return out.set_index(["target", "situation", "protocol"])


def wins(table: pd.DataFrame) -> pd.DataFrame:
    """How many conditions each arm leads, in all and called (its margin over the runner-up survives the
    correction), per protocol."""
    t = table.assign(beyond=table["beyond_noise"].map(lambda v: v is True))
    out = t.groupby(["protocol", "winner"], sort=False).agg(wins=("winner", "size"), beyond_noise=("beyond", "sum"))
    out = out.reset_index().rename(columns={"winner": "arm"})
    order = {p: i for i, p in enumerate(dict.fromkeys(table["protocol"]))}
    return out.sort_values(["protocol", "wins"], key=lambda c: c.map(order) if c.name == "protocol" else -c,
                           kind="stable").reset_index(drop=True)


def run_counts(df: pd.DataFrame) -> pd.DataFrame:
    """How many runs (arm x protocol x seed, skipped ones included) each target and situation holds."""
    out = df.assign(situation=situations(df)).groupby(["target", "situation"], sort=False).size()
    return out.rename("runs").to_frame()


def answer_table(intervals: pd.DataFrame) -> pd.DataFrame:
    """The book's answer at a glance, from :func:`medlib.decision.arm_intervals`: rows grouped by protocol, one
    per arm (the book's order), one column per target, each cell the arm's mean with its 95 % interval
    ("0.86 (0.80-0.91)"). Arms and protocols run down the page, so that neither a growing list of arms nor the
    second protocol widens the table past a 1280 px screen; the page's prose names the metric."""
    ci = intervals.assign(
        cell=[f"{m:.2f} ({a:.2f}-{b:.2f})" for m, a, b in zip(intervals["mean"], intervals["ci_low"],
                                                            intervals["ci_high"])],
        protocol=intervals["protocol"].map(lambda p: PROTOCOL_LABELS.get(p, p)))
    out = ci.pivot(index=["protocol", "arm"], columns="target", values="cell")
    rows = pd.MultiIndex.from_product([list(dict.fromkeys(ci["protocol"])), in_arm_order(ci["arm"])])
    out = out.reindex(rows).dropna(how="all")[list(dict.fromkeys(ci["target"]))]
    out = out.rename(index=short_label, level=1)
    out.index.names, out.columns.name = [None, None], None
    return out
