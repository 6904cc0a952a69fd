"""How far two executions of the same study agree: mean test AUC per condition in two run stores, side by side.

Two stores filled by the same profile with different pre-trainings of every arm (another seed, another
precision, another machine) show how much of a difference between arms is the pre-training itself: the
chapters' spreads are over adaptation seeds only. Runs are matched on their config (the run key also holds the
precision, so two stores of different precision never share a key). Prints one row per condition of the
head-to-head grid (all labels, no imbalance) and the median and largest |difference| per arm kind and protocol.

    python benchmarks/compare_stores.py runs_fp32 runs_bf16
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict

import pandas as pd

from medlib.store import RunStore


def head_to_head_auc(root: str) -> dict[tuple, float]:
    """Mean test AUC over seeds per (target, protocol, arm, source pool) of the all-labels runs in ``root``."""
    aucs = defaultdict(list)
    for run in RunStore(root).runs("adapt"):
        c = run["config"]
        if any(c[k] is not None for k in ("label_fraction", "per_class", "imbalance_ratio")) or c["keep_model"]:
            continue
        pool = "+".join(c["pretrain"]["sources"]) if c["pretrain"] else "-"
        aucs[(c["target"], c["protocol"], c["arm"], pool)].append(run["result"]["test"]["auc"])
    return {k: statistics.mean(v) for k, v in aucs.items()}


def compare(first: str, second: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per condition found in both stores, the |difference| summary per arm kind and protocol)."""
    a, b = head_to_head_auc(first), head_to_head_auc(second)
    rows = [dict(zip(("target", "protocol", "arm", "pool"), k), first=a[k], second=b[k], difference=b[k] - a[k])
            for k in sorted(set(a) & set(b))]
    if not rows:
        raise SystemExit(f"no all-labels adaptation run is in both {first} and {second}")
    df = pd.DataFrame(rows)
    kind = df["arm"].where(df["arm"].isin(["scratch", "imagenet"]), "pre-trained (tl, ssl-*)")
    summary = df.assign(kind=kind, size=df["difference"].abs()).groupby(["kind", "protocol"])["size"].agg(
        conditions="count", median_abs_difference="median", largest_abs_difference="max")
    return df, summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first")
    parser.add_argument("second")
    args = parser.parse_args(argv)
    df, summary = compare(args.first, args.second)
    print(df.round(3).to_string(index=False))
    print()
    print(summary.round(3).to_string())


if __name__ == "__main__":
    main()
