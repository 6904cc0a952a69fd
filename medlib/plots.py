"""Figures of the study book: one look per idea, the same colour and label for an arm in every chapter.

Every figure function returns a matplotlib ``Figure`` (closed in pyplot, so a notebook shows it once, as the
cell's value). Nothing here trains or scores a model: the inputs are :func:`medlib.experiment.run_grid` rows,
:func:`medlib.experiment.summarize` summaries, stored pre-training results, :class:`medlib.data.ImageSet`
splits and the decision's tables (:mod:`medlib.decision`). Tables are in :mod:`medlib.tables`, sentences in
:mod:`medlib.prose`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from . import methods, scenarios
from .data import ImageSet
from .methods import ARM_COLOURS, ARMS
from .metrics import METRICS
from .scenarios import SCENARIOS
from .stats import completed

ARM_LABELS = methods.ARM_LABELS | {"majority": "Majority class (baseline)"}  # arms' order and colours: methods
PROTOCOL_LABELS = {"linear": "Linear probe", "finetune": "Fine-tuning"}
METRIC_LABELS = {"auc": "AUC", "acc": "ACC", "balanced_acc": "Balanced acc.", "macro_f1": "Macro-F1",
                 "minority_recall": "Minority recall"}
METRIC_WORDS = {"balanced_acc": "balanced accuracy", "minority_recall": "minority-class recall"}  # in a sentence
AXIS_LABELS = {s.field: s.axis for s in SCENARIOS}
SPLIT_COLOURS = ("#2a9d8f", "#e9c46a", "#264653", "#a8dadc")  # data figures: never an arm's colour
DPI = 90


def arm_label(arm: str) -> str:
    return ARM_LABELS.get(arm, arm)


def metric_words(metric: str) -> str:
    """A metric as a sentence names it ("balanced accuracy" where an axis says "Balanced acc.")."""
    return METRIC_WORDS.get(metric, METRIC_LABELS.get(metric, metric))


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


# ------------------------------------------------------------------------------------------- results


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


# ---------------------------------------------------------------------------------------- the decision


def plot_summary(gain: pd.DataFrame, table: pd.DataFrame, metric: str = "auc"):
    """The static summary: per condition (rows) and arm (columns), the mean ``metric`` gain over scratch
    (colour, number; :func:`medlib.decision.gain_matrix`); the leader's cell of the decision ``table`` is framed,
    thick when its margin over the runner-up is called."""
    from matplotlib.patches import Rectangle
    values = gain.to_numpy(dtype=float)
    limit = max(1e-3, float(np.nanmax(np.abs(values)))) if np.isfinite(values).any() else 1.0
    fig, ax = plt.subplots(figsize=(1.0 * values.shape[1] + 3.6, 0.3 * values.shape[0] + 1.4), dpi=DPI)
    plt.close(fig)
    im = ax.imshow(values, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(values.shape[1]), [arm_label(a) for a in gain.columns], rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(values.shape[0]), gain.index, fontsize=7)
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, f"{v:+.2f}", ha="center", va="center", fontsize=6,
                    color="white" if abs(v) > 0.6 * limit else "black")
    arms = list(gain.columns)
    for i, (winner, beyond) in enumerate(zip(table["winner"], table["beyond_noise"])):
        if winner in arms:
            ax.add_patch(Rectangle((arms.index(winner) - 0.5, i - 0.5), 1, 1, fill=False, ec="black",
                                   lw=2.2 if beyond is True else 1.0))
    fig.colorbar(im, ax=ax, label=f"{METRIC_LABELS.get(metric, metric)} gain over scratch", shrink=0.8)
    ax.set_title("Leader framed (thick frame: called after correction)", fontsize=8)
    fig.tight_layout()
    return fig


def plot_condition(df: pd.DataFrame, target: str, scenario: str, protocol: str, arm: str = "all",
                   metric: str = "auc"):
    """One condition family for the explorer: ``metric`` per arm against the scenario level (or bars when
    the scenario has one level), every seed as a dot; ``arm`` is highlighted (``"all"``: none faded)."""
    done = completed(df)
    part = done[(done["target"] == target) & (done["scenario"] == scenario) & (done["protocol"] == protocol)]
    fig, ax = plt.subplots(figsize=(5.2, 3.2), dpi=DPI)
    plt.close(fig)
    if part.empty:
        ax.text(0.5, 0.5, "no runs for this combination", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    arms = in_arm_order(part["arm"])
    levels = sorted(part["level"].dropna().unique())
    for i, a in enumerate(arms):
        rows = part[part["arm"] == a]
        alpha = 1.0 if arm in ("all", a) else 0.2
        colour = ARM_COLOURS.get(a)
        if levels:
            mean = rows.groupby("level")[metric].mean()
            ax.plot(mean.index, mean.to_numpy(), marker="o", ms=4, color=colour, alpha=alpha, label=arm_label(a),
                    lw=2.2 if arm == a else 1.2)
            ax.scatter(rows["level"], rows[metric], s=8, color=colour, alpha=alpha * 0.6)
        else:
            ax.bar(i, rows[metric].mean(), color=colour, alpha=alpha, label=arm_label(a))
            ax.scatter([i] * len(rows), rows[metric], s=8, color="black", alpha=alpha, zorder=3)
    if levels:
        if scenarios.BY_NAME[scenario].log_axis:
            ax.set_xscale("log")
        ax.set_xticks(levels, [f"{v:g}" for v in levels])
        ax.minorticks_off()
        ax.set_xlabel(scenarios.BY_NAME[scenario].axis)
    else:
        ax.set_xticks(range(len(arms)), [arm_label(a) for a in arms], rotation=20, ha="right", fontsize=7)
    ax.set_ylabel(f"test {METRIC_LABELS.get(metric, metric)}")
    ax.set_title(f"{target} · {scenario} · {PROTOCOL_LABELS.get(protocol, protocol)}", fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    if levels:
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def explorer(df: pd.DataFrame):
    """An ipywidgets explorer of the stored results: dataset x scenario x arm x protocol (and metric)
    dropdowns that redraw :func:`plot_condition`. Live only in a running Jupyter kernel.

    The figure is shown as a PNG in an ``Image`` widget whose value is replaced on every change (no
    ``Output`` capture), so executing the cell without a front end (papermill, nbval) draws once and returns.
    """
    import io

    import ipywidgets as widgets
    done = completed(df)

    def options(column):
        return list(dict.fromkeys(done[column]))

    controls = {
        "target": widgets.Dropdown(options=options("target"), description="dataset"),
        "scenario": widgets.Dropdown(options=options("scenario"), description="scenario"),
        "arm": widgets.Dropdown(options=[("all", "all")] + [(arm_label(a), a) for a in in_arm_order(done["arm"])],
                                description="arm"),
        "protocol": widgets.Dropdown(options=[(PROTOCOL_LABELS.get(p, p), p) for p in options("protocol")],
                                     description="protocol"),
        "metric": widgets.Dropdown(options=[(METRIC_LABELS.get(m, m), m) for m in METRICS], description="metric"),
    }
    image = widgets.Image(format="png")

    def redraw(_=None):
        buffer = io.BytesIO()
        plot_condition(done, **{k: w.value for k, w in controls.items()}).savefig(buffer, format="png",
                                                                                   bbox_inches="tight")
        image.value = buffer.getvalue()

    for w in controls.values():
        w.observe(redraw, names="value")
    redraw()
    return widgets.VBox([widgets.HBox(list(controls.values())[:3]), widgets.HBox(list(controls.values())[3:]), image])
