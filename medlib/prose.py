"""Generated prose: every sentence a chapter prints about its results, written from them when it runs.

Notes on the profile and on skipped arms, the data and pre-training chapters' findings, and the decision's words:
a chapter's opening finding (:func:`headline`), its results per condition (:func:`findings`), the
recommendations, the book's answer (:func:`answer`) and the summary chapter's finding. Each sentence counts or
quotes the corrected results it is given (:mod:`medlib.decision`) and claims no more than they call; the
chapters whose findings need their own concept (domain, robustness, explainability, speed) write them in their
own modules with :func:`listing`.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from . import scenarios, stats
from .plots import PROTOCOL_LABELS, arm_label, metric_words, trained
from .tables import interval, mean_std, present, short_label


def listing(parts, empty: str = "none") -> str:
    """Words joined as prose: "a", "a and b", "a, b and c" (``empty`` for none)."""
    parts = list(parts)
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1] if parts else empty


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


def skip_note(df: pd.DataFrame) -> str:
    """A Markdown note naming every skipped arm and why (empty when nothing was skipped)."""
    if "skipped" not in df or df["skipped"].isna().all():
        return ""
    lines = [f"- **{arm_label(arm)}** skipped ({len(group)} runs): {reason}"
             for (arm, reason), group in df[df["skipped"].notna()].groupby(["arm", "skipped"], sort=False)]
    return "**Note: some runs were not made and are absent from the tables and figures.**\n\n" + "\n".join(lines)


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
    label = metric_words(metric)
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
    label = metric_words(metric)
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
                f"({r[metric]:.2f}, 95 % CI {interval(r['ci_low'], r['ci_high'], 2)})")
        if not isinstance(r["runner_up"], str):
            verdict = ""
        elif present(r["p_adjusted"]) and r["p_adjusted"] < alpha:
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
    label = metric_words(metric)
    if len(table) == 0:
        return "No stored results for this chapter's grid."

    def decided(p):
        if not present(p):
            return "no test"
        verdict = "called" if p < alpha else stats.UNDECIDED
        return f"corrected p {'< 0.001' if p < 0.001 else f'= {p:.3f}'}, {verdict}"

    lines = []
    for (target, protocol), part in table.groupby(["target", "protocol"], sort=False):
        lines.append(f"- **{target}, {PROTOCOL_LABELS.get(protocol, protocol)}**")
        for _, r in part.iterrows():
            score = (f"{label} {mean_std(r[metric], r[f'{metric}_std'], 3)} "
                     f"(95 % CI {interval(r['ci_low'], r['ci_high'], 3)}"
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
            elif present(r["vs_scratch"]) and r["runner_up"] != "scratch":
                text += f"; {r['vs_scratch']:+.3f} over scratch ({decided(r['p_scratch_adjusted'])})"
            lines.append(f"  - {text}.")
    return "\n".join(lines)


def _answer(table: pd.DataFrame, comparisons: pd.DataFrame, profile: str, metric: str,
            conditions: str) -> list[str]:
    """:func:`answer`'s three sentences, ``conditions`` naming what a condition is."""
    called = _called(table["beyond_noise"])
    leads = (f"the evidence calls the leader's margin in {int(called.sum())} of them "
             f"({_in_each(table.loc[called, 'winner'].value_counts())})" if called.any()
             else "the evidence calls the leader's margin in none of them")
    first = (f"Over {len(table)} conditions ({conditions}), the highest mean test {metric_words(metric)} "
             f"came from {_in_each(table['winner'].value_counts())}; after a Holm correction {leads}.")
    parts = []
    for other, part in comparisons.groupby("other", sort=False) if len(comparisons) else []:
        sure = _called(part["beyond_noise"])
        ahead, behind = int((sure & (part["difference"] > 0)).sum()), int((sure & (part["difference"] < 0)).sum())
        parts.append(f"ahead of {short_label(other)} in {ahead}, behind in {behind} and not decided in "
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
