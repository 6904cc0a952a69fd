"""Corrupted test images by severity, MedMNIST-C style, and how much an adapted model loses on them.

MedMNIST-C (Di Salvo et al., "MedMNIST-C: Comprehensive benchmark and improved classifier robustness by
simulating realistic image corruptions", arXiv:2406.17536, 2024) corrupts MedMNIST test images with
acquisition-like artefacts in five severities. Its package (``medmnistc`` 0.1.0) pins scikit-image 0.23.2
and needs ImageMagick (``wand``), so it does not install beside our pinned requirements; this module
rebuilds its digital, noise, blur and intensity families on torch instead, applied in batches to uint8
``N x C x H x W`` tensors (grey or colour), seeded, with severities 1-5 (0 = the clean image).

The families and the direction of their parameters follow MedMNIST-C; the severity values are ours, one
scale for every dataset (MedMNIST-C tunes them per dataset at 224 px). Spatial parameters (blur widths)
are given for 28 px and scale with the image size, so severity means the same at every size.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image

from .adapt import probabilities
from .compute import default_device
from .data import load
from .experiment import AdaptConfig, load_model, minority_class
from .metrics import METRICS, evaluate
from .plots import (ARM_COLOURS, METRIC_LABELS, PROTOCOL_LABELS, arm_label, figure, in_arm_order, legend_below,
                    metric_words)
from .prose import listing
from .store import RunStore
from .validation import ParameterError, check_choices, check_number


@dataclass(frozen=True)
class Family:
    """A corruption family: a function of (float images in [0, 1], parameter, generator), one parameter per
    severity 1-5, and what the parameter means."""

    apply: callable
    params: tuple
    meaning: str
    spatial: bool = False  # parameter in pixels at 28 px, scaled with the image size


def _gaussian_noise(x, sigma, g):
    return x + torch.randn(x.shape, generator=g) * sigma


def _speckle_noise(x, sigma, g):
    return x + x * torch.randn(x.shape, generator=g) * sigma


def _impulse_noise(x, amount, g):
    r = torch.rand(x.shape, generator=g)
    x = torch.where(r < amount / 2, torch.ones_like(x), x)
    return torch.where(r > 1 - amount / 2, torch.zeros_like(x), x)


def _gaussian_blur(x, sigma, g):
    k = 2 * math.ceil(3 * sigma) + 1
    return TF.gaussian_blur(x, [k, k], [sigma, sigma])


def _motion_blur(x, length, g):
    """A line kernel of ``length`` pixels at a random angle in [-45, 45] degrees per image (same angles at
    every severity for a given seed), as ImageMagick's motion blur that MedMNIST-C uses."""
    n, c, h, w = x.shape
    angle = (torch.rand(n, generator=g) * 90 - 45) * math.pi / 180
    r = math.ceil(length / 2)
    grid = torch.arange(-r, r + 1, dtype=torch.float32)
    v, u = torch.meshgrid(grid, grid, indexing="ij")  # v: rows (y), u: columns (x)
    d = torch.stack([torch.cos(angle), torch.sin(angle)], 1).view(n, 2, 1, 1)
    along = u * d[:, 0] + v * d[:, 1]  # n x k x k
    across = (-u * d[:, 1] + v * d[:, 0]).abs()
    beyond = (along.abs() - length / 2).clamp(min=0)
    kernel = (1 - torch.sqrt(across ** 2 + beyond ** 2)).clamp(min=0)
    kernel = kernel / kernel.sum(dim=(1, 2), keepdim=True)
    weight = kernel.repeat_interleave(c, 0).unsqueeze(1)  # (n*c) x 1 x k x k
    padded = F.pad(x.reshape(1, n * c, h, w), (r, r, r, r), mode="replicate")
    return F.conv2d(padded, weight, groups=n * c).view(n, c, h, w)


def _pixelate(x, factor, g):
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(1, int(h * factor)), max(1, int(w * factor))), mode="area")
    return F.interpolate(small, size=(h, w), mode="nearest-exact")


