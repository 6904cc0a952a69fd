"""The decision table: which arm leads in which condition, by how much, and whether the evidence decides it.

A *condition* is a target x scenario (all labels, or a level of a scenario of :mod:`medlib.scenarios`) x protocol. In
each, the arms are ranked by their mean test metric over seeds; the leader is compared with the runner-up and
with the scratch arm, and TL with each other arm (:func:`compare_arms`), by the paired hierarchical bootstrap of
:mod:`medlib.stats` (over pre-trainings, adaptation seeds within them and the test images; the same seed and
image draws for both arms). Each family of comparisons (leader vs runner-up over the table's conditions; leader
vs scratch; TL vs each arm) is corrected with Holm's method (or Benjamini-Hochberg), and a difference is
*called* only when its corrected p is below alpha. Where a pre-trained arm has a single pre-training
(``pretrain_per_seed`` False), intervals and tests leave out pre-training variance and the table says so.
Everything in words (:mod:`medlib.prose`) is generated from the corrected results.
"""

from __future__ import annotations

import math
import types

import numpy as np
import pandas as pd

from . import scenarios, stats
from .experiment import run_grid, test_predictions
from .metrics import METRICS
from .plots import PROTOCOL_LABELS, arm_label, in_arm_order
from .tables import situations
from .plan import study_configs
from .validation import check_choice, check_number

CONDITION = ["target", "scenario", "level", "protocol"]


