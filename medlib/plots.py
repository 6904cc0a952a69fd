"""Figures and tables of the study book: one look per idea, the same colour for an arm in every chapter.

Every figure function returns a matplotlib ``Figure`` (closed in pyplot, so a notebook shows it once, as the
cell's value). Tables are pandas DataFrames of display strings. Nothing here trains or scores a model: the
inputs are :func:`medlib.experiment.run_grid` rows, :func:`medlib.experiment.summarize` summaries, stored
pre-training results and :class:`medlib.data.ImageSet` splits.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from . import methods
from .data import SPLITS, ImageSet, data_root, ensure_file, file_info, file_name, load
from .methods import ARM_COLOURS, ARMS
from .scenarios import SCENARIOS
from .stats import seed_summary

ARM_LABELS = methods.ARM_LABELS | {"majority": "Majority class (baseline)"}  # arms' order and colours: methods
PROTOCOL_LABELS = {"linear": "Linear probe", "finetune": "Fine-tuning"}
METRIC_LABELS = {"auc": "AUC", "acc": "ACC", "balanced_acc": "Balanced acc.", "macro_f1": "Macro-F1",
                 "minority_recall": "Minority recall"}
AXIS_LABELS = {s.field: s.axis for s in SCENARIOS}
SPLIT_COLOURS = ("#2a9d8f", "#e9c46a", "#264653", "#a8dadc")  # data figures: never an arm's colour
DPI = 90


def arm_label(arm: str) -> str:
    return ARM_LABELS.get(arm, arm)


def figure(nrows: int = 1, ncols: int = 1, width: float = 4.0, height: float = 3.0, **kw):
    """A figure of ``nrows x ncols`` panels of ``width x height`` inches each (``axes`` always 2-D)."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), dpi=DPI, squeeze=False, **kw)
    plt.close(fig)  # shown once, as the returned value, not again by the inline backend
    return fig, axes


def legend_below(fig, ax, ncol: int | None = 4, fontsize: float = 8, max_chars: int | None = None, **kw) -> None:
    """One legend for the whole figure, centred below the panels, from ``ax``'s labelled artists
    (at most ``ncol`` columns, None: all in one row; labels longer than ``max_chars`` are shortened)."""
    handles, labels = ax.get_legend_handles_labels()
    if max_chars:
        labels = [label if len(label) <= max_chars else label[:max_chars - 1] + "…" for label in labels]
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncol=len(labels) if ncol is None else min(ncol, len(labels)), fontsize=fontsize, frameon=False, **kw)


def _wrap(text, width: int = 14, lines: int = 2) -> str:
    """A tick label on at most ``lines`` lines (``"flag: class"`` breaks after the colon)."""
    text = str(text)
    if len(text) <= width:
        return text
    head, colon, rest = text.partition(": ")
    parts = [head + ":", *textwrap.wrap(rest, width)] if colon else textwrap.wrap(text, width)
    return "\n".join(parts[:lines]) + ("…" if len(parts) > lines else "")


def listing(parts, empty: str = "none") -> str:
    """Words joined as prose: "a", "a and b", "a, b and c" (``empty`` for none)."""
    parts = list(parts)
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1] if parts else empty


def in_arm_order(arms) -> list[str]:
    """The distinct ``arms`` in the book's order, unknown names last."""
    arms = list(dict.fromkeys(arms))
    return [a for a in ARMS if a in arms] + [a for a in arms if a not in ARMS]


# ----------------------------------------------------------------------------------------------- data


