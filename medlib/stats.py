"""The study's statistics: spreads over seeds, bootstrap intervals, paired comparisons and what they decide.

**Spread over seeds** (:func:`seed_summary`): the mean and sample standard deviation (ddof = 1) of each column
per group; every "mean ± s.d. over seeds" in the book comes from here.

**Intervals.** A condition (target x scenario x protocol) holds runs of several arms; each run adapts one
pre-training (the unit of replication) with one adaptation seed and is scored on the target's test split. The
95 % interval of an arm's mean comes from a hierarchical bootstrap (Davison & Hinkley 1997, ch. 3; Field &
Welsh 2007; Saravanan et al. 2020): each replicate draws the pre-trainings with replacement, then the
adaptation seeds within each drawn pre-training with replacement, then the test images with replacement
(stratified by class, as pROC's stratified bootstrap, Robin et al. 2011), and recomputes each drawn run's metric
on the drawn images. The images are *crossed* with the runs (every run scores the same test images), so one
image draw is shared by every run of a test split, as in the pigeonhole bootstrap for crossed designs (Owen
2007); the seed draw is shared by every arm of a condition, so runs stay paired by seed. AUC is recomputed
per replicate with medmnist's definition (binary: the last column's ROC AUC; multi-class: the mean of the
one-vs-rest AUCs; multi-label: the mean over labels), as the Mann-Whitney statistic with each image weighted by
how often it was drawn (ties count one half). The interval is the percentile interval of the replicates.
Where a pre-trained arm has one pre-training (``pretrain_per_seed`` False, the CPU ``quick`` execution), the
interval leaves out the variance of pre-training; ``pretrainings`` and ``pretraining_in_ci`` say so.

**Paired comparisons** (:func:`compare`): arm A minus arm B in each condition, from the same replicates (same
seeds, same images), with its percentile interval; the two-sided p-value of "no difference" is the normal
approximation to the bootstrap distribution, ``2 Φ(-|Δ| / se*)`` (Efron & Tibshirani 1993, §16), because a
tail-count p-value cannot fall below ``2 / (B + 1)``, and Holm's smallest threshold across m comparisons is
``0.05 / m`` (with B = 2000 and m = 60, tail counts could never call a difference). A permutation test over
pre-training seeds is not used: with three seeds it has 8 sign patterns, so its smallest two-sided p is 0.25,
and it would leave the test images' uncertainty out. Effect sizes: the difference itself (metric units) and
d_z, the mean paired difference over seeds divided by its s.d. (Cohen 1988; Lakens 2013).

**Multiplicity** (:func:`adjust`): Holm's step-down correction (Holm 1979) by default: it bounds the chance of
calling *any* false difference in the family at alpha under every dependence between the tests (the
conditions share test images and pre-trainings), and a recommendation is a claim that should hold in every
condition it cites. Benjamini-Hochberg (1995) is available; it bounds the expected share of false calls and
is proven only for independent or positively dependent tests. A difference is *called* only when its corrected
p is below alpha; :func:`verdicts` turns the corrected results, and nothing else, into words.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from .metrics import METRICS, predictions as predicted_labels
from .validation import ParameterError, check_choice, check_number

CONFIDENCE = 0.95
RESAMPLES = 2000
ALPHA = 0.05
CORRECTIONS = ("holm", "bh")
UNDECIDED = "not decided by this evidence"


def completed(runs: pd.DataFrame) -> pd.DataFrame:
    """The rows of a run grid (:func:`medlib.experiment.run_grid`) that hold a result: those with a ``skipped``
    note (an ``imagenet`` run without its weights) are left out."""
    return runs[runs["skipped"].isna()] if "skipped" in runs else runs


def seed_summary(df: pd.DataFrame, by: Sequence[str], columns: Sequence[str], count: str = "seeds") -> pd.DataFrame:
    """Mean and standard deviation (ddof = 1) of ``columns`` per ``by`` group, named ``<column>_mean`` and
    ``<column>_std``, and the group's size as ``count``; groups in order of first appearance."""
    grouped = df.groupby(list(by), sort=False, dropna=False)[list(columns)]
    out = grouped.mean().add_suffix("_mean").join(grouped.std(ddof=1).add_suffix("_std"))
    out[count] = grouped.size()
    return out.reset_index()


