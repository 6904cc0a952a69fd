"""The decision table: which arm wins in which condition, by how much, and whether that beats seed noise.

A *condition* is a target x scenario (all labels, a label fraction, an imbalance ratio) x protocol. In
each, the arms are ranked by their mean test metric over seeds; the winner is compared with the runner-up
and with the scratch arm by a **paired test over seeds** (the same seed draws the same labelled subset and
the same initialisation of the head for every arm, so runs pair by seed): Student's paired t-test
(``scipy.stats.ttest_rel``) by default, or the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``; with
n = 3 pairs its smallest two-sided p-value is 0.25, so it cannot reject at 0.05). With fewer than three
seeds no test is made and the table says so. The effect size is the mean paired difference and its
standardised form d_z = mean / s.d. of the paired differences (Cohen, 1988; Lakens, 2013).

No correction for multiple comparisons is applied: the table has one test per condition, so some "beyond
noise" verdicts at alpha = 0.05 are expected by chance alone when there are many conditions.
"""

from __future__ import annotations

import math
import types

import numpy as np
import pandas as pd
from scipy import stats

from .experiment import run_grid
from .metrics import METRICS
from .plots import ARM_COLOURS, DPI, METRIC_LABELS, PROTOCOL_LABELS, arm_label, in_arm_order, mean_std
from .study import adapt_configs
from .validation import ParameterError, check_choice

CONDITION = ["target", "scenario", "level", "protocol"]
SCENARIOS = ("all labels", "label fraction", "labels per class", "imbalance")
TESTS = ("ttest", "wilcoxon")
MIN_SEEDS = 3