def sample_grid(images: ImageSet, per_class: int = 4, seed: int = 0, title: str | None = None):
    """A grid of ``per_class`` seeded random images of every class (one row per class)."""
    if images.labels.ndim != 1:
        raise ValueError("sample_grid needs a single-label ImageSet")
    g = torch.Generator().manual_seed(seed)
    fig, axes = figure(images.n_classes, per_class, width=1.1, height=1.1)
    for c, name in enumerate(images.classes):
        index = torch.nonzero(images.labels == c).flatten()
        index = index[torch.randperm(len(index), generator=g)[:per_class]]
        for j in range(per_class):
            ax = axes[c, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(index):
                img = images.images[index[j]]
                if img.shape[0] == 1:
                    ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=255)
                else:
                    ax.imshow(img.permute(1, 2, 0).numpy())
        label = name if len(name) <= 18 else name[:16] + "…"
        axes[c, 0].set_ylabel(f"{c}: {label}", rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title or f"{images.name} ({images.split}, {images.size} px)", fontsize=10)
    fig.tight_layout()
    return fig


def bar_offsets(n: int) -> tuple[np.ndarray, float]:
    """x offsets and width of ``n`` bars side by side, a group 0.8 wide centred on its tick."""
    width = 0.8 / max(1, n)
    return (np.arange(n) - (n - 1) / 2) * width, width


def class_bars(counts: pd.DataFrame, title: str = "", log: bool = False):
    """Grouped bars of class counts: ``counts`` has one row per class and one column per split (or group)."""
    n_rows, n_cols = counts.shape
    fig, axes = figure(width=max(4.0, n_rows * (0.35 * n_cols + 0.65) + 1.2), height=3.0)
    ax = axes[0, 0]
    x = np.arange(n_rows)
    offsets, width = bar_offsets(n_cols)
    for j, column in enumerate(counts.columns):
        bars = ax.bar(x + offsets[j], counts[column].to_numpy(), width, label=str(column),
                      color=SPLIT_COLOURS[j % len(SPLIT_COLOURS)])
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(x, [_wrap(i) for i in counts.index], fontsize=8)
    ax.set_ylabel("images")
    if log:
        ax.set_yscale("log")
    if n_cols > 1:
        ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


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


def data_finding(datasets: pd.DataFrame, counts: Mapping[str, pd.DataFrame],
                 pools: pd.DataFrame | None = None) -> str:
    """Chapter 1's finding: each target's split sizes and its smallest train class with its share, and how many
    pool images pre-training uses. From :func:`dataset_table`, :func:`class_counts` per target and
    :func:`pool_table`."""
    if len(datasets) == 0:
        return "No target datasets in this chapter's parameters."
    sentences = []
    for flag, row in datasets.iterrows():
        train = counts[flag]["train"]
        name, n = str(train.idxmin()).split(": ", 1)[-1], int(train.min())
        even = "" if "multi-label" in row["task"] else f", against {1 / row['classes']:.0%} for even classes"
        sentences.append(f"The target {flag} ({row['task']}, {row['classes']} classes) has {row['train']:,} train, "
                         f"{row['val']:,} validation and {row['test']:,} test images; its smallest class, {name}, "
                         f"holds {n:,} of the train images ({n / row['train']:.0%}{even}).")
    text = " ".join(sentences)
    if pools is not None and len(pools):
        text += " Pre-training uses " + listing(
            f"{r['images for pre-training']:,} of the {r['images']:,} images of {t}'s source pool ({r['source pool']})"
            for t, r in pools.iterrows()) + "."
    return text


def profile_note(profile: str) -> str:
    """A Markdown line that says how much weight the chapter's numbers can bear under ``profile``."""
    notes = {
        "smoke": "**Profile `smoke`: a pipeline check, not evidence.** Tiny subsets and one epoch: the numbers "
                 "below only show that every step runs; do not read any difference between arms from them.",
        "quick": "**Profile `quick`:** the study sized for a 2-core CPU (capped train splits, few epochs). Read "
                 "differences against the spread over seeds; a gap within it is not a win.",
        "gpu": "**Profile `gpu`:** the study at a real budget on one GPU with the offline files (whole source pools "
               "and train splits, three pre-trainings per pre-trained arm, tuned fine-tuning).",
        "full": "**Profile `full`:** the study at paper scale (full train splits, 100 epochs, GPU).",
    }
    return notes.get(profile, f"Profile `{profile}`.")


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