# ------------------------------------------------------------------------------------------ resampling


@dataclass(frozen=True)
class Prediction:
    """One run's test split: true labels, predicted scores (n x classes or labels), the task and the minority
    class that ``minority_recall`` scores (None: the rarest class of ``y_true``, as :func:`medlib.metrics.evaluate`)."""

    y_true: np.ndarray
    y_score: np.ndarray
    task: str
    minority: int | None = None


def _multi_label(task: str) -> bool:
    return task == "multi-label, binary-class"


def image_counts(y_true: np.ndarray, task: str, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``n x resamples`` multiplicities (float32; one column per draw) of the test images in bootstrap draws with
    replacement, stratified by class for single-label tasks (each class keeps its size; Robin et al. 2011),
    unstratified for multi-label ones."""
    y = np.asarray(y_true)
    strata = np.zeros(len(y), dtype=int) if _multi_label(task) else y.reshape(len(y), -1)[:, 0]
    counts = np.zeros((len(y), resamples), dtype=np.float32)
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        draws = rng.integers(0, len(members), size=(resamples, len(members)))
        draws += np.arange(resamples)[:, None] * len(members)
        counts[members] = np.bincount(draws.ravel(), minlength=resamples * len(members)).reshape(resamples, -1).T
    return counts


def _weighted_auc(score: np.ndarray, positive: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC of ``score`` (positives above negatives, ties one half) in every column of ``counts``
    (image multiplicities): each positive adds its multiplicity times the weight of the negatives below it plus
    half the weight of those tied with it, read from a cumulative sum over the negatives in score order, so a
    run costs O(n x resamples). Exact: the cumulative counts are integers below 2^24 (float32 holds them), the
    products are summed in float64."""
    neg, pos = np.flatnonzero(~positive), np.flatnonzero(positive)
    order = np.argsort(score[neg], kind="stable")
    neg_scores = score[neg][order]
    cum = np.zeros((len(neg) + 1, counts.shape[1]), dtype=np.float32)
    for i, image in enumerate(neg[order]):  # row by row: numpy's cumsum along axis 0 is several times slower
        np.add(cum[i], counts[image], out=cum[i + 1])
    lo, hi = np.searchsorted(neg_scores, score[pos], "left"), np.searchsorted(neg_scores, score[pos], "right")
    below = cum[lo] if np.array_equal(lo, hi) else 0.5 * (cum[lo] + cum[hi])  # no ties: one gather
    c_pos = counts[pos]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.einsum("ij,ij->j", c_pos, below, dtype=np.float64)
                / (c_pos.sum(0, dtype=np.float64) * cum[-1].astype(np.float64)))


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int, counts: np.ndarray) -> np.ndarray:
    """``resamples x k x k`` confusion matrices (true class x predicted class) of the weighted draws."""
    cell = np.zeros((k * k, len(y_true)))
    cell[y_true * k + y_pred, np.arange(len(y_true))] = 1.0
    return (cell @ counts).T.reshape(counts.shape[1], k, k)