def _jpeg(x, quality, g):
    """JPEG round trip through Pillow, as MedMNIST-C does."""
    out = []
    for img in _to_uint8(x).permute(0, 2, 3, 1).numpy():
        buffer = io.BytesIO()
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(buffer, "JPEG", quality=int(quality))
        decoded = np.asarray(Image.open(buffer))
        out.append(torch.from_numpy(decoded.copy()).reshape(img.shape))
    return torch.stack(out).permute(0, 3, 1, 2).float() / 255


def _brightness(x, factor, g):
    return x * factor  # PIL's ImageEnhance.Brightness: a blend with black


def _luma(x):
    return x.mean(1, keepdim=True) if x.shape[1] != 3 else (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:])


def _contrast(x, factor, g):
    mean = _luma(x).mean(dim=(1, 2, 3), keepdim=True)  # PIL's ImageEnhance.Contrast: a blend with mean grey
    return mean + (x - mean) * factor


FAMILIES: dict[str, Family] = {
    "gaussian_noise": Family(_gaussian_noise, (0.04, 0.08, 0.12, 0.16, 0.20), "noise s.d. (fraction of range)"),
    "speckle_noise": Family(_speckle_noise, (0.10, 0.15, 0.20, 0.25, 0.30), "multiplicative noise s.d."),
    "impulse_noise": Family(_impulse_noise, (0.01, 0.02, 0.04, 0.07, 0.10), "fraction of salt-and-pepper pixels"),
    "gaussian_blur": Family(_gaussian_blur, (0.5, 0.75, 1.0, 1.25, 1.5), "blur s.d. (pixels at 28 px)", True),
    "motion_blur": Family(_motion_blur, (2.0, 3.0, 4.0, 5.0, 6.0), "blur length (pixels at 28 px)", True),
    "pixelate": Family(_pixelate, (0.5, 0.4, 0.3, 0.25, 0.2), "resolution kept (fraction)"),
    "jpeg_compression": Family(_jpeg, (50, 30, 15, 10, 7), "JPEG quality"),
    "brightness_down": Family(_brightness, (0.9, 0.8, 0.7, 0.6, 0.5), "brightness factor"),
    "brightness_up": Family(_brightness, (1.1, 1.2, 1.3, 1.4, 1.5), "brightness factor"),
    "contrast_down": Family(_contrast, (0.9, 0.8, 0.7, 0.6, 0.4), "contrast factor"),
}
SEVERITIES = (1, 2, 3, 4, 5)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0, 1).mul(255).round().to(torch.uint8)


def parameter(family: str, severity: int, size: int = 28) -> float:
    """The parameter of ``family`` at ``severity`` (1-5) for ``size`` px images."""
    check_choices("family", [family], FAMILIES)
    check_number("severity", severity, low=1, high=5, integer=True)
    fam = FAMILIES[family]
    value = fam.params[severity - 1]
    return value * size / 28 if fam.spatial else value


def corrupt(images: torch.Tensor, family: str, severity: int, seed: int = 0) -> torch.Tensor:
    """``images`` (uint8 ``N x C x H x W``) corrupted by ``family`` at ``severity`` (0 = unchanged copy).

    Random draws come from a generator seeded with ``seed`` only, so a seed gives the same noise pattern
    (or blur angle) at every severity and the corruption grows monotonically with the severity.
    """
    check_choices("family", [family], FAMILIES)
    check_number("severity", severity, low=0, high=5, integer=True)
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ParameterError("corrupt needs uint8 images shaped N x C x H x W")
    if severity == 0:
        return images.clone()
    g = torch.Generator().manual_seed(seed)
    x = images.cpu().float() / 255
    return _to_uint8(FAMILIES[family].apply(x, parameter(family, severity, images.shape[-1]), g))


