"""What each arm costs: pre-training wall time and throughput, and how fast adaptation gets to its result.

Everything is read from the run store (pre-trainings via :func:`medlib.experiment.pretrained`, adaptations
via :func:`medlib.experiment.run_adaptation`; a missing run is computed first). Wall times are those of the
machine that made the run (its ``device`` is reported): compare them within one store and one machine.

*Time to 95 %*: the first epoch whose validation AUC reaches 95 % of the run's final validation AUC (the
best-epoch value the adapted model keeps, since model selection returns that epoch), and the wall time
until the end of that epoch, counted from the start of adaptation (for the linear probe, this includes
computing the frozen features once before the first epoch).
"""

from __future__ import annotations

import math
import types

import numpy as np
import pandas as pd

from .experiment import pretrained, run_adaptation
from .models import imagenet_weights_problem
from .plots import ARMS, ARM_COLOURS, PROTOCOL_LABELS, arm_label, bar_offsets, figure, in_arm_order, legend_below
from .prose import listing
from .tables import mean_std
from .methods import get as get_method
from .pretrain import PRETRAINED_ARMS, lineage
from .stats import seed_summary
from .study import pretrain_config


def pretraining_cost(P: types.SimpleNamespace, targets=None) -> pd.DataFrame:
    """One row per target x pre-trained arm of ``P``: the pool's images, epochs, wall time, seconds per
    epoch, images/s (pre-training steps only; the kNN monitor is not counted), the device and the precision; then
    what a compute-matched comparison counts: the views the encoder saw (images x epochs x views per image), and
    both summed over the distinct pre-trainings the encoder went through (an arm that starts from other arms'
    encoders, ``Method.starts_from``, counts theirs too: :func:`medlib.pretrain.lineage`)."""
    rows = []
    for target in targets or P.targets:
        for arm in [a for a in P.arms if a in PRETRAINED_ARMS]:
            cfg = pretrain_config(P, arm, target)
            through = [(c, pretrained(c, progress=False)) for c in lineage(cfg)]
            views = [e["n_images"] * len(e["history"]) * get_method(c.arm).views_per_image for c, e in through]
            r = through[0][1]
            total_views, total_seconds = sum(views), sum(e["seconds"] for _, e in through)
            rows.append({"target": target, "pool": "+".join(cfg.sources), "arm": arm, "images": r["n_images"],
                         "epochs": len(r["history"]), "seconds": r["seconds"],
                         "seconds_per_epoch": r["seconds"] / max(1, len(r["history"])),
                         "images_per_s": r["images_per_s"], "device": r["device"],
                         "precision": r["precision"], "encoder_views": views[0], "encoder_views_in_all": total_views,
                         "seconds_in_all": total_seconds})
    return pd.DataFrame(rows)


def finding(cost: pd.DataFrame) -> str:
    """Chapter 9's finding, from :func:`pretraining_cost`: the arms with the highest and lowest pre-training
    throughput (of those with steps of their own), and the views each encoder passed in all (counting the
    pre-trainings it starts from) against the fewest; means over the source pools. One timed run each, no test."""
    if len(cost) == 0:
        return "No pre-trained arm in this chapter's grid, so there is no pre-training cost to report."
    mean = cost.groupby("arm", sort=False)[["images_per_s", "encoder_views_in_all"]].mean()
    mean = mean.loc[in_arm_order(mean.index)]
    rate = mean.loc[in_arm_order(cost.loc[cost["epochs"] > 0, "arm"]), "images_per_s"]  # arms with steps of their own
    pools = cost["target"].nunique()
    where = listing(dict.fromkeys(f"{d} ({p})" for d, p in zip(cost["device"], cost["precision"])))
    text = ""
    if len(rate):
        fast, slow = rate.idxmax(), rate.idxmin()
        text = f"Pre-training on {where} ran fastest for {arm_label(fast)} at {rate[fast]:,.0f} images/s"
        if slow != fast:
            text += (f" and slowest for {arm_label(slow)} at {rate[slow]:,.0f} images/s "
                     f"({rate[fast] / rate[slow]:.1f}x slower)")
        text += (f", mean over {pools} source pool{'' if pools == 1 else 's'} of one timed run each (a shared "
                 "machine's timings are noisy).")

    views = mean["encoder_views_in_all"]
    groups = [(v, listing(arm_label(a) for a in views.index[views == v])) for v in sorted(views.unique())]
    (fewest, names), rest = groups[0], groups[1:]
    text += (" Views through the encoder in all (images x epochs x views per image, with the pre-trainings it "
             f"starts from): {names} {fewest:,.0f}" + "".join(f"; {n} {v / fewest:.1f}x as many" for v, n in rest))
    return text.strip() + "."


