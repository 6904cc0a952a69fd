"""The decision table: which arm leads in which condition, by how much, and whether the evidence decides it.

A *condition* is a target x scenario (all labels, or a level of a scenario of :mod:`medlib.scenarios`) x protocol. In
each, the arms are ranked by their mean test metric over seeds; the leader is compared with the runner-up and
with the scratch arm, and TL with each other arm (:func:`compare_arms`), by the paired hierarchical bootstrap of
:mod:`medlib.stats` (over pre-trainings, adaptation seeds within them and the test images; the same seed and
image draws for both arms). Each family of comparisons (leader vs runner-up over the table's conditions; leader
vs scratch; TL vs each arm) is corrected with Holm's method (or Benjamini-Hochberg), and a difference is
*called* only when its corrected p is below alpha. Where a pre-trained arm has a single pre-training
(``pretrain_per_seed`` False), intervals and tests leave out pre-training variance and the table says so.
Everything in words (:func:`recommendations`, :func:`findings`) is generated from the corrected results.
"""

from __future__ import annotations

import math
import types

import numpy as np
import pandas as pd

from . import scenarios, stats
from .experiment import run_grid, test_predictions
from .metrics import METRICS
from .plots import ARM_COLOURS, DPI, METRIC_LABELS, PROTOCOL_LABELS, arm_label, in_arm_order, listing, mean_std
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


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def study_runs(P: types.SimpleNamespace, progress: bool = False) -> pd.DataFrame:
    """The runs of :func:`medlib.plan.study_configs`, labelled with their conditions (:func:`label_conditions`)."""
    return label_conditions(run_grid(study_configs(P), progress=progress))


def _done(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["skipped"].isna()] if "skipped" in df else df


def replicates(df: pd.DataFrame, metric: str = "auc", predictions=None, resamples: int = stats.RESAMPLES,
               seed: int = 0) -> dict:
    """:func:`medlib.stats.bootstrap` of every condition of ``df`` (:func:`label_conditions` rows; skipped
    runs left out). ``predictions``: ``{run: Prediction}`` (default: read from the run store)."""
    check_choice("metric", metric, METRICS)
    done = _done(df)
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
    spread = stats.seed_summary(_done(df), CONDITION + ["arm"], [metric]).set_index(CONDITION + ["arm"])
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


def situations(df: pd.DataFrame) -> list[str]:
    """The scenario and level of each row in words: "all labels", "10% of labels", "imbalance 10:1"."""
    return [scenarios.words(s, lv) for s, lv in zip(df["scenario"], df["level"])]


def run_counts(df: pd.DataFrame) -> pd.DataFrame:
    """How many runs (arm x protocol x seed, skipped ones included) each target and situation holds."""
    out = df.assign(situation=situations(df)).groupby(["target", "situation"], sort=False).size()
    return out.rename("runs").to_frame()


def _num(value, decimals):
    return "–" if not _present(value) else f"{value:.{decimals}f}"


def _ci(low, high, decimals):
    return "–" if not _present(low) else f"{low:.{decimals}f} to {high:.{decimals}f}"


def _p(value):
    return "–" if not _present(value) else "<0.001" if value < 0.001 else f"{value:.3f}"


def _short(arm) -> str:
    """An arm's book label without its parenthesis ("TL (supervised)" -> "TL"), "–" for none."""
    return arm_label(arm).split(" (")[0] if isinstance(arm, str) else "–"