# ---------------------------------------------------------------------------------------- pre-training


def trained(results: Mapping[str, dict]) -> list[str]:
    """The arms of ``results`` (:func:`medlib.experiment.pretrained` by arm) with epochs of their own, in order."""
    return [arm for arm in in_arm_order(results) if results[arm]["history"]]


def pretraining_curves(results: Mapping[str, dict], title: str = ""):
    """Per-epoch pre-training loss (top: one panel per arm, as the losses differ in kind and scale) and the
    kNN accuracy of held-out source images (bottom: all arms), from :func:`medlib.experiment.pretrained`. An arm
    that trains nothing of its own (``Method.trains``: fusion) has no curve."""
    arms = trained(results)
    n = max(1, len(arms))
    fig = plt.figure(figsize=(max(6.0, 2.6 * n), 4.8), dpi=DPI)
    plt.close(fig)
    grid = fig.add_gridspec(2, n)
    histories = {arm: pd.DataFrame(results[arm]["history"]) for arm in arms}
    epochs = sorted({e for h in histories.values() for e in h["epoch"]})
    axes = [fig.add_subplot(grid[0, i]) for i in range(len(arms))]
    for ax, arm in zip(axes, arms):
        ax.plot(histories[arm]["epoch"], histories[arm]["loss"], marker="o", color=ARM_COLOURS.get(arm), ms=4)
        ax.set_title(f"{arm_label(arm)}: loss", fontsize=9)
    knn = fig.add_subplot(grid[1, :])
    for arm in arms:
        knn.plot(histories[arm]["epoch"], histories[arm]["knn_acc"], marker="o", ms=4, color=ARM_COLOURS.get(arm),
                 label=arm_label(arm))
    knn.set_ylim(0, 1)
    knn.set_ylabel("kNN accuracy\n(held-out source)", fontsize=9)
    knn.legend(fontsize=8, frameon=False, loc="lower right", ncol=len(arms))
    for ax in [*axes, knn]:
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_xlabel("epoch", fontsize=8)
        if len(epochs) <= 12:
            ax.set_xticks(epochs)
        else:
            ax.xaxis.get_major_locator().set_params(integer=True)
        if len(epochs) == 1:
            ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


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


def pretraining_finding(results: Mapping[str, Mapping[str, dict]]) -> str:
    """Chapter 2's finding, per source pool (``{target: {arm: result}}`` of :func:`medlib.experiment.pretrained`):
    the arms with the highest and lowest kNN accuracy on held-out source images at the last epoch, and whether
    each arm's loss fell or rose from its first to its last epoch. One pre-training per arm, no test."""
    sentences = []
    for target, by_arm in results.items():
        arms = trained(by_arm)
        if not arms:
            continue
        last = {a: by_arm[a]["history"][-1] for a in arms}
        knn = pd.Series({a: last[a]["knn_acc"] for a in arms})
        epochs = sorted({len(by_arm[a]["history"]) for a in arms})
        after = listing(str(e) for e in epochs) + (" epoch" if epochs == [1] else " epochs")
        text = (f"On the source pool of {target}, after {after}, {arm_label(knn.idxmax())} has the highest kNN "
                f"accuracy on held-out source images, {knn.max():.3f}")
        if len(arms) > 1:
            text += f", and {arm_label(knn.idxmin())} the lowest, {knn.min():.3f}"
        sentences.append(text + "; one pre-training each and no test, on the source task, which favours TL by "
                         "construction.")
        trend = {a: by_arm[a]["history"][-1]["loss"] - by_arm[a]["history"][0]["loss"] for a in arms
                 if len(by_arm[a]["history"]) > 1}
        if trend:
            fell = [arm_label(a) for a, d in trend.items() if d < 0]
            rose = [arm_label(a) for a, d in trend.items() if d > 0]
            flat = [arm_label(a) for a, d in trend.items() if d == 0]
            bits = [f"fell for {listing(fell)}" if fell else "", f"rose for {listing(rose)}" if rose else "",
                    f"did not change for {listing(flat)}" if flat else ""]
            sentences.append(f"From the first to the last epoch the loss {listing(b for b in bits if b)}.")
        else:
            sentences.append("With one epoch the losses show no trend yet.")
    return " ".join(sentences) or "No stored pre-trainings: the arms in `arms` include no pre-trained arm."