def time_to_fraction(history: list[dict], setup_seconds: float = 0.0, fraction: float = 0.95) -> dict:
    """First epoch whose val AUC reaches ``fraction`` x the final (best) val AUC, and the seconds until then.

    ``history``: the per-epoch rows of an adaptation (``epoch``, ``val_auc``, cumulative ``seconds``);
    ``setup_seconds`` is added to every time (work before the first epoch).
    """
    if not history:
        return {"final_val_auc": math.nan, "threshold": math.nan, "epoch": None, "seconds": math.nan}
    final = max(h["val_auc"] for h in history)
    threshold = fraction * final
    hit = next(h for h in history if h["val_auc"] >= threshold)
    return {"final_val_auc": final, "threshold": threshold, "epoch": hit["epoch"],
            "seconds": setup_seconds + hit["seconds"]}


def adaptation_speed(configs, fraction: float = 0.95) -> pd.DataFrame:
    """One row per adaptation run: epochs run, the best epoch, time to ``fraction`` of the final val AUC
    (epochs and seconds) and the total wall time. ImageNet runs that cannot be made are left out."""
    rows = []
    for cfg in configs:
        if cfg.arm == "imagenet" and imagenet_weights_problem(cfg.backbone):
            continue
        r = run_adaptation(cfg, progress=False)
        history = r["history"]
        setup = max(0.0, r["seconds"] - (history[-1]["seconds"] if history else 0.0))
        hit = time_to_fraction(history, setup, fraction)
        rows.append({"target": cfg.target, "arm": cfg.arm, "protocol": cfg.protocol, "seed": cfg.seed,
                     "epochs": len(history), "best_epoch": r.get("best_epoch"), "final_val_auc": hit["final_val_auc"],
                     "epochs_to_95": hit["epoch"], "seconds_to_95": hit["seconds"], "seconds": r["seconds"],
                     "setup_seconds": setup, "n_train": r["n_train"], "device": r.get("device", "")})
    return pd.DataFrame(rows)


def histories(configs) -> pd.DataFrame:
    """The per-epoch validation AUC of every run in ``configs`` (long format), with cumulative seconds
    counted from the start of adaptation."""
    rows = []
    for cfg in configs:
        if cfg.arm == "imagenet" and imagenet_weights_problem(cfg.backbone):
            continue
        r = run_adaptation(cfg, progress=False)
        setup = max(0.0, r["seconds"] - (r["history"][-1]["seconds"] if r["history"] else 0.0))
        rows += [{"target": cfg.target, "arm": cfg.arm, "protocol": cfg.protocol, "seed": cfg.seed,
                  "epoch": h["epoch"], "val_auc": h["val_auc"], "seconds": setup + h["seconds"]}
                 for h in r["history"]]
    return pd.DataFrame(rows)