def families_table(size: int = 28) -> pd.DataFrame:
    """One row per family: what its parameter means and its value at each severity for ``size`` px."""
    return pd.DataFrame([{"family": name, "parameter": fam.meaning}
                         | {f"severity {s}": f"{parameter(name, s, size):.3g}" for s in SEVERITIES}
                         for name, fam in FAMILIES.items()])


@dataclass(frozen=True)
class RobustnessConfig:
    """The corruption scores of one adapted model (``keep_model=True``): its test split clean and under each
    family at each severity, the noise drawn with ``seed``. A stored run of its own (kind ``robustness``)."""

    adapt: AdaptConfig
    families: tuple[str, ...] = tuple(FAMILIES)
    severities: tuple[int, ...] = (1, 3, 5)
    seed: int = 0
    kind: ClassVar[str] = "robustness"

    def __post_init__(self):
        if not self.adapt.keep_model:
            raise ParameterError("robustness needs a config with keep_model=True")
        object.__setattr__(self, "families", tuple(check_choices("families", list(self.families), FAMILIES)))
        for s in self.severities:
            check_number("severities", s, low=1, high=5, integer=True)
        object.__setattr__(self, "severities", tuple(sorted(set(self.severities))))
        check_number("seed", self.seed, low=0, integer=True)

    def to_dict(self) -> dict:
        """The run's key: the adaptation's config, the seed, the severities and each family's parameters."""
        return {"adapt": self.adapt.to_dict(), "seed": self.seed, "severities": list(self.severities),
                "families": {f: [parameter(f, s, self.adapt.size) for s in SEVERITIES] for f in self.families}}


def robustness(rc: RobustnessConfig, store: RunStore | None = None, progress: bool = False) -> dict:
    """The stored corruption scores of ``rc`` (computed first from the adapted model if missing): ``rows``, the
    test metrics on the clean split (``family="clean"``, severity 0) and on each family at each severity.

    The clean row reproduces the run's own test metrics (the same scoring code as training). Once stored, the
    scores are read without the model's weights."""
    store = store or RunStore()
    cfg = rc.adapt

    def compute(run_dir):
        model = load_model(cfg, store).to(default_device())
        test = load(cfg.target, "test", cfg.size)
        y_true, minority = test.labels.numpy(), minority_class(cfg)
        rows = []
        for family, severity in [("clean", 0)] + [(f, s) for f in rc.families for s in rc.severities]:
            images = test.images if severity == 0 else corrupt(test.images, family, severity, rc.seed)
            scores = probabilities(model, images, test.task)
            rows.append({"family": family, "severity": severity}
                        | evaluate(y_true, scores, test.task, minority))
        return {"rows": rows}

    return store.cached(rc.kind, rc.to_dict(), compute)


def robustness_grid(evaluations, store: RunStore | None = None) -> pd.DataFrame:
    """One row per model of ``evaluations`` (:class:`RobustnessConfig`) and family x severity, with the model's
    arm, target, protocol and seed (``imagenet`` models that cannot run are left out)."""
    from .models import imagenet_weights_problem
    rows = []
    for rc in evaluations:
        cfg = rc.adapt
        if cfg.arm == "imagenet" and imagenet_weights_problem(cfg.backbone):
            continue
        fields = {k: getattr(cfg, k) for k in ("arm", "target", "protocol", "seed")}
        rows += [fields | row for row in robustness(rc, store)["rows"]]
    return pd.DataFrame(rows)


def drops(df: pd.DataFrame, metrics=("auc", "acc")) -> pd.DataFrame:
    """Each corrupted row's metric minus the same model's clean metric (``<metric>_drop``, negative = worse)."""
    keys = ["arm", "target", "protocol", "seed"]
    clean = df[df["family"] == "clean"][keys + list(metrics)]
    out = df[df["family"] != "clean"].merge(clean, on=keys, how="left", suffixes=("", "_clean"))
    for m in metrics:
        out[f"{m}_drop"] = out[m] - out[f"{m}_clean"]
    return out.reset_index(drop=True)


