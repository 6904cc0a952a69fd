"""Seeded scenario samplers over a train split: label scarcity, class imbalance and label noise.

The first two return sorted indices into the split, the third the split's labels with some flipped; val and test
splits are never resampled. :mod:`medlib.scenarios` says which scenario uses which.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch

from .validation import ParameterError, check_number


def _single_label(labels: torch.Tensor) -> None:
    if labels.ndim != 1:
        raise ParameterError("scenario samplers stratify by class and need a single-label target; this dataset is "
                             "multi-label")


def check_minority(minority, classes: list[int]) -> None:
    if not (type(minority) is int and minority in classes):
        raise ParameterError(f"minority={minority!r} is not allowed; choose one of the classes {classes}")


def _pick(index: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    return index[torch.randperm(len(index), generator=generator)[:n]]


def label_subset(labels: torch.Tensor, label_fraction: float | None = None, per_class: int | None = None,
                 seed: int = 0) -> torch.Tensor:
    """Stratified labelled subset: ``label_fraction`` of every class, or ``per_class`` images per class.

    Every class keeps at least one image. With neither argument, all indices are returned.
    """
    if label_fraction is None and per_class is None:
        return torch.arange(len(labels))
    _single_label(labels)
    if label_fraction is not None and per_class is not None:
        raise ParameterError("give label_fraction or per_class, not both")
    if label_fraction is not None:
        check_number("label_fraction", label_fraction, low=0, high=1, low_open=True)
    else:
        check_number("per_class", per_class, low=1, integer=True)
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in torch.unique(labels):
        index = torch.nonzero(labels == c).flatten()
        n = round(label_fraction * len(index)) if label_fraction is not None else per_class
        chosen.append(_pick(index, max(1, min(n, len(index))), g))
    return torch.cat(chosen).sort().values


def imbalance_subset(labels: torch.Tensor, imbalance_ratio: float, minority: int | None = None,
                     seed: int = 0) -> torch.Tensor:
    """Resample a train split so that ``majority : minority = imbalance_ratio : 1``.

    ``minority`` defaults to the rarest class. The minority class is cut to ``largest other class /
    ratio`` images (rounded down, at least one); if it has too few images for that, the other classes are cut to
    ``ratio x minority`` instead (rounded down, in exact decimal arithmetic). Other classes keep their relative
    sizes otherwise.
    """
    _single_label(labels)
    check_number("imbalance_ratio", imbalance_ratio, low=1)
    counts = torch.bincount(labels)
    present = torch.nonzero(counts).flatten().tolist()
    if len(present) < 2:
        raise ParameterError("imbalance_ratio needs at least two classes in the train split")
    if minority is None:
        minority = min(present, key=lambda c: (counts[c].item(), c))
    else:
        check_minority(minority, present)
    majority = max(counts[c].item() for c in present if c != minority)
    ratio = Fraction(repr(imbalance_ratio))  # the ratio as written: 4.35 x 100 is 435 images, not 434.99999999999994
    if counts[minority].item() * ratio >= majority:
        n_minority, cap = max(1, math.floor(majority / ratio)), majority
    else:
        n_minority = counts[minority].item()
        cap = math.floor(n_minority * ratio)
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in present:
        index = torch.nonzero(labels == c).flatten()
        chosen.append(_pick(index, n_minority if c == minority else min(len(index), cap), g))
    return torch.cat(chosen).sort().values


def noise_limit(n_classes: int) -> float:
    """The rate of symmetric noise at which a flipped label says nothing about the true class ((k - 1) / k)."""
    return (n_classes - 1) / n_classes


def check_label_noise(rate, n_classes: int | None = None) -> float:
    """0 <= ``rate`` < :func:`noise_limit` of the target's classes (< 1 while they are not known)."""
    limit = 1 if n_classes is None else noise_limit(n_classes)
    return check_number("label_noise", rate, low=0, high=limit, high_open=True, allowed_text=(
        f"a number with 0 <= label_noise < {limit:.3g}" + ("" if n_classes is None else
        f" ((k - 1) / k for k = {n_classes} classes: at that rate a label says nothing about the image)")))


def symmetric_noise(labels: torch.Tensor, rate: float, n_classes: int, seed: int = 0) -> torch.Tensor:
    """``labels`` with ``round(rate * n)`` of them, chosen at random, replaced by a uniformly drawn *other* class:
    symmetric (class-independent) label noise (Patrini et al., CVPR 2017).
    Refused at or beyond :func:`noise_limit`, where the labels carry no information."""
    _single_label(labels)
    check_label_noise(rate, n_classes)
    g = torch.Generator().manual_seed(seed)
    flip = torch.randperm(len(labels), generator=g)[:round(rate * len(labels))]
    shift = torch.randint(1, n_classes, (len(flip),), generator=g)  # 1..k-1: never the image's own class
    noisy = labels.clone()
    noisy[flip] = (labels[flip] + shift) % n_classes
    return noisy
