"""The recorded rows of :mod:`benchmarks.throughput`, read for the book's page *Pipeline speed*.

Rows come from the JSON-lines files the benchmark appends (``--out``, kept under ``benchmarks/results/<date>/``);
this module only reads them: a table of images/s and ratios per device, size, stem, method and batch, the ratios
against the speed goals for the kind of device, and one figure. From the terminal, the two tables:

    python -m benchmarks.throughput_results benchmarks/results/2026-11-27/gpu_h100_fdd3ce1/bench.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from medlib.methods import BENCHMARKED
from medlib.plots import bar_offsets, figure, legend_below

METHOD_LABELS = {name: method.title for name, method in BENCHMARKED.items()}
VARIANTS = {"b": ("b: standard recipe (PIL, DataLoader)", "#999999"),  # row key: (legend, colour)
            "a_eager": ("a eager: medlib's step without CUDA graphs", "#9ecae1"),
            "a": ("a: medlib's step", "#08519c"), "c": ("c: compute bound (views made beforehand)", "#fdae6b")}
OPTIONAL = ("a_eager", "c_eager", "graph_gain", "a_fp32", "bf16_gain")  # absent from rows of older runs
INDEX = ["device", "size (px)", "stem", "method", "batch"]  # what tells the rows of a table apart


def read_rows(paths) -> pd.DataFrame:
    """The rows of benchmark JSON-lines files (``--out``), without their samples, in file order; columns a row
    lacks (:data:`OPTIONAL`) are empty, and rows from before ``stem`` was recorded had the ImageNet stem."""
    rows = [json.loads(line) for path in paths for line in Path(path).read_text().splitlines() if line.strip()]
    df = pd.DataFrame([{"stem": "imagenet"} | {k: v for k, v in r.items() if k != "samples"} for r in rows])
    return df.reindex(columns=[*df.columns, *(c for c in OPTIONAL if c not in df)])


def rows_table(df: pd.DataFrame) -> pd.DataFrame:
    """The rows for reading: images/s of each variant and the ratios, one line per device, size, stem, method and
    batch."""
    out = pd.DataFrame({"device": df["device"], "size (px)": df["size"], "stem": df["stem"],
                        "method": df["method"].map(METHOD_LABELS), "batch": df["batch_size"]})
    for key, label in (("a", "a medlib"), ("a_eager", "a eager"), ("b", "b standard"), ("c", "c compute")):
        out[label] = [f"{x:,.0f}" if pd.notna(x) else "-" for x in df[key]]
    for key, label, decimals in (("a_over_b", "a/b", 2), ("a_over_c", "a/c", 3), ("graph_gain", "graph gain", 2),
                                 ("bf16_gain", "bf16 gain", 2)):
        out[label] = [f"{x:.{decimals}f}" if pd.notna(x) else "-" for x in df[key]]
    return out.set_index(INDEX)


GOALS = {"CPU": {"a/b": 1.3, "a/c": 0.90}, "CUDA": {"a/b": 5.0, "a/c": 0.85}}  # the targets per kind of device


def goals(df: pd.DataFrame) -> pd.DataFrame:
    """Each row's a/b and a/c against the goals for its kind of device (:data:`GOALS`): value, goal, met."""
    out = []
    for _, r in df.iterrows():
        kind = "CUDA" if "(CUDA)" in r["device"] else "CPU"
        line = {"device": r["device"], "size (px)": r["size"], "stem": r["stem"], "method": METHOD_LABELS[r["method"]],
                "batch": r["batch_size"]}
        for ratio, key in (("a/b", "a_over_b"), ("a/c", "a_over_c")):
            line |= {ratio: round(r[key], 3), f"{ratio} goal": GOALS[kind][ratio],
                     f"{ratio} met": "yes" if r[key] >= GOALS[kind][ratio] else "no"}
        out.append(line)
    return pd.DataFrame(out).set_index(INDEX)


def _stem_note(stem: str) -> str:
    """A plot label's mention of the stem: only the full profile's small-input stem is named."""
    return "" if stem == "imagenet" else f", {stem} stem"


def plot_rows(df: pd.DataFrame):
    """Images/s of each variant for every benchmark row, one panel (with its own scale) per device."""
    devices = list(dict.fromkeys(df["device"]))
    fig, axes = figure(1, len(devices), 11 / max(2, len(devices)), 0.55 * max(df.groupby("device").size()) + 1.2)
    for ax, device in zip(axes[0], devices):
        rows = df[df["device"] == device].reset_index(drop=True)
        variants = [v for v in VARIANTS if rows[v].notna().any()]
        offsets, height = bar_offsets(len(variants))
        for i, v in enumerate(variants):
            ax.barh(np.arange(len(rows)) + offsets[i], rows[v].astype(float), height,
                    color=VARIANTS[v][1], label=VARIANTS[v][0])
        ax.set_yticks(np.arange(len(rows)), [f"{METHOD_LABELS[m]}, {s} px,\nbatch {b}{_stem_note(t)}" for m, s, b, t in
                                             zip(rows["method"], rows["size"], rows["batch_size"], rows["stem"])],
                      fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("source images / s (two views each)")
        ax.set_title(device.replace(", ", "\n", 1), fontsize=8)
        ax.xaxis.set_major_formatter(lambda x, _: f"{x / 1000:g}k" if x >= 1000 else f"{x:g}")
        ax.spines[["top", "right"]].set_visible(False)
    legend_below(fig, max(axes[0], key=lambda ax: len(ax.get_legend_handles_labels()[0])), ncol=2)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput_results",
                                     description="the rows of benchmark files as tables, and the goals")
    parser.add_argument("paths", nargs="+", help="JSON-lines files written by python -m benchmarks.throughput --out")
    paths = parser.parse_args(argv).paths
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        parser.error(f"no such file: {', '.join(missing)}")
    rows = read_rows(paths)
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(rows_table(rows), goals(rows), sep="\n\n")


if __name__ == "__main__":
    main()
