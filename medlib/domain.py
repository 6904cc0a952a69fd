"""How far a source pool is from a target, measured on features, and what that distance does to each arm.

Two distances between the source pool's images and the target's train images, both on the 512-d features
of one fixed **reference encoder**: the scratch-initialised ResNet-18 of seed 0 (exactly the encoder the
``scratch`` arm starts from with seed 0; BatchNorm in eval mode). A random, untrained encoder is used on
purpose: it is the same for every pool and every arm, so the distance describes the data and not what a
pre-training learned from it, and it needs no download. Random convolutional features keep low-level
statistics (intensity, texture, colour) that tell modalities apart.

- **Fréchet distance** between Gaussians fitted to the two feature sets (Heusel et al., "GANs trained by a
  two time-scale update rule converge to a local Nash equilibrium", NeurIPS 2017; the FID without Inception):
  ``|mu_s - mu_t|^2 + tr(S_s + S_t - 2 (S_s S_t)^(1/2))``.
- **MMD** with a Gaussian (RBF) kernel, unbiased estimate of MMD^2, bandwidth by the median heuristic
  (Gretton et al., "A kernel two-sample test", JMLR 13, 2012).

Both are estimated from the same number of images per set (seeded subsets), since the Fréchet distance's
bias depends on it; compare distances only within one table.
"""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import torch
from medmnist.info import INFO

from .compute import default_device
from .data import load, source_pool
from .experiment import summarize
from .models import backbone
from .plots import (ARMS, ARM_COLOURS, DPI, METRIC_LABELS, PROTOCOL_LABELS, arm_label, in_arm_order, legend_below,
                    metric_words)
from .prose import listing
from .pretrain import PRETRAINED_ARMS, features
from .stats import completed
from .study import pretrain_config

# imaging modality of each MedMNIST 2D dataset (MedMNIST v2, Table 1)
MODALITY = {
    "pathmnist": "colon pathology", "chestmnist": "chest X-ray", "dermamnist": "dermatoscopy",
    "octmnist": "retinal OCT", "pneumoniamnist": "chest X-ray", "retinamnist": "fundus camera",
    "breastmnist": "breast ultrasound", "bloodmnist": "blood cell microscopy",
    "tissuemnist": "kidney cortex microscopy", "organamnist": "abdominal CT", "organcmnist": "abdominal CT",
    "organsmnist": "abdominal CT",
}


NO_POOL = "(none)"


def colour(flag: str) -> str:
    return "colour" if INFO[flag]["n_channels"] == 3 else "grey"


def relation(pool, target: str) -> str:
    """How a pool relates to a target: same or other modality (or mixed), and grey vs colour."""
    same = [MODALITY[f] == MODALITY[target] for f in pool]
    modality = "same modality" if all(same) else "other modality" if not any(same) else "mixed modality"
    colours = {colour(f) for f in pool}
    tone = colours.pop() if len(colours) == 1 else "grey + colour"
    return f"{modality}, {tone} (target: {colour(target)})"


def reference_encoder(name: str = "resnet18", stem: str = "imagenet", seed: int = 0) -> torch.nn.Module:
    """The fixed encoder the distances are measured with: the scratch arm's initial encoder for ``seed``."""
    torch.manual_seed(seed)
    return backbone(name, stem).eval()