def resampled_metric(metric: str, pred: Prediction, counts: np.ndarray) -> np.ndarray:
    """``metric`` of one run on every image draw (column) of ``counts`` (a column of ones reproduces
    :func:`medlib.metrics.evaluate`): AUC as medmnist's ``getAUC``, the others from weighted confusion counts."""
    check_choice("metric", metric, METRICS)
    y_true, y_score = np.asarray(pred.y_true), np.asarray(pred.y_score, dtype=np.float64)
    if metric == "auc":
        if _multi_label(pred.task):
            return np.mean([_weighted_auc(y_score[:, j], y_true[:, j] == 1, counts)
                            for j in range(y_score.shape[1])], axis=0)
        y = y_true.reshape(-1)
        if pred.task == "binary-class":
            return _weighted_auc(y_score[:, -1], y == 1, counts)
        return np.mean([_weighted_auc(y_score[:, c], y == c, counts) for c in range(y_score.shape[1])], axis=0)
    if _multi_label(pred.task):
        if metric != "acc":
            return np.full(counts.shape[1], math.nan)
        correct = (predicted_labels(y_score, pred.task) == y_true).mean(1)
        return correct @ counts / counts.sum(0)
    y = y_true.reshape(-1)
    k = y_score.shape[1]
    conf = _confusion(y, predicted_labels(y_score, pred.task), k, counts)
    diag, true_totals, pred_totals = np.diagonal(conf, axis1=1, axis2=2), conf.sum(2), conf.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = diag / true_totals
        if metric == "acc":
            return diag.sum(1) / conf.sum((1, 2))
        if metric == "balanced_acc":
            return np.nanmean(np.where(true_totals > 0, recall, np.nan), axis=1)
        if metric == "macro_f1":
            denominator = true_totals + pred_totals
            return np.where(denominator > 0, 2 * diag / np.where(denominator > 0, denominator, 1), 0.0).mean(1)
    minority = pred.minority
    if minority is None:
        present = np.bincount(y, minlength=k)
        minority = int(np.argmin(np.where(present > 0, present, np.iinfo(np.int64).max)))
    return np.nan_to_num(recall[:, minority])


