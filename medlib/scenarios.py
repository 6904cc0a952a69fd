"""The scenarios a chapter varies on a target's train split, one registry for all of them.

A scenario is a field of :class:`medlib.experiment.AdaptConfig` whose value (its *level*) changes the train split
or its labels; the val and test splits are never touched. Each :class:`Scenario` says how its level is checked,
how it changes the split (:func:`apply`, in the registry's order: images are chosen first, then the size cap,
then labels are changed), and how tables, axes, progress lines and generated prose name it. The conditions of the decision table, the command line's options, the figures' axis
labels and the jobs' names are all read from :data:`SCENARIOS`; a new scenario is one entry here and its sampler.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from .validation import ParameterError, check_number

# the samplers (and torch) are imported where a split is changed, so that the command line reads this registry
# for its options without importing torch


@dataclass(frozen=True)
class Scenario:
    """One axis a chapter varies. ``field``: the AdaptConfig field (and run-table column); ``name``: the scenario
    in tables and prose; ``axis``: its figures' axis label; ``words``: a level in words; ``hardest``: which end of the axis is hardest (``low``
    or ``high``); ``check``: ``(name, value)`` -> value, or a ParameterError; ``change``: ``(train, level, cfg)``
    -> the changed train split; ``stage``: ``images`` (it chooses train images, before the size cap) or ``labels``
    (it changes the labels of the images kept); ``unchanged``: the level that leaves the split as it is, if any
    (a curve's first point); ``cli``: the help of ``python -m medlib finetune``'s option; ``integer``: its levels
    are counts."""

    field: str
    name: str
    axis: str
    words: Callable[[float], str]
    hardest: str
    check: Callable
    change: Callable
    stage: str
    cli: str
    unchanged: float | None = None
    log_axis: bool = True
    integer: bool = False


def _check_noise(rate, n_classes=None):
    from .samplers import check_label_noise

    return check_label_noise(rate, n_classes)


def _fraction_words(level: float) -> str:
    return f"{level:.0%} of labels" if level * 100 == round(level * 100) else f"{level:g} of labels"


def minority(train, cfg) -> int:
    """The class the imbalance scenario cuts and minority recall scores: ``cfg.minority``, else the rarest class
    present in ``train`` (the target's whole train split)."""
    if cfg.minority is not None:
        return cfg.minority
    counts = train.class_counts()
    return counts.index(min(c for c in counts if c > 0))


def _imbalance(train, ratio, cfg):
    """Imbalance runs first, on the whole train split (:func:`minority`)."""
    from .samplers import imbalance_subset

    return train.subset(imbalance_subset(train.labels, ratio, minority(train, cfg), cfg.seed))


def _labels(train, cfg, **how):
    from .samplers import label_subset

    return train.subset(label_subset(train.labels, seed=cfg.seed, **how))


def _noise(train, rate, cfg):
    from .samplers import symmetric_noise

    return replace(train, labels=symmetric_noise(train.labels, rate, train.n_classes, cfg.seed))


SCENARIOS = (
    Scenario("imbalance_ratio", "imbalance", "majority : minority ratio",
             lambda r: f"imbalance {r:g}:1", "high", partial(check_number, low=1), _imbalance, "images",
             "resample the train split to majority : minority = RATIO : 1"),
    Scenario("label_fraction", "label fraction", "label fraction", _fraction_words, "low",
             partial(check_number, low=0, high=1, low_open=True),
             lambda train, f, cfg: _labels(train, cfg, label_fraction=f), "images",
             "keep this fraction of every class's train labels", unchanged=1.0),
    Scenario("per_class", "labels per class", "labelled images per class",
             lambda n: f"{n:g} labels per class", "low", partial(check_number, low=1, integer=True),
             lambda train, n, cfg: _labels(train, cfg, per_class=n), "images",
             "keep this many train labels per class", integer=True),
    Scenario("label_noise", "label noise", "share of train labels flipped",
             lambda r: f"{r:.0%} of train labels flipped", "high", lambda name, rate: _check_noise(rate),
             _noise, "labels", "flip this share of the train labels to another class, uniformly (symmetric noise)",
             unchanged=0.0, log_axis=False),
)
BY_FIELD = {s.field: s for s in SCENARIOS}
BY_NAME = {s.name: s for s in SCENARIOS}
ALL_LABELS = "all labels"  # the condition of a run with no scenario


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def check_scenario(levels: dict, minority: int | None = None, max_train_images: int | None = None,
                   n_classes: int | None = None, single_label: bool = True) -> None:
    """Refuse a scenario that cannot be drawn, from the target's class count alone (no data is read): ``levels``
    maps scenario fields to levels (None: not set). ``minority`` without ``imbalance_ratio`` is allowed: it names
    the class that minority recall scores."""
    given = [k for k, v in levels.items() if v is not None]
    given += [k for k, v in (("minority", minority), ("max_train_images", max_train_images)) if v is not None]
    if given and not single_label:
        raise ParameterError(f"{', '.join(given)} need a single-label target (scenario samplers stratify by "
                             "class); this dataset is multi-label")
    if levels.get("label_fraction") is not None and levels.get("per_class") is not None:
        raise ParameterError("give label_fraction or per_class, not both")
    for field, level in levels.items():
        if level is not None:
            BY_FIELD[field].check(field, level)
    if levels.get("label_noise") is not None and n_classes is not None:
        _check_noise(levels["label_noise"], n_classes)
    if max_train_images is not None:
        check_number("max_train_images", max_train_images, low=2, integer=True)
    if minority is not None and n_classes is not None:
        from .samplers import check_minority

        check_minority(minority, list(range(n_classes)))


def scenario_of(row) -> tuple[str, float]:
    """``(scenario name, level)`` of a run-table row (a mapping): the first scenario it sets, in the registry's
    order, else ``("all labels", nan)``."""
    for s in SCENARIOS:
        if _present(row.get(s.field)):
            return s.name, float(row[s.field])
    return ALL_LABELS, math.nan


def words(name: str, level: float) -> str:
    """A condition's scenario and level in words: "all labels", "10% of labels", "imbalance 10:1"."""
    if name == ALL_LABELS or not _present(level):
        return ALL_LABELS
    return BY_NAME[name].words(level)


def describe(cfg) -> str:
    """The scenarios a config sets, for progress lines: "label_fraction 0.1", or ""."""
    return ", ".join(f"{s.field} {getattr(cfg, s.field)}" for s in SCENARIOS if getattr(cfg, s.field) is not None)


def apply(train, cfg, stage: str):
    """``train`` (an ImageSet) after ``cfg``'s scenarios of ``stage`` (``images`` or ``labels``), in the
    registry's order, each seeded by ``cfg.seed``."""
    for s in SCENARIOS:
        level = getattr(cfg, s.field)
        if s.stage == stage and level is not None:
            train = s.change(train, level, cfg)
    return train


def levels(runs, field: str):
    """The runs with ``field`` filled with its scenario's ``unchanged`` level where it is not set (e.g. label noise
    0 for the runs shared with the head-to-head grid), so that a curve starts from the unchanged split."""
    unchanged = BY_FIELD[field].unchanged
    return runs if unchanged is None else runs.assign(**{field: runs[field].fillna(unchanged)})