def speed_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean (and s.d. over seeds and targets) of the epochs and seconds to 95 % and of the total wall time,
    per arm x protocol."""
    out = seed_summary(df, ["arm", "protocol"], ["epochs_to_95", "seconds_to_95", "seconds", "final_val_auc"], "runs")
    order = {a: i for i, a in enumerate(ARMS)}
    return out.sort_values(["protocol", "arm"], key=lambda s: s.map(order) if s.name == "arm" else s,
                           kind="stable").reset_index(drop=True)


def speed_table(summary: pd.DataFrame, decimals: int = 2) -> pd.DataFrame:
    """A :func:`speed_summary` for reading: "mean ± s.d." strings, arm and protocol labels."""
    columns = {"epochs_to_95": "epochs to 95 %", "seconds_to_95": "seconds to 95 %", "seconds": "total seconds",
               "final_val_auc": "final val AUC"}
    out = pd.DataFrame({"protocol": summary["protocol"].map(lambda p: PROTOCOL_LABELS.get(p, p)),
                        "arm": summary["arm"].map(arm_label)})
    for key, label in columns.items():
        out[label] = [mean_std(m, sd, decimals) for m, sd in zip(summary[f"{key}_mean"], summary[f"{key}_std"])]
    out["runs"] = summary["runs"].to_numpy()
    return out.set_index(["protocol", "arm"])


def plot_pretraining_cost(df: pd.DataFrame):
    """Pre-training wall time (left) and images/s (right) per arm, one bar group per target."""
    fig, axes = figure(1, 2, 3.9, 2.8)
    targets = list(dict.fromkeys(df["target"]))
    arms = in_arm_order(df["arm"])
    offsets, width = bar_offsets(len(arms))
    for ax, column, label in zip(axes[0], ["seconds", "images_per_s"], ["wall time (s)", "images / s"]):
        for i, arm in enumerate(arms):
            rows = df[df["arm"] == arm].set_index("target").reindex(targets)
            ax.bar(np.arange(len(targets)) + offsets[i], rows[column].to_numpy(), width,
                   color=ARM_COLOURS.get(arm), label=arm_label(arm))
        ax.set_xticks(np.arange(len(targets)), [f"pool of\n{t}" for t in targets], fontsize=7)
        ax.set_ylabel(label)
        ax.spines[["top", "right"]].set_visible(False)
    legend_below(fig, axes[0, 0], ncol=None)
    fig.tight_layout()
    return fig


def plot_val_curves(curves: pd.DataFrame, x: str = "seconds"):
    """Validation AUC against wall time (or epoch) during adaptation, per protocol (panels) and arm (colour);
    thin lines are seeds, thick the mean over seeds (at each epoch)."""
    protocols = list(dict.fromkeys(curves["protocol"]))
    fig, axes = figure(1, len(protocols), 3.8, 2.8, sharey=True)
    for ax, protocol in zip(axes[0], protocols):
        part = curves[curves["protocol"] == protocol]
        for arm in in_arm_order(part["arm"]):
            rows = part[part["arm"] == arm]
            colour = ARM_COLOURS.get(arm)
            for _, seed_rows in rows.groupby(["target", "seed"]):
                ax.plot(seed_rows[x], seed_rows["val_auc"], color=colour, alpha=0.25, lw=0.8)
            mean = rows.groupby("epoch")[[x, "val_auc"]].mean()
            ax.plot(mean[x], mean["val_auc"], color=colour, lw=2, marker="o", ms=3, label=arm_label(arm))
        ax.set_title(PROTOCOL_LABELS.get(protocol, protocol), fontsize=9)
        ax.set_xlabel("wall time since the start of adaptation (s)" if x == "seconds" else x, fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0, 0].set_ylabel("validation AUC")
    legend_below(fig, axes[0, 0])
    fig.tight_layout()
    return fig


def plot_time_to_target(df: pd.DataFrame):
    """Epochs (left) and seconds (right) to 95 % of the final val AUC per arm and protocol; dots are runs."""
    fig, axes = figure(1, 2, 3.9, 2.8)
    protocols = list(dict.fromkeys(df["protocol"]))
    arms = in_arm_order(df["arm"])
    offsets, width = bar_offsets(len(arms))
    for ax, column, label in zip(axes[0], ["epochs_to_95", "seconds_to_95"], ["epochs to 95 %", "seconds to 95 %"]):
        for i, arm in enumerate(arms):
            for j, protocol in enumerate(protocols):
                rows = df[(df["arm"] == arm) & (df["protocol"] == protocol)][column].astype(float)
                x = j + offsets[i]
                ax.bar(x, rows.mean(), width, color=ARM_COLOURS.get(arm), label=arm_label(arm) if j == 0 else None)
                ax.scatter([x] * len(rows), rows, s=6, color="black", zorder=3)
        ax.set_xticks(range(len(protocols)), [PROTOCOL_LABELS.get(p, p) for p in protocols])
        ax.set_ylabel(label)
        ax.spines[["top", "right"]].set_visible(False)
    legend_below(fig, axes[0, 0])
    fig.tight_layout()
    return fig