def seed_weights(units: Sequence, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``resamples x seeds`` multiplicities of a two-stage draw: the distinct ``units`` (one per seed, e.g. each
    seed's pre-training) with replacement, then, for every drawn unit, as many of its seeds with replacement."""
    labels, inverse = np.unique(np.asarray(units, dtype=float), return_inverse=True)
    drawn = rng.integers(0, len(labels), size=(resamples, len(labels)))
    times = np.stack([(drawn == u).sum(1) for u in range(len(labels))], axis=1)
    weights = np.zeros((resamples, len(inverse)), dtype=np.int64)
    for u in range(len(labels)):
        members = np.flatnonzero(inverse == u)
        weights[:, members] = rng.multinomial(times[:, u] * len(members), np.full(len(members), 1 / len(members)))
    return weights


def _rng(seed: int, *key) -> np.random.Generator:
    """A generator for ``key`` (e.g. a test split or a condition), the same whatever else is resampled."""
    return np.random.default_rng([seed, zlib.crc32(repr(key).encode())])


# ------------------------------------------------------------------------------------------ replicates


@dataclass
class Replicates:
    """Bootstrap replicates of one condition: per arm, the observed mean over seeds, the replicate means, the
    per-seed values, and how many pre-trainings it adapts (0 for arms without one)."""

    arms: list
    seeds: list
    observed: np.ndarray    # arms
    replicates: np.ndarray  # arms x resamples
    per_seed: np.ndarray    # arms x seeds (NaN: no run)
    pretrainings: np.ndarray  # arms


def _units(part: pd.DataFrame, seeds: list) -> list:
    """Each seed's unit of the first resampling stage: its pre-training (the same for every pre-trained arm of
    the condition), or the seed itself where no arm has a pre-training."""
    pre = part[part["pretrain_seed"].notna()]
    mapping = pre.groupby("seed")["pretrain_seed"].unique()
    if any(len(v) > 1 for v in mapping):
        raise ParameterError("the pre-trained arms of a condition must share one pre-training seed per seed")
    return [float(mapping[s][0]) if s in mapping.index else -1.0 - s for s in seeds]


def bootstrap(runs: pd.DataFrame, scores: Mapping[str, Prediction], metric: str = "auc", by: Sequence[str] = (),
              resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """Hierarchical bootstrap replicates (see the module's docstring) of every ``by`` group of ``runs``.

    ``runs``: one row per run with ``arm``, ``seed``, ``pretrain_seed`` (NaN for arms without pre-training),
    ``run`` (the key of its :class:`Prediction` in ``scores``), ``target`` and ``size`` (runs with the same
    target and size share one image draw) and the ``by`` columns; a ``metric`` column, where present, must
    match what the predictions give. Returns ``{group key: Replicates}``; each group's draws depend only on
    ``seed``, its key and its test split, not on the other groups.
    """
    check_choice("metric", metric, METRICS)
    check_number("resamples", resamples, low=2, integer=True)
    missing = [c for c in ("arm", "seed", "pretrain_seed", "run", "target", "size", *by) if c not in runs]
    if missing:
        raise ParameterError(f"bootstrap needs the run columns {', '.join(missing)}")
    absent = [r for r in runs["run"] if r not in scores]
    if absent:
        raise ParameterError(f"{len(absent)} run(s) have no test predictions (first: {absent[0]})")
    draws, out = {}, {}
    for key, part in runs.groupby(list(by), sort=False, dropna=False) if by else [((), runs)]:
        split = (part["target"].iloc[0], int(part["size"].iloc[0]))
        if part[["target", "size"]].drop_duplicates().shape[0] > 1:
            raise ParameterError(f"the runs of condition {key} are scored on more than one test split")
        if split not in draws:
            first = scores[part["run"].iloc[0]]
            draws[split] = image_counts(first.y_true, first.task, resamples, _rng(seed, "images", *split))
        counts = draws[split]
        seeds = sorted(part["seed"].unique())
        weights = seed_weights(_units(part, seeds), resamples, _rng(seed, "seeds", key))
        arms = list(dict.fromkeys(part["arm"]))
        per_seed = np.full((len(arms), len(seeds)), np.nan)
        values = np.full((len(arms), len(seeds), resamples), np.nan)
        for row in part.itertuples():
            a, s = arms.index(row.arm), seeds.index(row.seed)
            pred = scores[row.run]
            per_seed[a, s] = resampled_metric(metric, pred, np.ones((len(pred.y_true), 1), dtype=np.float32))[0]
            stored = getattr(row, metric, None)
            if stored is not None and np.isfinite(stored) and not np.isclose(stored, per_seed[a, s], atol=1e-6):
                raise ParameterError(f"run {row.run}: its test predictions give {metric} {per_seed[a, s]:.6f}, "
                                     f"its result says {stored:.6f}")
            values[a, s] = resampled_metric(metric, pred, counts)
        present = np.isfinite(values)
        w = weights.T[None, :, :] * present
        with np.errstate(invalid="ignore", divide="ignore"):
            replicates = (np.where(present, values, 0.0) * w).sum(1) / w.sum(1)
        pretrainings = np.array([part.loc[part["arm"] == arm, "pretrain_seed"].nunique() for arm in arms])
        out[key] = Replicates(arms, seeds, np.nanmean(per_seed, axis=1), replicates, per_seed, pretrainings)
    return out


def percentile_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The percentile interval of bootstrap replicates (NaN replicates left out)."""
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return math.nan, math.nan
    low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def includes_pretraining(pretrainings) -> bool | None:
    """Whether an interval over arms with these numbers of pre-trainings includes pre-training variance: None
    when no arm has a pre-training (0), False when one of them has a single one."""
    counts = [int(n) for n in np.atleast_1d(pretrainings) if n > 0]
    return None if not counts else min(counts) > 1


def intervals(reps: Mapping, by: Sequence[str] = (), confidence: float = CONFIDENCE) -> pd.DataFrame:
    """One row per group x arm: the mean over seeds, its percentile interval (``ci_low``, ``ci_high``), the
    seeds, the pre-trainings, and ``pretraining_in_ci`` (False: one pre-training, so the interval leaves out
    pre-training variance; None: the arm has no pre-training)."""
    rows = []
    for key, r in reps.items():
        names = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        for a, arm in enumerate(r.arms):
            low, high = percentile_interval(r.replicates[a], confidence)
            rows.append(names | {"arm": arm, "mean": float(r.observed[a]), "ci_low": low, "ci_high": high,
                                 "seeds": int(np.isfinite(r.per_seed[a]).sum()),
                                 "pretrainings": int(r.pretrainings[a]),
                                 "pretraining_in_ci": includes_pretraining(r.pretrainings[a])})
    return pd.DataFrame(rows)


def paired(r: Replicates, arm: str, other: str, confidence: float = CONFIDENCE) -> dict:
    """``arm`` minus ``other`` in one condition: difference of means, percentile interval, bootstrap p-value
    (normal approximation), d_z over seeds, paired seeds, and whether both intervals include pre-training."""
    a, b = r.arms.index(arm), r.arms.index(other)
    delta = r.replicates[a] - r.replicates[b]
    observed = float(r.observed[a] - r.observed[b])
    se = float(np.nanstd(delta, ddof=1))
    if se > 0:
        p = float(2 * norm.sf(abs(observed) / se))
    else:
        p = 1.0 if observed == 0 else 0.0
    both = np.isfinite(r.per_seed[a]) & np.isfinite(r.per_seed[b])
    d = r.per_seed[a][both] - r.per_seed[b][both]
    sd = float(d.std(ddof=1)) if len(d) > 1 else math.nan
    low, high = percentile_interval(delta, confidence)
    return {"arm": arm, "other": other, "difference": observed, "ci_low": low, "ci_high": high, "se": se, "p": p,
            "d_z": float(d.mean() / sd) if sd > 0 else math.nan, "seeds": int(both.sum()),
            "pretraining_in_ci": includes_pretraining(r.pretrainings[[a, b]])}


def compare(reps: Mapping, arm: str, others: Sequence[str], by: Sequence[str] = (), confidence: float = CONFIDENCE,
            correction: str = "holm", alpha: float = ALPHA) -> pd.DataFrame:
    """``arm`` against each of ``others`` in every group where both ran (:func:`paired`), with the family's
    corrected p-values (:func:`adjust` over all rows) and ``called`` (corrected p < ``alpha``)."""
    rows = []
    for key, r in reps.items():
        names = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        rows += [names | paired(r, arm, other, confidence) for other in others if arm in r.arms and other in r.arms]
    return correct(pd.DataFrame(rows, columns=[*by, "arm", "other", "difference", "ci_low", "ci_high", "se", "p",
                                               "d_z", "seeds", "pretraining_in_ci"]), correction, alpha)


# ------------------------------------------------------------------------------------------ multiplicity


def adjust(p: Sequence[float], method: str = "holm") -> np.ndarray:
    """Multiplicity-adjusted p-values of a family: ``"holm"`` (Holm 1979, step-down) or ``"bh"`` (Benjamini &
    Hochberg 1995, step-up). NaN p-values stay NaN and do not count in the family."""
    check_choice("correction", method, CORRECTIONS)
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    tested = np.flatnonzero(np.isfinite(p))
    m = len(tested)
    if m == 0:
        return out
    order = tested[np.argsort(p[tested], kind="stable")]
    ranked = p[order]
    if method == "holm":
        adjusted = np.maximum.accumulate((m - np.arange(m)) * ranked)
    else:
        adjusted = np.minimum.accumulate((m / np.arange(1, m + 1) * ranked)[::-1])[::-1]
    out[order] = np.minimum(adjusted, 1.0)
    return out


def correct(comparisons: pd.DataFrame, correction: str = "holm", alpha: float = ALPHA) -> pd.DataFrame:
    """``comparisons`` with ``p_adjusted`` (the family is every row) and ``called``: True/False where a p-value
    exists (corrected p < ``alpha``), None where none does."""
    check_number("alpha", alpha, low=0, high=1, low_open=True)
    out = comparisons.copy()
    out["p_adjusted"] = adjust(out["p"], correction) if len(out) else []
    out["called"] = [None if not np.isfinite(q) else bool(q < alpha) for q in out["p_adjusted"]]
    return out


def verdict(called, difference: float, arm: str, other: str, label=str) -> str:
    """One comparison in words: "<arm> ahead" or "<other> ahead" when it is called, else :data:`UNDECIDED`."""
    if called is not True:
        return UNDECIDED
    return f"{label(arm if difference > 0 else other)} ahead"


def verdicts(comparisons: pd.DataFrame, label=str) -> list[str]:
    """:func:`verdict` of each row of :func:`compare` (from its corrected ``called`` only; ``label`` names arms)."""
    return [verdict(c, d, a, o, label) for c, d, a, o in
            zip(comparisons["called"], comparisons["difference"], comparisons["arm"], comparisons["other"])]