def seed_drops(df: pd.DataFrame, metric: str = "acc") -> pd.Series:
    """Each model's mean drop of ``metric`` over the corruption families, per arm x protocol x severity x seed."""
    d = drops(df, (metric,))
    return d.groupby(["arm", "protocol", "severity", "seed"], sort=False)[f"{metric}_drop"].mean()


def drop_summary(df: pd.DataFrame, metric: str = "acc") -> pd.DataFrame:
    """Mean drop over families and seeds per arm x protocol x severity (one column per severity)."""
    if metric not in METRICS:
        raise ParameterError(f"metric={metric!r} is not allowed; choose one of: {', '.join(METRICS)}")
    per_seed = seed_drops(df, metric)
    table = per_seed.groupby(["arm", "protocol", "severity"], sort=False).mean().unstack("severity")
    table.columns = [f"severity {s}" for s in table.columns]
    return table.reset_index()


def findings(drop: pd.DataFrame, metric: str = "auc") -> str:
    """The chapter's result in words, generated from :func:`drop_summary`: per protocol, the arms ranked by
    their mean change of ``metric`` at the strongest severity (least hurt first)."""
    label = metric_words(metric)
    strongest = [c for c in drop.columns if str(c).startswith("severity ")][-1]
    lines = []
    for protocol, part in drop.groupby("protocol", sort=False):
        ranked = part.sort_values(strongest, ascending=False)
        lines.append(f"- **{PROTOCOL_LABELS.get(protocol, protocol)}**, {strongest}: "
                     + ", ".join(f"{arm_label(a)} {v:+.3f}" for a, v in zip(ranked["arm"], ranked[strongest]))
                     + f" {label} against the clean test split (mean over corruption families and seeds; "
                     f"least hurt first).")
    return "\n".join(lines)


def finding(df: pd.DataFrame, metric: str = "auc") -> str:
    """Chapter 7's finding, from :func:`robustness_grid` rows: per protocol, at the strongest severity, the arms
    whose mean change of ``metric`` from their clean score (over families, then seeds) is the smallest and the
    largest loss, with the range over seeds. No test."""
    if len(df) == 0 or not (df["family"] != "clean").any():
        return "No stored corruption scores for this chapter's models yet."
    label = metric_words(metric)
    per_seed = seed_drops(df, metric)
    strongest = per_seed.index.get_level_values("severity").max()
    at = per_seed.xs(strongest, level="severity").groupby(["protocol", "arm"], sort=False)
    at = at.agg(["mean", "min", "max", "size"])
    families = df.loc[df["family"] != "clean", "family"].nunique()

    def change(r):
        return f"{r['mean']:+.3f}" + (f"; seeds {r['min']:+.3f} to {r['max']:+.3f}" if r["size"] > 1 else "")

    seeds = listing(str(n) for n in sorted(at["size"].unique()))
    sentences = [f"At severity {strongest}, the strongest evaluated, each model's test {label} is compared with its "
                 f"clean score (mean change over {families} corruption families and {seeds} "
                 f"seed{'' if seeds == '1' else 's'})."]
    for protocol, part in at.groupby(level="protocol", sort=False):
        part = part.droplevel("protocol").sort_values("mean", ascending=False, kind="stable")
        best, worst = part.index[0], part.index[-1]
        text = f"{PROTOCOL_LABELS.get(protocol, protocol)}: {arm_label(best)} keeps its clean {label} best " \
               f"({change(part.loc[best])})"
        if len(part) > 1:
            text += f" and {arm_label(worst)} worst ({change(part.loc[worst])})"
        sentences.append(text + ".")
    return " ".join(sentences) + (" No test is made: read a difference against the range over seeds."
                                  if (at["size"] > 1).all() else " No test is made, and one seed gives no spread to "
                                  "read a difference against.")