def label_conditions(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``scenario`` and ``level`` (a sortable number; NaN for all labels) from the scenario fields of
    :func:`medlib.experiment.run_grid` rows: imbalance ratio, else label fraction / labels per class."""
    df = df.copy()

    def scenario(row):
        if _present(row.get("imbalance_ratio")):
            return "imbalance", float(row["imbalance_ratio"])
        if _present(row.get("label_fraction")):
            return "label fraction", float(row["label_fraction"])
        if _present(row.get("per_class")):
            return "labels per class", float(row["per_class"])
        return "all labels", math.nan

    pairs = [scenario(row) for _, row in df.iterrows()]
    df["scenario"] = [p[0] for p in pairs]
    df["level"] = [p[1] for p in pairs]
    return df


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def study_configs(P: types.SimpleNamespace) -> list:
    """The configs of the head-to-head, scarcity and imbalance chapters' grids, built exactly as those chapters
    build them (so their runs are read from the run store when the chapters ran):

    - head to head: ``adapt_configs(P, t)`` for every ``t`` in ``P.targets``;
    - scarcity: ``adapt_configs(P, P.target, label_fraction=f)`` for every ``f`` in ``P.label_fractions``
      (and ``per_class=P.per_class`` when set), except a fraction of 1 when ``P.target`` is one of
      ``P.targets``: those runs repeat the head-to-head ones (same train split, same seeds), and a condition
      must not be counted twice;
    - imbalance: ``adapt_configs(P, P.target, imbalance_ratio=r, minority=P.minority)`` for every ``r``.
    """
    configs = [c for t in P.targets for c in adapt_configs(P, t)]
    fractions = [f for f in P.label_fractions if not (f == 1 and P.target in P.targets)]
    configs += [c for f in fractions for c in adapt_configs(P, P.target, label_fraction=f)]
    if P.per_class is not None:
        configs += adapt_configs(P, P.target, per_class=P.per_class)
    configs += [c for r in P.imbalance_ratios
                for c in adapt_configs(P, P.target, imbalance_ratio=r, minority=P.minority)]
    return configs


def study_runs(P: types.SimpleNamespace, progress: bool = False) -> pd.DataFrame:
    """The runs of :func:`study_configs`, labelled with their conditions (:func:`label_conditions`)."""
    return label_conditions(run_grid(study_configs(P), progress=progress))


def paired_test(a, b, test: str = "ttest") -> tuple[float, float, float, str]:
    """Paired comparison of ``a`` and ``b`` (equal-length sequences, paired by position, e.g. by seed).

    Returns ``(p, mean difference a - b, d_z, note)``; ``p`` is NaN (and ``note`` says why) with fewer than
    three pairs; identical sequences give p = 1.
    """
    check_choice("test", test, TESTS)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ParameterError("paired_test needs two sequences of the same length")
    d = a - b
    n = len(d)
    mean = float(d.mean()) if n else math.nan
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    d_z = mean / sd if n > 1 and sd > 0 else math.nan
    if n < MIN_SEEDS:
        return math.nan, mean, d_z, f"too few seeds for a test ({n} < {MIN_SEEDS})"
    if np.allclose(d, 0):
        return 1.0, mean, d_z, "identical results"
    if test == "ttest":
        if sd == 0:
            return 0.0, mean, d_z, "constant difference"
        p = float(stats.ttest_rel(a, b).pvalue)
    else:
        p = float(stats.wilcoxon(a, b).pvalue)
    return p, mean, d_z, ""


def _by_seed(group: pd.DataFrame, metric: str) -> pd.DataFrame:
    return group.pivot_table(index="seed", columns="arm", values=metric, aggfunc="mean")


def decision_table(df: pd.DataFrame, metric: str = "auc", test: str = "ttest", alpha: float = 0.05,
                   baseline: str = "scratch") -> pd.DataFrame:
    """One row per condition: the winning arm (highest mean ``metric`` over seeds), its mean, the runner-up,
    the margin and paired test against the runner-up, and the winner's gain and paired test against
    ``baseline`` (scratch). ``df``: :func:`label_conditions` rows (skipped runs are left out).

    ``beyond_noise`` is True/False when a test was made (p < ``alpha``) and None when it could not be.
    """
    check_choice("metric", metric, METRICS)
    done = df[df["skipped"].isna()] if "skipped" in df else df
    rows = []
    for key, group in done.groupby(CONDITION, sort=False, dropna=False):
        per_seed = _by_seed(group, metric)
        means = per_seed.mean().sort_values(ascending=False, kind="stable")
        winner = means.index[0]
        row = dict(zip(CONDITION, key)) | {"arms": len(means), "seeds": int(per_seed[winner].notna().sum()),
                                           "winner": winner, metric: float(means.iloc[0]),
                                           f"{metric}_std": float(per_seed[winner].std(ddof=1))}
        if len(means) > 1:
            runner = means.index[1]
            pair = per_seed[[winner, runner]].dropna()
            p, diff, d_z, note = paired_test(pair[winner], pair[runner], test)
            row |= {"runner_up": runner, "margin": float(means.iloc[0] - means.iloc[1]), "d_z": d_z, "p": p,
                    "beyond_noise": None if math.isnan(p) else bool(p < alpha), "note": note}
        else:
            row |= {"runner_up": None, "margin": math.nan, "d_z": math.nan, "p": math.nan, "beyond_noise": None,
                    "note": "only one arm"}
        if baseline in means.index and winner != baseline:
            pair = per_seed[[winner, baseline]].dropna()
            p, diff, _, _ = paired_test(pair[winner], pair[baseline], test)
            row |= {f"vs_{baseline}": float(means[winner] - means[baseline]), f"p_{baseline}": p}
        else:
            row |= {f"vs_{baseline}": 0.0 if winner == baseline else math.nan, f"p_{baseline}": math.nan}
        rows.append(row)
    return pd.DataFrame(rows)


def compare_arms(df: pd.DataFrame, arm: str, others, metric: str = "auc", test: str = "ttest",
                 alpha: float = 0.05) -> pd.DataFrame:
    """``arm`` against each of ``others`` in every condition where both ran: mean paired difference
    (``arm`` minus other), d_z, p-value and verdict."""
    check_choice("metric", metric, METRICS)
    done = df[df["skipped"].isna()] if "skipped" in df else df
    rows = []
    for key, group in done.groupby(CONDITION, sort=False, dropna=False):
        per_seed = _by_seed(group, metric)
        for other in others:
            if arm not in per_seed or other not in per_seed:
                continue
            pair = per_seed[[arm, other]].dropna()
            p, diff, d_z, note = paired_test(pair[arm], pair[other], test)
            rows.append(dict(zip(CONDITION, key)) | {
                "arm": arm, "other": other, "difference": diff, "d_z": d_z, "p": p, "seeds": len(pair),
                "beyond_noise": None if math.isnan(p) else bool(p < alpha), "note": note})
    return pd.DataFrame(rows)


def _level(scenario: str, level: float) -> str:
    if scenario == "all labels" or not _present(level):
        return "all labels"
    if scenario == "imbalance":
        return f"imbalance {level:g}:1"
    if scenario == "label fraction":
        return f"{level:.0%} of labels" if level * 100 == round(level * 100) else f"{level:g} of labels"
    return f"{level:g} labels per class"


def condition_names(table: pd.DataFrame) -> list[str]:
    """One line per condition: "target · situation · protocol"."""
    return [f"{t} · {s} · {PROTOCOL_LABELS.get(p, p)}"
            for t, s, p in zip(table["target"], situations(table), table["protocol"])]


def situations(df: pd.DataFrame) -> list[str]:
    """The scenario and level of each row in words: "all labels", "10% of labels", "imbalance 10:1"."""
    return [_level(s, lv) for s, lv in zip(df["scenario"], df["level"])]


def run_counts(df: pd.DataFrame) -> pd.DataFrame:
    """How many runs (arm x protocol x seed, skipped ones included) each target and situation holds."""
    out = df.assign(situation=situations(df)).groupby(["target", "situation"], sort=False).size()
    return out.rename("runs").to_frame()


def _num(value, decimals):
    return "–" if not _present(value) else f"{value:.{decimals}f}"


def display_table(table: pd.DataFrame, metric: str = "auc", decimals: int = 3) -> pd.DataFrame:
    """The decision table for reading: (target, situation, protocol) as the index, arm labels, rounded
    numbers ("–" where there is none) and a short verdict on seed noise."""
    def verdict(row):
        if row["beyond_noise"] is True:
            return "yes"
        if row["beyond_noise"] is False:
            return "no"
        if str(row["note"]).startswith("too few seeds"):
            return f"no test ({row['seeds']} seed{'s' if row['seeds'] != 1 else ''})"
        return row["note"] or "no test"

    label = METRIC_LABELS.get(metric, metric)
    out = pd.DataFrame({
        "target": table["target"],
        "situation": situations(table),
        "protocol": table["protocol"].map(lambda p: PROTOCOL_LABELS.get(p, p)),
        "winner": table["winner"].map(arm_label),
        label: [mean_std(m, s, decimals) for m, s in zip(table[metric], table[f"{metric}_std"])],
        "runner-up": table["runner_up"].map(lambda a: arm_label(a) if isinstance(a, str) else "–"),
        "margin": [_num(v, decimals) for v in table["margin"]],
        "d_z": [_num(v, 2) for v in table["d_z"]],
        "p": [_num(v, 3) for v in table["p"]],
        "beyond seed noise": [verdict(r) for _, r in table.iterrows()],
        "gain over scratch": [_num(v, decimals) for v in table["vs_scratch"]],
    })
    return out.set_index(["target", "situation", "protocol"])


def wins(table: pd.DataFrame) -> pd.DataFrame:
    """How many conditions each arm wins, in all and beyond seed noise, per protocol."""
    t = table.assign(beyond=table["beyond_noise"].map(lambda v: v is True))
    out = t.groupby(["protocol", "winner"], sort=False).agg(wins=("winner", "size"), beyond_noise=("beyond", "sum"))
    out = out.reset_index().rename(columns={"winner": "arm"})
    order = {p: i for i, p in enumerate(dict.fromkeys(table["protocol"]))}
    return out.sort_values(["protocol", "wins"], key=lambda c: c.map(order) if c.name == "protocol" else -c,
                           kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------------------- prose


def _arm_list(counts: pd.Series) -> str:
    parts = [f"{arm_label(a)} {n}" for a, n in counts.items()]
    return ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1] if parts else "none"


def recommendations(table: pd.DataFrame, comparisons: pd.DataFrame | None = None, metric: str = "auc",
                    alpha: float = 0.05) -> str:
    """Markdown sentences generated from the decision table (and TL-vs-SSL comparisons): every number in
    them is counted from the table, nothing is written by hand."""
    label = METRIC_LABELS.get(metric, metric)
    n = len(table)
    if n == 0:
        return "No stored results: run the study chapters first."
    tested = table["beyond_noise"].map(lambda v: v is not None and v == v)
    beyond = table["beyond_noise"].map(lambda v: v is True)
    lines = [f"- **Winners.** Over {n} conditions (target x scenario x protocol), the highest mean test {label} "
             f"came from: {_arm_list(table['winner'].value_counts())}."]
    if tested.any():
        lines.append(f"- **Seed noise.** A paired test over seeds was possible in {int(tested.sum())} of {n} "
                     f"conditions; in {int(beyond.sum())} of them the winner's margin over the runner-up "
                     f"exceeds seed noise (p < {alpha}). "
                     + ("Most rankings are therefore not reliable: the arms are close."
                        if beyond.sum() < tested.sum() / 2 else "Most rankings hold beyond seed noise."))
    else:
        lines.append(f"- **Seed noise.** No condition has the {MIN_SEEDS} seeds a paired test needs, so no "
                     "ranking below can be told apart from seed noise; run more seeds (the `quick` or `full` "
                     "profile) before acting on it.")
    for protocol, part in table.groupby("protocol", sort=False):
        counts = part["winner"].value_counts()
        lines.append(f"- **{PROTOCOL_LABELS.get(protocol, protocol)}.** {arm_label(counts.index[0])} wins "
                     f"{counts.iloc[0]} of {len(part)} conditions"
                     + (f"; the others go to {_arm_list(counts.iloc[1:])}." if len(counts) > 1 else "."))
    scratch_beaten = table[table["winner"] != "scratch"]
    lines.append(f"- **Pre-training or not.** A pre-trained arm beats scratch in {len(scratch_beaten)} of {n} "
                 f"conditions; scratch itself wins {n - len(scratch_beaten)}.")
    for scenario, part in table[table["scenario"] != "all labels"].groupby("scenario", sort=False):
        hardest = part["level"].min() if scenario in ("label fraction", "labels per class") else part["level"].max()
        worst = part[part["level"] == hardest]
        lines.append(f"- **Hardest {scenario} level ({_level(scenario, hardest)}).** Winners: "
                     f"{_arm_list(worst['winner'].value_counts())} (over protocols).")
    if comparisons is not None and len(comparisons):
        for other, part in comparisons.groupby("other", sort=False):
            ahead = int((part["difference"] > 0).sum())
            sig_ahead = int(((part["difference"] > 0) & part["beyond_noise"].map(lambda v: v is True)).sum())
            sig_behind = int(((part["difference"] < 0) & part["beyond_noise"].map(lambda v: v is True)).sum())
            tested_here = int(part["beyond_noise"].map(lambda v: v is not None and v == v).sum())
            head = (f"- **{arm_label(part['arm'].iloc[0])} vs {arm_label(other)}.** Ahead in {ahead} of {len(part)} "
                    "conditions")
            lines.append(head + (f"; of the {tested_here} with a paired test, ahead beyond seed noise in {sig_ahead} "
                                 f"and behind beyond seed noise in {sig_behind}." if tested_here else
                                 f"; no paired test was possible (fewer than {MIN_SEEDS} seeds)."))
    return "\n".join(lines)


def findings(table: pd.DataFrame, metric: str = "auc", alpha: float = 0.05) -> str:
    """A chapter's results in words, one Markdown bullet per condition of the decision table: the leading arm
    with its mean ± std over seeds, its margin over the runner-up and whether that margin exceeds seed noise
    (paired test), and its gain over scratch. Generated from ``table``; nothing is written by hand."""
    label = METRIC_LABELS.get(metric, metric)
    if len(table) == 0:
        return "No stored results for this chapter's grid."

    def noise(p, note):
        if not _present(p):
            return f"no paired test: {note}" if note else "no paired test"
        return f"{'p < 0.001' if p < 0.001 else f'p = {p:.3f}'}, {'beyond' if p < alpha else 'within'} seed noise"

    lines = []
    for (target, protocol), part in table.groupby(["target", "protocol"], sort=False):
        lines.append(f"- **{target}, {PROTOCOL_LABELS.get(protocol, protocol)}**")
        for _, r in part.iterrows():
            score = f"{label} {mean_std(r[metric], r[f'{metric}_std'], 3)}"
            text = f"{_level(r['scenario'], r['level'])}: "
            if isinstance(r["runner_up"], str) and r["margin"] == 0:
                text += f"{arm_label(r['winner'])} and {arm_label(r['runner_up'])} tie at {score}"
            else:
                text += f"{arm_label(r['winner'])} leads with {score}"
                if isinstance(r["runner_up"], str):
                    text += (f", {r['margin']:.3f} ahead of {arm_label(r['runner_up'])} "
                             f"({noise(r['p'], r['note'])})")
            if r["winner"] == "scratch":
                text += "; no pre-trained arm beats training from scratch here"
            elif _present(r["vs_scratch"]) and r["runner_up"] != "scratch":
                text += f"; {r['vs_scratch']:+.3f} over scratch ({noise(r['p_scratch'], '')})"
            lines.append(f"  - {text}.")
    return "\n".join(lines)


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
    (colour, number); the winner's cell is framed, bold when it beats the runner-up beyond seed noise."""
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
    ax.set_title("Winner framed (thick frame: beyond seed noise)", fontsize=8)
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
        ax.set_xscale("log")
        ax.set_xticks(levels, [f"{v:g}" for v in levels])
        ax.minorticks_off()
        ax.set_xlabel("label fraction" if scenario == "label fraction" else
                      "majority : minority ratio" if scenario == "imbalance" else scenario)
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
