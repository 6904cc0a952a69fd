"""Seeded scenario samplers over a train split: label scarcity and class imbalance.

Both return sorted indices into the split; val and test splits are never resampled.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch

from .validation import ParameterError, check_number


def check_scenario(label_fraction: float | None = None, per_class: int | None = None,
                   imbalance_ratio: float | None = None, minority: int | None = None,
                   max_train_images: int | None = None, n_classes: int | None = None,
                   single_label: bool = True) -> None:
    """Refuse a scenario that cannot be drawn, from the target's class count alone (no data is read).

    ``minority`` without ``imbalance_ratio`` is allowed: it names the class that minority recall scores."""
    given = [k for k, v in (("label_fraction", label_fraction), ("per_class", per_class),
                            ("imbalance_ratio", imbalance_ratio), ("minority", minority),
                            ("max_train_images", max_train_images)) if v is not None]
    if given and not single_label:
        raise ParameterError(f"{', '.join(given)} need a single-label target (scenario samplers stratify by "
                             "class); this dataset is multi-label")
    if label_fraction is not None and per_class is not None:
        raise ParameterError("give label_fraction or per_class, not both")
    if label_fraction is not None:
        check_number("label_fraction", label_fraction, low=0, high=1, low_open=True)
    if per_class is not None:
        check_number("per_class", per_class, low=1, integer=True)
    if imbalance_ratio is not None:
        check_number("imbalance_ratio", imbalance_ratio, low=1)
    if max_train_images is not None:
        check_number("max_train_images", max_train_images, low=2, integer=True)
    if minority is not None and n_classes is not None:
        _check_minority(minority, list(range(n_classes)))


def _check_minority(minority, classes: list[int]) -> None:
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
    check_scenario(label_fraction, per_class, single_label=labels.ndim == 1)
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
    check_scenario(imbalance_ratio=imbalance_ratio, single_label=labels.ndim == 1)
    counts = torch.bincount(labels)
    present = torch.nonzero(counts).flatten().tolist()
    if len(present) < 2:
        raise ParameterError("imbalance_ratio needs at least two classes in the train split")
    if minority is None:
        minority = min(present, key=lambda c: (counts[c].item(), c))
    else:
        _check_minority(minority, present)
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
