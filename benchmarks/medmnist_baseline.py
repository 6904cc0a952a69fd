"""Validate the harness against MedMNIST v2's published ResNet-18 (28) baselines (Yang et al., 2023).

The recipe: ResNet-18 from scratch, Adam lr 1e-3, batch 128, 100 epochs, lr x0.1 at 50 % and 75 %, the epoch with
the best val AUC kept, no augmentation, the small-input ("cifar") stem at 28 px. Results go to the run store
and the table to benchmarks/medmnist_baseline.md (every number from the stored runs).

    python -m benchmarks.medmnist_baseline --flags breastmnist retinamnist --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

from medlib.experiment import AdaptConfig, run_grid, summarize
from medlib.provenance import device
from medlib.compute import default_device

PUBLISHED = {"breastmnist": (0.901, 0.863), "retinamnist": (0.717, 0.524), "pneumoniamnist": (0.944, 0.854)}
OUT = Path(__file__).with_name("medmnist_baseline.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flags", nargs="+", default=list(PUBLISHED), choices=list(PUBLISHED))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--stem", default="cifar", choices=["cifar", "imagenet"])
    args = parser.parse_args()
    t0 = time.time()
    configs = [AdaptConfig("scratch", flag, "finetune", seed, stem=args.stem, epochs=args.epochs)
               for flag in args.flags for seed in args.seeds]
    summary = summarize(run_grid(configs), ["target"], ["auc", "acc"])
    lines = [f"| {r.target} | {args.stem} | {args.epochs} | {r.seeds} | {r.auc_mean:.3f} ± {r.auc_std:.3f} | "
             f"{r.acc_mean:.3f} ± {r.acc_std:.3f} | {PUBLISHED[r.target][0]:.3f} / {PUBLISHED[r.target][1]:.3f} | "
             f"{r.auc_mean - PUBLISHED[r.target][0]:+.3f} |" for r in summary.itertuples()]
    section = "\n".join([
        f"\n## {date.today()}: {', '.join(args.flags)}, stem {args.stem}, {args.epochs} epochs",
        f"`python -m benchmarks.medmnist_baseline --flags {' '.join(args.flags)} --seeds "
        f"{' '.join(map(str, args.seeds))} --epochs {args.epochs} --stem {args.stem}` on "
        f"{device(default_device())}, {time.time() - t0:.0f} s wall (incl. cached runs).\n",
        "| dataset | stem | epochs | seeds | test AUC (ours) | test ACC (ours) | published AUC / ACC | ΔAUC |",
        "|---|---|---:|---:|---|---|---|---:|", *lines, ""])
    if not OUT.exists():
        OUT.write_text("# MedMNIST v2 ResNet-18 (28) baselines, reproduced with medlib\n\nPublished figures: "
                       "Yang et al., Scientific Data 10, 41 (2023), Table 3, ResNet-18 (28).\n")
    with OUT.open("a") as f:
        f.write(section)
    print(section)


if __name__ == "__main__":
    main()