def display_table(table: pd.DataFrame, metric: str = "auc", decimals: int = 3) -> pd.DataFrame:
    """The decision table for reading, narrow enough for a 1280 px screen: (target, situation, protocol) as the
    index, then the columns the decision rests on (the leader, its mean and 95 % interval, its margin over the
    runner-up with its interval, the corrected p and the verdict; short arm names), then the runner-up, the gain
    over scratch and the pre-trainings behind each interval ("1: not in CI" where it leaves out pre-training)."""
    label = METRIC_LABELS.get(metric, metric)
    pretrainings = ["–" if f is None else str(n) if f else f"{n}: not in CI"
                    for n, f in zip(table["pretrainings"], table["pretraining_in_ci"])]
    verdicts = [stats.verdict(c, d, w, o, _short) if isinstance(o, str) else "one arm"
                for c, d, w, o in zip(table["beyond_noise"], table["margin"], table["winner"], table["runner_up"])]
    out = pd.DataFrame({
        "target": table["target"],
        "situation": situations(table),
        "protocol": table["protocol"].map(lambda p: PROTOCOL_LABELS.get(p, p)),
        "leader": table["winner"].map(_short),
        label: [_num(v, decimals) for v in table[metric]],
        "95% CI": [_ci(a, b, decimals) for a, b in zip(table["ci_low"], table["ci_high"])],
        "margin": [_num(v, decimals) for v in table["margin"]],
        "margin CI": [_ci(a, b, decimals) for a, b in zip(table["margin_low"], table["margin_high"])],
        "p (Holm)": [_p(v) for v in table["p_adjusted"]],
        "verdict": [v.replace(stats.UNDECIDED, "not decided") for v in verdicts],
        "runner-up": table["runner_up"].map(_short),
        "vs scratch": [_num(v, decimals) for v in table["vs_scratch"]],
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


# ------------------------------------------------------------------------------------------- prose


def _arm_list(counts: pd.Series) -> str:
    return listing(f"{arm_label(a)} {n}" for a, n in counts.items())


def _called(column: pd.Series) -> pd.Series:
    return column.map(lambda v: v is True)


def _in_each(counts: pd.Series) -> str:
    """Arm counts as "SSL BYOL in 3 and TL (supervised) in 1"."""
    return listing(f"{arm_label(a)} in {n}" for a, n in counts.items())


def _ahead_of_scratch(table: pd.DataFrame, alpha: float = stats.ALPHA) -> pd.DataFrame:
    """The conditions whose leader is a pre-trained arm called ahead of scratch (corrected p < ``alpha``)."""
    return table[(table["winner"] != "scratch") & (table["p_scratch_adjusted"] < alpha)]


def recommendations(table: pd.DataFrame, comparisons: pd.DataFrame | None = None, metric: str = "auc",
                    alpha: float = stats.ALPHA) -> str:
    """Markdown sentences generated from the decision table (and the TL comparisons): every number is counted
    from them, and an arm is said to be ahead only where its difference is called after correction."""
    label = METRIC_LABELS.get(metric, metric)
    n = len(table)
    if n == 0:
        return "No stored results: run the study chapters first."
    called = _called(table["beyond_noise"])
    lines = [f"- **Highest means.** Over {n} conditions (target x scenario x protocol), the highest mean test "
             f"{label} came from: {_arm_list(table['winner'].value_counts())}; a highest mean alone decides nothing."]
    lines.append(f"- **What the evidence decides.** The leader's margin over the runner-up is called (corrected "
                 f"p < {alpha}, bootstrap over pre-trainings, seeds and test images) in {int(called.sum())} of {n} "
                 f"conditions ({_arm_list(table.loc[called, 'winner'].value_counts())}); the other "
                 f"{n - int(called.sum())} are {stats.UNDECIDED}.")
    single = int((table["pretraining_in_ci"] == False).sum())  # noqa: E712 (None: no pre-trained arm)
    if single:
        lines.append(f"- **Pre-training variance.** In {single} of {n} conditions a pre-trained arm has one "
                     "pre-training, so the intervals and tests there leave out the variance of pre-training; "
                     "a call there may not survive other pre-trainings (run with `pretrain_per_seed`).")
    for protocol, part in table.groupby("protocol", sort=False):
        sure = part[_called(part["beyond_noise"])]
        lines.append(f"- **{PROTOCOL_LABELS.get(protocol, protocol)}.** Leader called in {len(sure)} of {len(part)} "
                     "conditions" + (f": {_arm_list(sure['winner'].value_counts())}." if len(sure) else "."))
    beats = _ahead_of_scratch(table, alpha)
    lines.append(f"- **Pre-training or not.** A pre-trained arm is called ahead of scratch in {len(beats)} of {n} "
                 f"conditions; scratch has the highest mean in {int((table['winner'] == 'scratch').sum())}.")
    for scenario, part in table[table["scenario"] != scenarios.ALL_LABELS].groupby("scenario", sort=False):
        low = scenarios.BY_NAME[scenario].hardest == "low"
        hardest = part["level"].min() if low else part["level"].max()
        worst = part[(part["level"] == hardest) & _called(part["beyond_noise"])]
        lines.append(f"- **Hardest {scenario} level ({scenarios.words(scenario, hardest)}).** Called leaders: "
                     f"{_arm_list(worst['winner'].value_counts())} (over protocols).")
    if comparisons is not None and len(comparisons):
        for other, part in comparisons.groupby("other", sort=False):
            sure = _called(part["beyond_noise"])
            ahead, behind = int((sure & (part["difference"] > 0)).sum()), int((sure & (part["difference"] < 0)).sum())
            arm = arm_label(part["arm"].iloc[0])
            lines.append(f"- **{arm} vs {arm_label(other)}.** Of {len(part)} conditions: {arm} ahead in {ahead}, "
                         f"{arm_label(other)} ahead in {behind}, {stats.UNDECIDED} in {len(part) - ahead - behind}.")
    return "\n".join(lines)


def headline(table: pd.DataFrame, metric: str = "auc", alpha: float = stats.ALPHA) -> str:
    """A chapter's finding in a sentence per protocol, for its opening: at the hardest level of its scenario
    (:attr:`medlib.scenarios.Scenario.hardest`; all labels where none varies), the arm with the highest mean test
    ``metric`` with its 95 % interval, and whether its lead is called after correction. Generated from
    ``table``."""
    label = METRIC_LABELS.get(metric, metric)
    if len(table) == 0:
        return "No stored results for this chapter's grid yet."
    varied = table[table["scenario"] != scenarios.ALL_LABELS]
    if len(varied):
        name = varied["scenario"].iloc[0]
        part = varied[varied["scenario"] == name]
        hardest = (part["level"].min() if scenarios.BY_NAME[name].hardest == "low" else part["level"].max())
        table = part[part["level"] == hardest]
    sentences = []
    for _, r in table.iterrows():
        where = f"At {scenarios.words(r['scenario'], r['level'])} on {r['target']}" if len(varied) else \
            f"On {r['target']}"
        lead = (f"{arm_label(r['winner'])} has the highest mean test {label} "
                f"({r[metric]:.2f}, 95 % CI {_ci(r['ci_low'], r['ci_high'], 2)})")
        if not isinstance(r["runner_up"], str):
            verdict = ""
        elif _present(r["p_adjusted"]) and r["p_adjusted"] < alpha:
            verdict = f", a lead over {arm_label(r['runner_up'])} that is called after correction"
        else:
            verdict = f", but its lead over {arm_label(r['runner_up'])} is {stats.UNDECIDED}"
        sentences.append(f"{where} under {PROTOCOL_LABELS.get(r['protocol'], r['protocol']).lower()}, {lead}"
                         f"{verdict}.")
    return " ".join(sentences)


def findings(table: pd.DataFrame, metric: str = "auc", alpha: float = stats.ALPHA) -> str:
    """A chapter's results in words, one Markdown bullet per condition of the decision table: the leading arm
    with its mean ± s.d. over seeds and 95 % interval, its margin over the runner-up and whether that margin is
    called after correction, and its gain over scratch. Generated from ``table``; nothing is written by hand."""
    label = METRIC_LABELS.get(metric, metric)
    if len(table) == 0:
        return "No stored results for this chapter's grid."

    def decided(p):
        if not _present(p):
            return "no test"
        verdict = "called" if p < alpha else stats.UNDECIDED
        return f"corrected p {'< 0.001' if p < 0.001 else f'= {p:.3f}'}, {verdict}"

    lines = []
    for (target, protocol), part in table.groupby(["target", "protocol"], sort=False):
        lines.append(f"- **{target}, {PROTOCOL_LABELS.get(protocol, protocol)}**")
        for _, r in part.iterrows():
            score = (f"{label} {mean_std(r[metric], r[f'{metric}_std'], 3)} "
                     f"(95 % CI {_ci(r['ci_low'], r['ci_high'], 3)}"
                     + ("; one pre-training, so without pre-training variance)"
                        if r["pretraining_in_ci"] == False else ")"))  # noqa: E712 (None: no pre-trained arm)
            text = f"{scenarios.words(r['scenario'], r['level'])}: "
            if isinstance(r["runner_up"], str) and r["margin"] == 0:
                text += f"{arm_label(r['winner'])} and {arm_label(r['runner_up'])} tie at {score}"
            else:
                text += f"{arm_label(r['winner'])} leads with {score}"
                if isinstance(r["runner_up"], str):
                    text += (f", {r['margin']:.3f} ahead of {arm_label(r['runner_up'])} "
                             f"({decided(r['p_adjusted'])})")
            if r["winner"] == "scratch":
                text += "; no pre-trained arm has a higher mean than training from scratch here"
            elif _present(r["vs_scratch"]) and r["runner_up"] != "scratch":
                text += f"; {r['vs_scratch']:+.3f} over scratch ({decided(r['p_scratch_adjusted'])})"
            lines.append(f"  - {text}.")
    return "\n".join(lines)


def answer_table(runs: pd.DataFrame, metric: str = "auc", resamples: int = stats.RESAMPLES,
                 seed: int = 0, predictions=None) -> pd.DataFrame:
    """The book's answer at a glance: one row per arm (the book's order), one column per target and protocol (all
    labels), each cell the arm's mean test ``metric`` with its 95 % interval ("0.86 (0.80-0.91)", from
    :func:`medlib.stats.intervals`). Arms run down the page, so that a growing list of arms never widens the table
    past the page; the page's prose names the metric."""
    conditions = label_conditions(_done(runs))
    conditions = conditions[conditions["scenario"] == scenarios.ALL_LABELS]
    reps = replicates(conditions, metric, predictions, resamples, seed)
    ci = stats.intervals(reps, CONDITION)
    ci["cell"] = [f"{m:.2f} ({a:.2f}-{b:.2f})" for m, a, b in zip(ci["mean"], ci["ci_low"], ci["ci_high"])]
    ci["protocol"] = ci["protocol"].map(lambda p: PROTOCOL_LABELS.get(p, p))
    out = ci.pivot(index="arm", columns=["target", "protocol"], values="cell")
    out = out.loc[in_arm_order(out.index)].rename(index=_short)
    out.index.name = None
    return out[pd.MultiIndex.from_frame(ci[["target", "protocol"]].drop_duplicates())]


def _answer(table: pd.DataFrame, comparisons: pd.DataFrame, profile: str, metric: str,
            conditions: str) -> list[str]:
    """:func:`answer`'s three sentences, ``conditions`` naming what a condition is."""
    called = _called(table["beyond_noise"])
    leads = (f"the evidence calls the leader's margin in {int(called.sum())} of them "
             f"({_in_each(table.loc[called, 'winner'].value_counts())})" if called.any()
             else "the evidence calls the leader's margin in none of them")
    first = (f"Over {len(table)} conditions ({conditions}), the highest mean test {METRIC_LABELS.get(metric, metric)} "
             f"came from {_in_each(table['winner'].value_counts())}; after a Holm correction {leads}.")
    parts = []
    for other, part in comparisons.groupby("other", sort=False) if len(comparisons) else []:
        sure = _called(part["beyond_noise"])
        ahead, behind = int((sure & (part["difference"] > 0)).sum()), int((sure & (part["difference"] < 0)).sum())
        parts.append(f"ahead of {_short(other)} in {ahead}, behind in {behind} and not decided in "
                     f"{len(part) - ahead - behind} of {len(part)}")
    second = f"TL is {'; '.join(parts)}." if parts else "TL or the self-supervised arms did not run."
    single = bool((table["pretraining_in_ci"] == False).any())  # noqa: E712 (None: no pre-trained arm)
    third = (f"This is the {profile} execution" + (
        ", with one pre-training per arm, so its intervals leave out pre-training variance and a call may not "
        "survive another pre-training." if single else ", with one pre-training per seed in every interval."))
    return [first, second, third]


def answer(table: pd.DataFrame, comparisons: pd.DataFrame, profile: str, metric: str = "auc") -> str:
    """Three sentences that answer the book's question from corrected results only: how many leads the evidence
    calls, what TL against each self-supervised arm comes to, and how much weight the execution can bear."""
    return " ".join(_answer(table, comparisons, profile, metric, "target x protocol, all labels"))


def summary_finding(table: pd.DataFrame, comparisons: pd.DataFrame, profile: str, metric: str = "auc",
                    alpha: float = stats.ALPHA) -> str:
    """Chapter 10's finding: :func:`answer` over every condition of the study (target x scenario x protocol),
    with how many conditions a pre-trained arm is called ahead of scratch in."""
    if len(table) == 0:
        return "No stored results: run the study chapters first."
    first, second, third = _answer(table, comparisons, profile, metric, "target x scenario x protocol")
    beats = _ahead_of_scratch(table, alpha)
    scratch = (f"A pre-trained arm is called ahead of scratch in {len(beats)} of {len(table)} conditions"
               + (f": {_in_each(beats['winner'].value_counts())}." if len(beats) else "."))
    return " ".join([first, scratch, second, third])


# ------------------------------------------------------------------------------------------ figures


def gain_matrix(df: pd.DataFrame, table: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Conditions (rows, named as in :func:`condition_names`) x arms: mean ``metric`` minus scratch's."""
    done = df[df["skipped"].isna()] if "skipped" in df else df
    means = done.groupby(CONDITION + ["arm"], sort=False, dropna=False)[metric].mean().unstack("arm")
    means = means.reindex(pd.MultiIndex.from_frame(table[CONDITION]))
    arms = in_arm_order(means.columns)
    gain = means[arms].sub(means["scratch"], axis=0) if "scratch" in means else means[arms]
    gain.index = condition_names(table)
    return gain


def plot_summary(df: pd.DataFrame, table: pd.DataFrame, metric: str = "auc"):
    """The static summary: per condition (rows) and arm (columns), the mean ``metric`` gain over scratch
    (colour, number); the leader's cell is framed, thick when its margin over the runner-up is called."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    gain = gain_matrix(df, table, metric)
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
    import matplotlib.pyplot as plt
    done = df[df["skipped"].isna()] if "skipped" in df else df
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
    done = df[df["skipped"].isna()] if "skipped" in df else df

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