def frechet_distance(a, b) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``a`` and ``b`` (rows are samples).

    The trace of the matrix square root is computed as the sum of the square roots of the eigenvalues of
    ``S_a^(1/2) S_b S_a^(1/2)`` (symmetric, so ``eigh`` is exact and stable), in float64.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(root_a @ s_b @ root_a)
    value = ((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.sqrt(np.clip(cross, 0, None)).sum()
    return float(max(value, 0.0))


def _sq_dists(x, y):
    return np.clip((x ** 2).sum(1)[:, None] + (y ** 2).sum(1)[None, :] - 2 * x @ y.T, 0, None)


def mmd_rbf(a, b, bandwidth: float | None = None) -> float:
    """Unbiased MMD^2 with the kernel ``exp(-|x - y|^2 / (2 bandwidth^2))``; ``bandwidth`` defaults to the
    median distance between all pooled samples (the median heuristic)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("MMD needs at least two samples per set")
    d_aa, d_bb, d_ab = _sq_dists(a, a), _sq_dists(b, b), _sq_dists(a, b)
    if bandwidth is None:
        pooled = np.concatenate([d_aa[np.triu_indices(len(a), 1)], d_bb[np.triu_indices(len(b), 1)], d_ab.ravel()])
        bandwidth = float(np.sqrt(np.median(pooled))) or 1.0
    k_aa, k_bb, k_ab = (np.exp(-d / (2 * bandwidth ** 2)) for d in (d_aa, d_bb, d_ab))
    m, n = len(a), len(b)
    value = ((k_aa.sum() - np.trace(k_aa)) / (m * (m - 1)) + (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
             - 2 * k_ab.mean())
    return float(value)


def _sample(images: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return images[torch.randperm(len(images), generator=g)[:n].sort().values]


def pool_images(P: types.SimpleNamespace, target: str, pool) -> torch.Tensor:
    """Exactly the source images every arm pre-trains on for ``pool`` (the pre-training config's subset)."""
    cfg = pretrain_config(P, "tl", target, pool)
    return source_pool(cfg.sources, cfg.size, cfg.targets, "train", cfg.max_images, cfg.seed).images


def distances(P: types.SimpleNamespace, target: str, pools, n_max: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per source pool: its modality relation to ``target``, its size, and the Fréchet distance
    and MMD^2 between its images and the target's train images on the reference encoder's features.

    Every set is subsampled (seeded) to the same ``n`` = min(smallest pool, target train split, ``n_max``).
    """
    device = default_device()
    encoder = reference_encoder(P.backbone, P.stem).to(device)
    target_images = load(target, "train", P.size).images
    pooled = {tuple(pool): pool_images(P, target, pool) for pool in pools}
    n = min([len(target_images), n_max] + [len(x) for x in pooled.values()])
    f_target = features(encoder, _sample(target_images, n, seed), device).cpu().numpy()
    rows = []
    for pool, images in pooled.items():
        f_pool = features(encoder, _sample(images, n, seed), device).cpu().numpy()
        rows.append({"pool": "+".join(pool), "relation": relation(pool, target),
                     "modalities": ", ".join(dict.fromkeys(MODALITY[f] for f in pool)), "pool_images": len(images),
                     "n": n, "frechet": frechet_distance(f_pool, f_target), "mmd2": mmd_rbf(f_pool, f_target)})
    return pd.DataFrame(rows)


def with_pools(runs: pd.DataFrame, configs) -> pd.DataFrame:
    """:func:`medlib.experiment.run_grid` rows of ``configs`` (:func:`medlib.plan.domain`) with a ``pool`` column:
    the source pool each arm pre-trained on, :data:`NO_POOL` for the arms without pre-training."""
    return runs.assign(pool=[NO_POOL if c.pretrain is None else "+".join(c.pretrain.sources) for c in configs])


def gains(df: pd.DataFrame, metric: str = "auc") -> pd.DataFrame:
    """Each pre-trained arm's mean ``metric`` per pool and protocol minus the scratch arm's (same protocol).

    ``df`` is a :func:`medlib.experiment.run_grid` frame with a ``pool`` column for the pre-trained arms'
    rows (scratch rows have none). Seeds are averaged first; ``gain_std`` is the spread over seeds of the
    arm's metric (the scratch mean taken as fixed).
    """
    done = completed(df)
    scratch = summarize(done[done["arm"] == "scratch"], ["target", "protocol"], metrics=[metric])
    scratch = scratch.set_index(["target", "protocol"])[f"{metric}_mean"].rename("scratch")
    arms = summarize(done[done["arm"].isin(PRETRAINED_ARMS)], ["target", "pool", "arm", "protocol"], metrics=[metric])
    out = arms.join(scratch, on=["target", "protocol"])
    out["gain"] = out[f"{metric}_mean"] - out["scratch"]
    out = out.rename(columns={f"{metric}_std": "gain_std"})
    return out[["target", "pool", "arm", "protocol", f"{metric}_mean", "scratch", "gain", "gain_std", "seeds"]]


def correlation(merged: pd.DataFrame, distances=("frechet", "mmd2")) -> pd.DataFrame:
    """Spearman rank correlation between each distance and the gain, per arm and protocol (NaN, with a note,
    when fewer than three pools with different values make it meaningless)."""
    from scipy.stats import spearmanr
    rows = []
    for (arm, protocol), part in merged.groupby(["arm", "protocol"], sort=False):
        n = part["pool"].nunique()
        row = {"arm": arm, "protocol": protocol, "pools": n, "note": ""}
        for distance in distances:
            if n < 3 or part[distance].nunique() < 2 or part["gain"].nunique() < 2:
                row[f"rho_{distance}"] = float("nan")
                row["note"] = f"needs >= 3 pools with different values (has {n})"
            else:
                row[f"rho_{distance}"] = float(spearmanr(part[distance], part["gain"]).statistic)
        rows.append(row)
    return pd.DataFrame(rows)


DISTANCE_NAMES = {"frechet": "Fréchet distance", "mmd2": "MMD²"}


def by_distance(merged: pd.DataFrame, distance: str = "frechet") -> pd.DataFrame:
    """One row per pool of ``merged`` (:func:`gains` with the distances), nearest to the target first."""
    return merged.drop_duplicates("pool").sort_values(distance, kind="stable")


def best_pools(merged: pd.DataFrame) -> pd.DataFrame:
    """Per protocol and arm (book order), the row of the pool with the highest gain over scratch."""
    rows = []
    for _, part in merged.groupby("protocol", sort=False):
        for arm in in_arm_order(part["arm"]):
            rows.append(part.loc[part.loc[part["arm"] == arm, "gain"].idxmax()])
    return pd.DataFrame(rows).reset_index(drop=True)


def findings(merged: pd.DataFrame, correlation_table: pd.DataFrame, distance: str = "frechet",
             metric: str = "auc") -> str:
    """The chapter's result in words, generated from :func:`gains` (merged with the distances) and
    :func:`correlation`: the pools from nearest to farthest, each arm's best pool and its gain over scratch per
    protocol, and the rank correlation of distance and gain."""
    name = DISTANCE_NAMES.get(distance, distance)
    label = metric_words(metric)
    pools = by_distance(merged, distance)
    lines = [f"- **Pools from nearest to farthest** ({name} to the target): "
             + ", ".join(f"{p} ({d:.2f})" for p, d in zip(pools["pool"], pools[distance])) + "."]
    rho = correlation_table.set_index(["arm", "protocol"])[f"rho_{distance}"]
    for protocol, part in best_pools(merged).groupby("protocol", sort=False):
        bits = []
        for _, best in part.iterrows():
            r = rho.get((best["arm"], protocol), float("nan"))
            verb = "gains most" if best["gain"] > 0 else "loses least"
            bits.append(f"{arm_label(best['arm'])} {verb} with {best['pool']} ({best['gain']:+.3f} {label} over "
                        f"scratch, seed s.d. {best['gain_std']:.3f})"
                        + ("" if np.isnan(r) else f", Spearman ρ(distance, gain) = {r:+.1f}"))
        lines.append(f"- **{PROTOCOL_LABELS.get(protocol, protocol)}:** " + "; ".join(bits) + ".")
    n = pools["pool"].nunique()
    lines.append(f"- With {n} pools a rank correlation can only take a few values"
                 + (" (±1 or ±0.5)" if n == 3 else "")
                 + ": read its sign as a direction (negative: nearer pools help more), not as evidence.")
    return "\n".join(lines)


def finding(merged: pd.DataFrame, distance: str = "frechet", metric: str = "auc") -> str:
    """Chapter 6's finding, from :func:`gains` merged with the distances: the nearest and farthest pool, and per
    protocol the largest mean gain over scratch (arm, pool, seed s.d.) and for how many arms the nearest pool gave
    the largest gain. Means over seeds, no test."""
    if len(merged) == 0:
        return "No stored gains: no pre-trained arm ran on this chapter's pools."
    label, name = metric_words(metric), DISTANCE_NAMES.get(distance, distance)
    pools = by_distance(merged, distance)
    near, far = pools.iloc[0], pools.iloc[-1]
    target = f" to {merged['target'].iloc[0]}" if "target" in merged else ""
    text = [f"Of {len(pools)} source pools, {near['pool']} is nearest{target} ({name} {near[distance]:.2f})"
            + (f" and {far['pool']} farthest ({far[distance]:.2f})." if len(pools) > 1 else ".")]
    for protocol, best in best_pools(merged).groupby("protocol", sort=False):
        top = best.loc[best["gain"].idxmax()]
        spread = "one seed" if np.isnan(top["gain_std"]) else f"seed s.d. {top['gain_std']:.3f}"
        what = (f"the largest mean {label} gain over scratch is {arm_label(top['arm'])}'s" if top["gain"] > 0 else
                f"no pre-trained arm beats scratch's mean {label}; the smallest loss is {arm_label(top['arm'])}'s")
        text.append(f"{PROTOCOL_LABELS.get(protocol, protocol)}: {what} after pre-training on {top['pool']} "
                    f"({top['gain']:+.3f}, {spread})"
                    + (f", and the nearest pool gave {int((best['pool'] == near['pool']).sum())} of {len(best)} "
                       "pre-trained arms their best result." if len(pools) > 1 else "."))
    seeds = listing(str(int(n)) for n in sorted(merged["seeds"].unique()))
    text.append(f"These are means over {seeds} seed{'' if seeds == '1' else 's'} with no test: with {len(pools)} "
                "pools they describe a direction, they do not decide one.")
    return " ".join(text)


def plot_distance_vs_gain(merged: pd.DataFrame, distance: str = "frechet", metric: str = "auc"):
    """Gain over scratch (y) against the pool's distance to the target (x): one panel per protocol, one
    colour per arm, error bars = seed s.d., pools named along the x axis."""
    import matplotlib.pyplot as plt

    protocols = list(dict.fromkeys(merged["protocol"]))
    fig, axes = plt.subplots(1, len(protocols), figsize=(4.2 * len(protocols), 3.4), dpi=DPI, squeeze=False,
                             sharey=True)
    plt.close(fig)  # shown once, as the cell's value
    arms = list(dict.fromkeys(merged["arm"]))
    pools = by_distance(merged, distance)
    for ax, protocol in zip(axes[0], protocols):
        part = merged[merged["protocol"] == protocol].sort_values(distance)
        for arm in [a for a in ARMS if a in arms]:
            rows = part[part["arm"] == arm]
            ax.errorbar(rows[distance], rows["gain"], yerr=rows["gain_std"].fillna(0).to_numpy(), marker="o",
                        ms=4, capsize=3, lw=1, label=arm_label(arm), color=ARM_COLOURS.get(arm))
        ax.axhline(0, color="grey", lw=0.8, ls="--")
        ax.set_title(PROTOCOL_LABELS.get(protocol, protocol), fontsize=9)
        ax.set_xticks(pools[distance], [f"{p.replace('mnist', '')}\n{d:.3g}" for p, d in
                                        zip(pools["pool"], pools[distance])], fontsize=7)
        ax.set_xlabel({"frechet": "source pool and its Fréchet distance to the target",
                       "mmd2": "source pool and its MMD² to the target"}.get(distance, distance), fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0, 0].set_ylabel(f"{METRIC_LABELS.get(metric, metric)} gain over scratch")
    legend_below(fig, axes[0, 0])
    fig.tight_layout()
    return fig
