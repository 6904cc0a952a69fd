"""How often the book's 95 % interval holds the true mean AUC, on simulated studies whose truth is known.

A simulated study is one arm on BreastMNIST's test split (42 malignant, 114 benign images): binormal scores with
separation ``mu`` plus a pre-training effect ``u ~ N(0, tau^2)`` per pre-training, and image effects (share
``rho``) that every run sees, so runs are crossed with the test images as in the book. The true mean AUC is
E_u Φ((mu + u) / √2). Each study is bootstrapped by :func:`medlib.stats.bootstrap` (pre-trainings, then seeds,
then images) and the percentile interval is checked against the truth. Scenarios: three pre-trainings with a
pre-training s.d. near 0.06 AUC, none, and near 0.10 AUC; and one pre-training adapted with three seeds (the CPU
``quick`` execution, whose intervals the book flags). A last row times the bootstrap of 100 conditions (5 arms x 3
seeds, test splits of 156 to 624 images) at the book's 2,000 replicates. Rows go to ``--out`` as JSON lines as
they come; the PNG draws coverage per scenario with its Wilson 95 % interval.

    python -m benchmarks.interval_coverage --out interval_coverage/
"""

import argparse
import json
import math
import os
import time

import numpy as np
import pandas as pd
from scipy.stats import binomtest, norm

from benchmarks.budget_curve import output_options, rows_and_figure, save
from medlib import stats
from medlib.metrics import evaluate
from medlib.validation import check_number

MU = 1.2  # binormal separation: a true AUC near 0.80, BreastMNIST's
SCENARIOS = {  # name: (pre-trainings, adaptation seeds per pre-training, tau)
    "3 pre-trainings, pre-training s.d. near 0.06 AUC": (3, 1, 0.3),
    "3 pre-trainings, no pre-training variance": (3, 1, 0.0),
    "3 pre-trainings, pre-training s.d. near 0.10 AUC": (3, 1, 0.5),
    "1 pre-training, 3 adaptation seeds": (1, 3, 0.3),
}


def simulate(rng, means: dict, pretrainings=3, adaptations=1, tau=0.3, n_pos=42, n_neg=114, rho=0.5,
             target="breastmnist", **columns):
    """A simulated condition: binormal scores whose separation is ``means[arm]`` plus a pre-training effect
    (s.d. ``tau``, one per arm x pre-training), on one test split whose image effects (share ``rho``) every
    run sees; the arm ``scratch`` has no pre-training (its seeds vary it instead). Returns (runs, scores)."""
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)].reshape(-1, 1)
    image = rng.standard_normal(len(y)) * math.sqrt(rho)
    rows, scores = [], {}
    for arm, mu in means.items():
        for p in range(pretrainings):
            u = tau * rng.standard_normal()
            for a in range(adaptations):
                seed = p * adaptations + a
                s = (mu + u) * y[:, 0] + image + rng.standard_normal(len(y)) * math.sqrt(1 - rho)
                score = 1 / (1 + np.exp(-s))
                run = f"{target}-{arm}-{seed}-{columns}"
                scores[run] = stats.Prediction(y, np.c_[1 - score, score], "binary-class")
                rows.append(dict(arm=arm, seed=seed, pretrain_seed=np.nan if arm == "scratch" else float(p),
                                 run=run, target=target, size=28, skipped=None, **columns)
                            | evaluate(y, scores[run].y_score, "binary-class"))
    return pd.DataFrame(rows), scores


def _over_pretrainings(mu, tau, f):
    """E over u ~ N(0, tau²) of f(Φ((mu + u) / √2)), the binormal AUC of one pre-training (Gauss-Hermite)."""
    x, w = np.polynomial.hermite_e.hermegauss(60)
    return float((w * f(norm.cdf((mu + tau * x) / math.sqrt(2)))).sum() / w.sum())


def true_auc(mu, tau):
    """The true mean AUC over pre-trainings."""
    return _over_pretrainings(mu, tau, lambda a: a)


def pretraining_sd(mu, tau):
    """The s.d. of the true AUC between pre-trainings."""
    return math.sqrt(_over_pretrainings(mu, tau, lambda a: (a - true_auc(mu, tau)) ** 2))


