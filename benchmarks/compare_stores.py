"""How far two executions of the same study agree: mean test AUC per condition in two run stores, side by side.

Two stores filled by the same profile with different pre-trainings of every arm (another seed, another
precision, another machine) show how much of a difference between arms is the pre-training itself: the
chapters' spreads are over adaptation seeds only. Runs are matched on their config (the run key also holds the
precision, so two stores of different precision never share a key). Prints one row per condition of the
head-to-head grid (all labels, no imbalance), the median and largest |difference| per arm kind and protocol, and
the wall time of every adaptation run found in both stores, summed per protocol and train-set size, with the
ratio first / second (when the stores differ in precision or machine, this is what the change cost or saved).

    python -m benchmarks.compare_stores runs_fp32 runs_bf16
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict

import pandas as pd

from medlib.store import RunStore, canonical


def adaptation_runs(root: str) -> dict[str, dict]:
    """The finished adaptation runs in ``root``, by their canonical config."""
    return {canonical(run["config"]): run for run in RunStore(root).runs("adapt")}


def head_to_head_auc(runs: dict[str, dict]) -> dict[tuple, float]:
    """Mean test AUC over seeds per (target, protocol, arm, source pool) of the all-labels ``runs``."""
    aucs = defaultdict(list)
    for run in runs.values():
        c = run["config"]
        if any(c[k] is not None for k in ("label_fraction", "per_class", "imbalance_ratio")) or c["keep_model"]:
            continue
        pool = "+".join(c["pretrain"]["sources"]) if c["pretrain"] else "-"
        aucs[(c["target"], c["protocol"], c["arm"], pool)].append(run["result"]["test"]["auc"])
    return {k: statistics.mean(v) for k, v in aucs.items()}


def compare(first: str, second: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per condition found in both stores, the |difference| summary per arm kind and protocol)."""
    runs = adaptation_runs(first), adaptation_runs(second)
    shared = set(runs[0]) & set(runs[1])  # the same runs in both: the means average the same seeds
    a, b = (head_to_head_auc({k: r[k] for k in shared}) for r in runs)
    rows = [dict(zip(("target", "protocol", "arm", "pool"), k), first=a[k], second=b[k], difference=b[k] - a[k])
            for k in sorted(set(a) & set(b))]
    if not rows:
        raise SystemExit(f"no all-labels adaptation run is in both {first} and {second}")
    df = pd.DataFrame(rows)
    kind = df["arm"].where(df["arm"].isin(["scratch", "imagenet"]), "pre-trained (tl, ssl-*)")
    summary = df.assign(kind=kind, size=df["difference"].abs()).groupby(["kind", "protocol"])["size"].agg(
        conditions="count", median_abs_difference="median", largest_abs_difference="max")
    return df, summary


def adaptation_seconds(first: str, second: str, large: int = 500) -> pd.DataFrame:
    """Wall seconds of the adaptation runs in both stores (every scenario), summed per protocol and train-set size
    (fewer than ``large`` images or not), and the ratio first / second."""
    a, b = adaptation_runs(first), adaptation_runs(second)
    rows = [{"protocol": a[k]["config"]["protocol"],
             "train images": f">= {large}" if a[k]["result"]["n_train"] >= large else f"< {large}",
             "first": a[k]["result"]["seconds"], "second": b[k]["result"]["seconds"]} for k in set(a) & set(b)]
    if not rows:
        raise SystemExit(f"no adaptation run is in both {first} and {second}")
    out = pd.DataFrame(rows).groupby(["protocol", "train images"]).agg(
        runs=("first", "size"), first_seconds=("first", "sum"), second_seconds=("second", "sum"))
    return out.assign(ratio=out["first_seconds"] / out["second_seconds"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first")
    parser.add_argument("second")
    args = parser.parse_args(argv)
    df, summary = compare(args.first, args.second)
    print(df.round(3).to_string(index=False))
    print()
    print(summary.round(3).to_string())
    print()
    print(adaptation_seconds(args.first, args.second).round(2).to_string())


if __name__ == "__main__":
    main()