def label_conditions(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``scenario`` and ``level`` (a sortable number; NaN for all labels) from the scenario fields of
    :func:`medlib.experiment.run_grid` rows (:func:`medlib.scenarios.scenario_of`)."""
    df = df.copy()
    pairs = [scenarios.scenario_of(row) for _, row in df.iterrows()]
    df["scenario"] = [p[0] for p in pairs]
    df["level"] = [p[1] for p in pairs]
    return df


def study_runs(P: types.SimpleNamespace, progress: bool = False) -> pd.DataFrame:
    """The runs of :func:`medlib.plan.study_configs`, labelled with their conditions (:func:`label_conditions`)."""
    return label_conditions(run_grid(study_configs(P), progress=progress))


def replicates(df: pd.DataFrame, metric: str = "auc", predictions=None, resamples: int = stats.RESAMPLES,
               seed: int = 0) -> dict:
    """:func:`medlib.stats.bootstrap` of every condition of ``df`` (:func:`label_conditions` rows; skipped
    runs left out). ``predictions``: ``{run: Prediction}`` (default: read from the run store)."""
    check_choice("metric", metric, METRICS)
    done = stats.completed(df)
    scores = predictions if predictions is not None else test_predictions(done)
    return stats.bootstrap(done, scores, metric, CONDITION, resamples, seed)


def _check(correction: str, alpha: float) -> None:
    """Refuse a bad correction or alpha before any resampling."""
    check_choice("correction", correction, stats.CORRECTIONS)
    check_number("alpha", alpha, low=0, high=1, low_open=True)


def decision_table(df: pd.DataFrame, metric: str = "auc", alpha: float = stats.ALPHA, baseline: str = "scratch",
                   correction: str = "holm", resamples: int = stats.RESAMPLES, seed: int = 0,
                   predictions=None) -> pd.DataFrame:
    """One row per condition: the leading arm (highest mean ``metric`` over seeds), its mean, s.d. over seeds and
    95 % interval; the runner-up, the margin with its interval, d_z, p and corrected p (``p_adjusted``, over the
    table's conditions), ``beyond_noise`` (the margin is called: corrected p < ``alpha``; None with one arm) and
    ``verdict``; the leader's gain over ``baseline`` (scratch) with its corrected p. ``pretraining_in_ci``
    False: a pre-trained arm has one pre-training, so the intervals leave out pre-training variance."""
    _check(correction, alpha)
    reps = replicates(df, metric, predictions, resamples, seed)
    spread = stats.seed_summary(stats.completed(df), CONDITION + ["arm"], [metric]).set_index(CONDITION + ["arm"])
    rows = []
    for key, r in reps.items():
        order = np.argsort(-r.observed, kind="stable")
        winner = r.arms[order[0]]
        low, high = stats.percentile_interval(r.replicates[order[0]], stats.CONFIDENCE)
        row = dict(zip(CONDITION, key)) | {
            "arms": len(r.arms), "seeds": int(np.isfinite(r.per_seed[order[0]]).sum()), "winner": winner,
            metric: float(r.observed[order[0]]), f"{metric}_std": float(spread.loc[(*key, winner), f"{metric}_std"]),
            "ci_low": low, "ci_high": high, "pretrainings": int(min(r.pretrainings[r.pretrainings > 0], default=0)),
            "pretraining_in_ci": stats.includes_pretraining(r.pretrainings)}
        if len(r.arms) > 1:
            runner = r.arms[order[1]]
            test = stats.paired(r, winner, runner)
            row |= {"runner_up": runner, "margin": test["difference"], "margin_low": test["ci_low"],
                    "margin_high": test["ci_high"], "d_z": test["d_z"], "p": test["p"], "note": ""}
        else:
            row |= {"runner_up": None, "margin": math.nan, "margin_low": math.nan, "margin_high": math.nan,
                    "d_z": math.nan, "p": math.nan, "note": "only one arm"}
        if baseline in r.arms and winner != baseline:
            test = stats.paired(r, winner, baseline)
            row |= {f"vs_{baseline}": test["difference"], f"p_{baseline}": test["p"]}
        else:
            row |= {f"vs_{baseline}": 0.0 if winner == baseline else math.nan, f"p_{baseline}": math.nan}
        rows.append(row)
    table = stats.correct(pd.DataFrame(rows), correction, alpha).rename(columns={"called": "beyond_noise"})
    table[f"p_{baseline}_adjusted"] = stats.adjust(table[f"p_{baseline}"], correction)
    table["verdict"] = [stats.verdict(c, d, w, o, arm_label) if isinstance(o, str) else "only one arm"
                        for c, d, w, o in zip(table["beyond_noise"], table["margin"], table["winner"],
                                              table["runner_up"])]
    return table


def compare_arms(df: pd.DataFrame, arm: str, others, metric: str = "auc", alpha: float = stats.ALPHA,
                 correction: str = "holm", resamples: int = stats.RESAMPLES, seed: int = 0,
                 predictions=None) -> pd.DataFrame:
    """``arm`` against each of ``others`` in every condition where both ran (:func:`medlib.stats.compare`):
    difference (``arm`` minus other) with its 95 % interval, d_z, p and the family's corrected p, ``beyond_noise``
    (called), the verdict in words, and a note where an interval leaves out pre-training variance."""
    _check(correction, alpha)
    reps = replicates(df, metric, predictions, resamples, seed)
    out = stats.compare(reps, arm, list(others), CONDITION, correction=correction, alpha=alpha)
    out["verdict"] = stats.verdicts(out, arm_label)
    out = out.rename(columns={"called": "beyond_noise"})
    out["note"] = ["one pre-training: pre-training variance not in the interval" if f is False else ""
                   for f in out["pretraining_in_ci"]]
    return out


def condition_names(table: pd.DataFrame) -> list[str]:
    """One line per condition: "target · situation · protocol"."""
    return [f"{t} · {s} · {PROTOCOL_LABELS.get(p, p)}"
            for t, s, p in zip(table["target"], situations(table), table["protocol"])]


def arm_intervals(runs: pd.DataFrame, metric: str = "auc", resamples: int = stats.RESAMPLES, seed: int = 0,
                  predictions=None) -> pd.DataFrame:
    """Each arm's mean test ``metric`` with its 95 % interval (:func:`medlib.stats.intervals`) per target and
    protocol under all labels: what the book's answer table shows (:func:`medlib.tables.answer_table`)."""
    conditions = label_conditions(stats.completed(runs))
    conditions = conditions[conditions["scenario"] == scenarios.ALL_LABELS]
    return stats.intervals(replicates(conditions, metric, predictions, resamples, seed), CONDITION)


def gain_matrix(df: pd.DataFrame, table: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Conditions (rows, named as in :func:`condition_names`) x arms: mean ``metric`` minus scratch's."""
    done = stats.completed(df)
    means = done.groupby(CONDITION + ["arm"], sort=False, dropna=False)[metric].mean().unstack("arm")
    means = means.reindex(pd.MultiIndex.from_frame(table[CONDITION]))
    arms = in_arm_order(means.columns)
    gain = means[arms].sub(means["scratch"], axis=0) if "scratch" in means else means[arms]
    gain.index = condition_names(table)
    return gain