def plot_examples(images: torch.Tensor, families=tuple(FAMILIES), severities=SEVERITIES, seed: int = 0):
    """One test image (uint8 ``1 x C x H x W`` or ``C x H x W``) under every family (rows) and severity."""
    image = images if images.ndim == 4 else images.unsqueeze(0)
    cols = [0] + list(severities)
    fig, axes = figure(len(families), len(cols), 0.85, 0.8)
    for i, family in enumerate(families):
        for j, s in enumerate(cols):
            img = corrupt(image, family, s, seed)[0]
            ax = axes[i, j]
            ax.imshow(img.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray", vmin=0, vmax=255,
                      interpolation="nearest")
            ax.set_frame_on(False)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title("clean" if s == 0 else f"severity {s}", fontsize=7)
            if j == 0:
                ax.set_ylabel(family.replace("_", "\n"), fontsize=6, rotation=0, ha="right", va="center")
    fig.tight_layout(pad=0.2)
    return fig


def plot_drop(df: pd.DataFrame, metrics=("auc", "acc")):
    """Mean change (over families) of each metric (rows) per arm against severity, one column per protocol;
    the band is the spread over seeds (min to max)."""
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    protocols = list(dict.fromkeys(df.loc[df["family"] != "clean", "protocol"]))
    fig, axes = figure(len(metrics), len(protocols), 3.8, 2.6, sharex=True)
    for r, metric in enumerate(metrics):
        per_seed = seed_drops(df, metric).reset_index()
        for c, protocol in enumerate(protocols):
            ax = axes[r, c]
            part = per_seed[per_seed["protocol"] == protocol]
            for arm in in_arm_order(part["arm"]):
                stats = part[part["arm"] == arm].groupby("severity")[f"{metric}_drop"].agg(["mean", "min", "max"])
                x = [0] + list(stats.index)
                colour = ARM_COLOURS.get(arm)
                ax.plot(x, [0] + list(stats["mean"]), marker="o", ms=4, label=arm_label(arm), color=colour)
                ax.fill_between(x, [0] + list(stats["min"]), [0] + list(stats["max"]), alpha=0.15, color=colour,
                                lw=0)
            ax.axhline(0, color="grey", lw=0.8)
            if r == 0:
                ax.set_title(PROTOCOL_LABELS.get(protocol, protocol), fontsize=9)
            if r == len(metrics) - 1:
                ax.set_xlabel("severity (0 = clean)")
            if c == 0:
                ax.set_ylabel(f"{METRIC_LABELS.get(metric, metric)} change vs clean", fontsize=8)
            ax.set_xticks(sorted(set([0] + list(part["severity"]))))
            ax.spines[["top", "right"]].set_visible(False)
    legend_below(fig, axes[0, 0])
    fig.tight_layout()
    return fig


def plot_family_drop(df: pd.DataFrame, metric: str = "acc", severity: int | None = None):
    """Heat map of the mean ``metric`` drop per family (rows) and arm x protocol (columns) at ``severity``
    (default: the highest evaluated)."""
    d = drops(df, (metric,))
    severity = severity if severity is not None else int(d["severity"].max())
    d = d[d["severity"] == severity]
    table = d.pivot_table(index="family", columns=["protocol", "arm"], values=f"{metric}_drop", aggfunc="mean",
                          sort=False)
    values = table.to_numpy()
    limit = max(1e-6, float(np.nanmax(np.abs(values))))
    fig, axes = figure(1, 1, 0.75 * values.shape[1] + 2.6, 0.3 * values.shape[0] + 1.5)
    ax = axes[0, 0]
    im = ax.imshow(values, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(values.shape[1]), [f"{a}\n{p}" for p, a in table.columns], fontsize=7)
    ax.set_yticks(range(values.shape[0]), [f.replace("_", " ") for f in table.index], fontsize=7)
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:+.2f}", ha="center", va="center", fontsize=6,
                color="white" if abs(v) > 0.6 * limit else "black")
    fig.colorbar(im, ax=ax, label=f"{METRIC_LABELS.get(metric, metric)} change at severity {severity}")
    fig.tight_layout()
    return fig