def coverage(name, studies, resamples, seed=0) -> dict:
    """One scenario's row: the share of ``studies`` whose interval holds the truth, the mean width, and the
    s.d. of a single run's AUC between studies (the test images' and scores' noise, plus pre-training)."""
    pretrainings, adaptations, tau = SCENARIOS[name]
    rng, truth, hits, widths, first = np.random.default_rng(seed), true_auc(MU, tau), 0, [], []
    start = time.time()
    for i in range(studies):
        runs, scores = simulate(rng, {"tl": MU}, pretrainings=pretrainings, adaptations=adaptations, tau=tau)
        row = stats.intervals(stats.bootstrap(runs, scores, resamples=resamples, seed=i)).iloc[0]
        hits += row["ci_low"] <= truth <= row["ci_high"]
        widths.append(row["ci_high"] - row["ci_low"])
        first.append(runs["auc"].iloc[0])
    share, (low, high) = hits / studies, binomtest(int(hits), studies).proportion_ci(method="wilson")
    return dict(scenario=name, pretrainings=pretrainings, adaptations=adaptations, tau=tau, true_auc=truth,
                pretraining_sd=pretraining_sd(MU, tau), run_sd=float(np.std(first, ddof=1)), studies=studies,
                resamples=resamples, coverage=share, coverage_low=float(low), coverage_high=float(high),
                mean_width=float(np.mean(widths)), seconds=time.time() - start)


def timing(resamples=stats.RESAMPLES, conditions=100, seed=0) -> dict:
    """The bootstrap of ``conditions`` conditions (5 arms x 3 seeds each, test splits of 156 to 624 images)."""
    rng = np.random.default_rng(seed)
    arms = {a: 1.0 + 0.1 * i for i, a in enumerate(["tl", "ssl-simclr", "ssl-byol", "ssl-vicreg", "fusion"])}
    parts = [simulate(rng, arms, n_pos=n // 4, n_neg=n - n // 4, condition=c)
             for c, n in enumerate(np.linspace(156, 624, conditions).astype(int))]
    runs = pd.concat([r.assign(target=f"t{c}") for c, (r, _) in enumerate(parts)], ignore_index=True)
    scores = {k: v for _, s in parts for k, v in s.items()}
    start = time.time()
    stats.intervals(stats.bootstrap(runs, scores, by=["condition"], resamples=resamples), by=["condition"])
    return dict(scenario="timing", conditions=conditions, runs=len(runs), resamples=resamples,
                seconds=time.time() - start, load=os.getloadavg()[0], threads=os.cpu_count())


def plot(rows, path):
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["scenario"] != "timing"]
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.5 * len(rows)))
    y = np.arange(len(rows))[::-1]
    ax.errorbar([r["coverage"] for r in rows], y, fmt="o", color="C0", label="coverage (Wilson 95 % interval)",
                xerr=[[r["coverage"] - r["coverage_low"] for r in rows],
                      [r["coverage_high"] - r["coverage"] for r in rows]])
    ax.axvline(0.95, color="k", ls="--", lw=1, label="nominal 95 %")
    ax.set_yticks(y, [r["scenario"] for r in rows])
    ax.set_xlabel("share of simulated studies whose interval holds the true mean AUC")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    save(fig, [ax], path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    output_options(p, "interval_coverage")
    p.add_argument("--studies", type=int, default=200, help="simulated studies per scenario")
    p.add_argument("--resamples", type=int, default=400, help="bootstrap replicates per study")
    p.add_argument("--conditions", type=int, default=100, help="conditions in the timing row (0: no timing)")
    args = p.parse_args(argv)

    def compute():
        check_number("studies", args.studies, low=1, integer=True)
        check_number("resamples", args.resamples, low=2, integer=True)
        check_number("conditions", args.conditions, low=0, integer=True)
        args.out.mkdir(parents=True, exist_ok=True)
        rows = []
        with open(args.out / "interval_coverage.jsonl", "w") as f:
            for name in SCENARIOS:
                rows.append(coverage(name, args.studies, args.resamples))
                f.write(json.dumps(rows[-1]) + "\n")
                f.flush()
                r = rows[-1]
                print(f"{name}: coverage {r['coverage']:.3f} ({r['coverage_low']:.3f}-{r['coverage_high']:.3f}), "
                      f"pre-training s.d. {r['pretraining_sd']:.3f} AUC, one run's s.d. {r['run_sd']:.3f}, "
                      f"mean width {r['mean_width']:.3f}, {r['seconds']:.0f} s", flush=True)
            if args.conditions:
                rows.append(timing(conditions=args.conditions))
                f.write(json.dumps(rows[-1]) + "\n")
                print(f"bootstrap of {args.conditions} conditions ({rows[-1]['runs']} runs, "
                      f"{rows[-1]['resamples']} replicates): {rows[-1]['seconds']:.1f} s at load "
                      f"{rows[-1]['load']:.1f}", flush=True)
        return rows

    rows_and_figure(p, args, "interval_coverage", compute, plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