# ------------------------------------------------------------------------------------------- results


def skip_note(df: pd.DataFrame) -> str:
    """A Markdown note naming every skipped arm and why (empty when nothing was skipped)."""
    if "skipped" not in df or df["skipped"].isna().all():
        return ""
    lines = [f"- **{arm_label(arm)}** skipped ({len(group)} runs): {reason}"
             for (arm, reason), group in df[df["skipped"].notna()].groupby(["arm", "skipped"], sort=False)]
    return "**Note: some runs were not made and are absent from the tables and figures.**\n\n" + "\n".join(lines)


def majority(df: pd.DataFrame, by: Sequence[str] = ("target",), metrics=tuple(METRIC_LABELS)) -> pd.DataFrame:
    """The majority-class baseline (mean of the ``majority_*`` columns) per group, named like a summary."""
    done = df[df["skipped"].isna()] if "skipped" in df else df
    out = done.groupby(list(by), sort=False)[[f"majority_{m}" for m in metrics]].mean()
    out.columns = [f"{m}_mean" for m in metrics]
    return out.reset_index()


def mean_std(mean, std, decimals: int) -> str:
    """"mean ± std" rounded to ``decimals`` ("mean" alone without a spread, "–" without a mean)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


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


def metric_points(summary: pd.DataFrame, metrics=("auc",), baseline: Mapping[str, float] | None = None,
                  reference: Mapping[str, float] | None = None, reference_label: str = "published reference",
                  title: str = ""):
    """Each metric's mean per protocol (groups) and arm (colours) as a point with ±std error bars, on an axis
    that spans the points, the baseline and the reference (not 0-1), so that differences of a few hundredths show.

    ``baseline`` (metric -> value) is drawn as a dashed line (the majority class), ``reference`` as a dotted one.
    Points, not bars: a bar's length from a cut axis would misstate a ratio.
    """
    arms = in_arm_order(summary["arm"])
    protocols = list(dict.fromkeys(summary["protocol"]))
    fig, axes = figure(1, len(metrics), width=max(3.0, 0.8 + 0.3 * len(arms) * len(protocols)), height=3.0)
    offsets, _ = bar_offsets(len(arms))
    for ax, m in zip(axes[0], metrics):
        shown = []
        for i, arm in enumerate(arms):
            rows = summary[summary["arm"] == arm].set_index("protocol").reindex(protocols)
            mean = rows[f"{m}_mean"].to_numpy(dtype=float)
            std = rows[f"{m}_std"].to_numpy(dtype=float) if f"{m}_std" in rows else np.full(len(mean), np.nan)
            std = np.nan_to_num(std)
            ax.errorbar(np.arange(len(protocols)) + offsets[i], mean, yerr=std, fmt="o", ms=5, capsize=2,
                        color=ARM_COLOURS.get(arm), label=arm_label(arm))
            shown += [*(mean - std), *(mean + std)]
        for lines, style, label in ((baseline, "--", ARM_LABELS["majority"]), (reference, ":", reference_label)):
            if lines and m in lines:
                ax.axhline(lines[m], color="black", ls=style, lw=1.1, label=label)
                shown.append(lines[m])
        low, high = np.nanmin(shown), np.nanmax(shown)
        pad = max(0.02, 0.08 * (high - low))
        ax.set_ylim(max(0.0, low - pad), min(1.0, high + pad))
        ax.set_xticks(np.arange(len(protocols)), [PROTOCOL_LABELS.get(p, p) for p in protocols])
        ax.set_xlim(-0.5, len(protocols) - 0.5)
        ax.set_ylabel(METRIC_LABELS.get(m, m))
        ax.grid(axis="y", lw=0.4, alpha=0.5)
        ax.spines[["top", "right"]].set_visible(False)
    legend_below(fig, axes[0, 0])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def curves(summary: pd.DataFrame, x: str, metrics=("auc",), baseline: Mapping[str, float] | pd.DataFrame | None = None,
           logx: bool = False, title: str = ""):
    """Metric vs ``x``: one row of panels per metric (shared y), one column per protocol; a mean line per arm
    with a ±std band over seeds. ``baseline`` is the majority class as a dashed line: a value per metric, or a
    :func:`majority` frame grouped by ``x`` (the baseline can move with ``x``, e.g. with the class ratio)."""
    arms = in_arm_order(summary["arm"])
    protocols = list(dict.fromkeys(summary["protocol"]))
    fig, axes = figure(len(metrics), len(protocols), width=3.6, height=2.6, sharex=True, sharey="row")
    for r, m in enumerate(metrics):
        for c, protocol in enumerate(protocols):
            ax = axes[r, c]
            for arm in arms:
                rows = summary[(summary["arm"] == arm) & (summary["protocol"] == protocol)].sort_values(x)
                xs, mean = rows[x].to_numpy(dtype=float), rows[f"{m}_mean"].to_numpy(dtype=float)
                colour = ARM_COLOURS.get(arm)
                ax.plot(xs, mean, marker="o", ms=3, color=colour, label=arm_label(arm))
                if f"{m}_std" in rows:
                    std = rows[f"{m}_std"].fillna(0).to_numpy(dtype=float)
                    ax.fill_between(xs, mean - std, mean + std, color=colour, alpha=0.15, lw=0)
            if isinstance(baseline, pd.DataFrame):
                base = baseline.sort_values(x)
                ax.plot(base[x], base[f"{m}_mean"], color="black", ls="--", lw=1, label=ARM_LABELS["majority"])
            elif baseline and m in baseline:
                ax.axhline(baseline[m], color="black", ls="--", lw=1, label=ARM_LABELS["majority"])
            if logx:
                ax.set_xscale("log")
            ticks = sorted(summary[x].dropna().unique())
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks], fontsize=8)
            ax.minorticks_off()
            if r == 0:
                ax.set_title(PROTOCOL_LABELS.get(protocol, protocol), fontsize=9)
            if c == 0:
                ax.set_ylabel(METRIC_LABELS.get(m, m))
            if r == len(metrics) - 1:
                ax.set_xlabel(AXIS_LABELS.get(x, x) + (" (log scale)" if logx else ""), fontsize=8)
            ax.spines[["top", "right"]].set_visible(False)
    legend_below(fig, axes[0, 0], ncol=3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def learning_curves(summary: pd.DataFrame, metrics=("auc", "balanced_acc"), baseline=None, title: str = ""):
    """Metric vs label fraction (log x), per protocol, a mean line and ±std band per arm."""
    return curves(summary, "label_fraction", metrics, baseline, logx=True, title=title)


def imbalance_curves(summary: pd.DataFrame, metrics=("balanced_acc", "minority_recall", "auc"), baseline=None,
                     title: str = ""):
    """Metric vs majority:minority ratio (log x), per protocol, a mean line and ±std band per arm."""
    return curves(summary, "imbalance_ratio", metrics, baseline, logx=True, title=title)


def drop_table(df: pd.DataFrame, x: str = "imbalance_ratio", metrics=("balanced_acc", "minority_recall", "auc"),
               decimals: int = 3) -> pd.DataFrame:
    """How much each arm x protocol loses from the smallest to the largest ``x`` (paired by seed).

    Cells are "mean ± std" of (metric at smallest x - metric at largest x) over seeds: larger is a bigger
    drop. ``least drop`` names, per protocol, the arm with the smallest mean drop of the first metric.
    """
    done = df[df["skipped"].isna()] if "skipped" in df else df
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
