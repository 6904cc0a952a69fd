"""Profiles (smoke, quick, full, gpu) and the notebook parameters ("knobs") they set.

Every chapter's parameters cell lists the knobs it uses with ``None`` meaning "the profile's value";
:func:`parameters` merges them with the profile, validates every value before any work starts, and refuses
names that are not knobs (e.g. a misspelt ``papermill -p`` name).
"""

from __future__ import annotations

import ast
import os
import time
import types
from collections.abc import Callable
from functools import partial
from typing import NamedTuple

from .adapt import PROTOCOLS
from .data import FLAGS, SIZES
from .methods import ARMS, TRAINING_ARMS, get
from .models import BACKBONES, STEMS
from .validation import (ParameterError, check_choice, check_choices, check_number, check_numbers,
                         check_sequence)

OFFLINE_FLAGS = ("breastmnist", "pneumoniamnist", "retinamnist")
FULL_FLAGS = ("pathmnist", "dermamnist", "octmnist", "pneumoniamnist", "retinamnist", "breastmnist",
              "bloodmnist", "tissuemnist", "organamnist", "organcmnist", "organsmnist")

_COMMON = dict(size=28, backbone="resnet18", stem="imagenet", arms=list(ARMS), protocols=list(PROTOCOLS),
               target="breastmnist", sources=None, minority=None, per_class=None, pretrain_per_seed=False,
               pretrain_lrs={}, pretrain_options={})

PROFILES = {
    # seconds per notebook: real offline data, tiny subsets, one epoch (CI and nbval)
    "smoke": _COMMON | dict(
        targets=["breastmnist"], seeds=[0], source_flags=list(OFFLINE_FLAGS),
        pretrain_epochs=1, pretrain_max_images=256, pretrain_batch_size=64,
        finetune_epochs=1, finetune_lrs=[1e-3], max_train_images=128,
        label_fractions=[0.1, 1.0], imbalance_ratios=[1, 10], label_noise_rates=[0.0, 0.4], severities=[1, 3],
        source_pools=[["pneumoniamnist"], ["retinamnist"]], n_images=4),
    # the real study on a 2-core CPU with the offline files
    "quick": _COMMON | dict(
        targets=list(OFFLINE_FLAGS), seeds=[0, 1, 2], source_flags=list(OFFLINE_FLAGS),
        pretrain_epochs=10, pretrain_max_images=2000, pretrain_batch_size=256,
        finetune_epochs=10, finetune_lrs=[1e-4, 3e-4, 1e-3], max_train_images=1000,
        label_fractions=[0.05, 0.1, 0.25, 0.5, 1.0], imbalance_ratios=[1, 5, 10, 20],
        label_noise_rates=[0.0, 0.4], severities=[1, 3, 5],
        source_pools=[["pneumoniamnist"], ["retinamnist"], ["pneumoniamnist", "retinamnist"]], n_images=8),
    # paper scale on a GPU: MedMNIST's large sets as sources (downloads), 64 px, the small-input stem
    "full": _COMMON | dict(
        size=64, stem="cifar",
        targets=["breastmnist", "pneumoniamnist", "retinamnist", "dermamnist", "bloodmnist", "organcmnist"],
        seeds=[0, 1, 2], source_flags=list(FULL_FLAGS),
        pretrain_epochs=100, pretrain_max_images=None, pretrain_batch_size=512,
        finetune_epochs=100, finetune_lrs=[1e-4, 3e-4, 1e-3], max_train_images=None,
        label_fractions=[0.01, 0.05, 0.1, 0.25, 0.5, 1.0], imbalance_ratios=[1, 5, 10, 20, 50],
        label_noise_rates=[0.0, 0.1, 0.2, 0.3, 0.4], severities=[1, 2, 3, 4, 5],
        source_pools=[["pneumoniamnist"], ["retinamnist", "dermamnist"], ["octmnist", "pneumoniamnist"],
                      ["pathmnist", "bloodmnist", "dermamnist"]], n_images=8),
    # the study at a real budget on one GPU with the offline files: whole pools and train splits, the
    # cifar stem, MedMNIST v2's fine-tuning epochs, one pre-training per arm and seed.
    # PROVISIONAL: pretrain_epochs=100 is not yet measured; `python -m benchmarks.budget_curve --profile gpu`
    # on a GPU measures the curve it must come from (benchmarks/gpu_study.sh runs it).
    "gpu": _COMMON | dict(
        stem="cifar", targets=list(OFFLINE_FLAGS), seeds=[0, 1, 2], source_flags=list(OFFLINE_FLAGS),
        pretrain_per_seed=True, pretrain_epochs=100, pretrain_max_images=None, pretrain_batch_size=512,
        finetune_epochs=100, finetune_lrs=[1e-4, 3e-4, 1e-3], max_train_images=None,
        label_fractions=[0.05, 0.1, 0.25, 0.5, 1.0], imbalance_ratios=[1, 5, 10, 20],
        label_noise_rates=[0.0, 0.1, 0.2, 0.4], severities=[1, 3, 5],
        source_pools=[["pneumoniamnist"], ["retinamnist"], ["pneumoniamnist", "retinamnist"]], n_images=8),
}


def _optional(check, name, value):
    return None if value is None else check(name, value)


def _flag_lists(name, value):
    for pool in check_sequence(name, value):
        check_choices(name, pool, FLAGS)
    return value


def _flag(name, value):
    if not isinstance(value, bool):
        raise ParameterError(f"{name}={value!r} is not allowed; choose one of: True, False")
    return value


def _rates(name, value):
    """``{arm: learning rate}`` for arms that train (``benchmarks.pretrain_lr`` chooses them on val)."""
    if not isinstance(value, dict):
        raise ParameterError(f"{name}={value!r} is not allowed; give a dict of arm: rate, e.g. {{'tl': 0.12}}")
    for arm, rate in value.items():
        check_choice(name, arm, TRAINING_ARMS)
        check_number(f"{name}[{arm!r}]", rate, low=0, low_open=True)
    return value


def _options(name, value):
    """``{arm: {option: value}}`` for arms that train (``Method.options``: SimCLR's temperature, BYOL's momentum)."""
    if not isinstance(value, dict):
        raise ParameterError(f"{name}={value!r} is not allowed; give a dict of arm: {{option: value}}, e.g. "
                             "{'ssl-simclr': {'temperature': 0.2}}")
    for arm, options in value.items():
        check_choice(name, arm, TRAINING_ARMS)
        get(arm).check_options(f"{name}[{arm!r}]", options)
    return value


def _either(values) -> str:
    values = [str(v) for v in values]
    return f"{', '.join(values[:-1])} or {values[-1]}"


class Knob(NamedTuple):
    """A chapter parameter, declared once: its ``check`` (``check(name, value)`` returns the value or raises
    :class:`ParameterError` in one line) and its ``help``, from which the chapters' parameters cells
    (:func:`parameters_cell`) and the command line's options (:mod:`medlib.cli`) are written. Its values are
    the profiles' (:data:`PROFILES`)."""

    check: Callable
    help: str  # no "=" in a help: papermill reads a line with two as no parameter


_int = partial(check_number, integer=True)
KNOBS = {
    "profile": Knob(partial(check_choice, allowed=PROFILES), " | ".join(PROFILES)),
    "size": Knob(partial(check_choice, allowed=SIZES), f"image size in pixels ({', '.join(map(str, SIZES))})"),
    "backbone": Knob(partial(check_choice, allowed=BACKBONES), _either(BACKBONES)),
    "stem": Knob(partial(check_choice, allowed=STEMS),
                 "imagenet (7x7/2 conv + max-pool) or cifar (3x3/1 conv, no pool)"),
    "target": Knob(partial(check_choice, allowed=FLAGS),
                   "the dataset the one-target grids adapt to (scarcity, imbalance, label noise, ...)"),
    "targets": Knob(partial(check_choices, allowed=FLAGS), "datasets the head-to-head grid adapts to"),
    "sources": Knob(partial(_optional, partial(check_choices, allowed=FLAGS)),
                    "one source pool for every target (None: each target's pool of the other source flags)"),
    "source_flags": Knob(partial(check_choices, allowed=FLAGS),
                         "datasets a source pool may draw from (each target's pool leaves the target out)"),
    "source_pools": Knob(_flag_lists, 'source pools to compare, e.g. [["pneumoniamnist"], ["retinamnist"]]'),
    "arms": Knob(partial(check_choices, allowed=ARMS),
                 "None: every arm (scratch, imagenet and each method of medlib.methods)"),
    "protocols": Knob(partial(check_choices, allowed=PROTOCOLS),
                      "linear (frozen encoder + linear head), finetune (all weights)"),
    "seeds": Knob(partial(check_numbers, low=0, integer=True), "one adaptation run per seed"),
    "pretrain_epochs": Knob(partial(_int, low=1), "pre-training epochs"),
    "pretrain_max_images": Knob(partial(_optional, partial(_int, low=2)),
                                "seeded subset of the source pool used for pre-training (None: all)"),
    "pretrain_batch_size": Knob(partial(_int, low=2), "pre-training batch size"),
    "pretrain_lrs": Knob(_rates, "{arm: pre-training rate at batch 256}; an arm not named: its method's own"),
    "pretrain_options": Knob(_options, "{arm: {option: value}}, e.g. SimCLR's temperature, BYOL's momentum; an arm "
                                       "not named: its method's defaults"),
    "pretrain_per_seed": Knob(_flag,
                              "True: each seed adapts a pre-training of its own (spreads include pre-training)"),
    "finetune_epochs": Knob(partial(_int, low=1), "epochs of full fine-tuning"),
    "finetune_lrs": Knob(partial(check_numbers, low=0, low_open=True),
                         "fine-tuning learning rates; the best on val AUC is kept"),
    "max_train_images": Knob(partial(_optional, partial(_int, low=2)),
                             "cap on the target train split (stratified; None: all)"),
    "label_fractions": Knob(partial(check_numbers, low=0, high=1, low_open=True),
                            "fractions of the labelled train split"),
    "per_class": Knob(partial(_optional, partial(_int, low=1)),
                      "labelled images per class for an extra scarcity point (None: skip)"),
    "imbalance_ratios": Knob(partial(check_numbers, low=1), "majority : minority ratios of the resampled train split"),
    "minority": Knob(partial(_optional, partial(_int, low=0)),
                     "class index cut to the minority (None: the rarest class)"),
    "label_noise_rates": Knob(partial(check_numbers, low=0, high=1, high_open=True),
                              "shares of the train labels flipped to another class, each below (k - 1) / k"),
    "severities": Knob(partial(check_numbers, low=1, high=5, integer=True),
                       "corruption severities to evaluate (1 mild ... 5 strong)"),
    "n_images": Knob(partial(_int, low=1, high=64),
                     "images per class in sample grids, test images in Grad-CAM panels"),
}
_IPYTHON = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def parameters_cell(names) -> str:
    """The ``parameters`` cell of a chapter template that uses the knobs ``names`` (after ``profile``): each
    ``None`` (the profile's value) with its knob's help, aligned, so that help is written once (:data:`KNOBS`)."""
    lines = ["import os", "", f'profile = os.environ.get("MEDLIB_PROFILE", "smoke")  # {KNOBS["profile"].help}']
    return "\n".join(lines + [f"{f'{name} = None':<27} # {KNOBS[name].help}" for name in names
                              if name != "profile"])


def _literal(name: str, value):
    """``papermill -p seeds "[0,1,2]"`` passes the list as text: read it as a Python literal."""
    if not (isinstance(value, str) and value.strip()[:1] in "[({"):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise ParameterError(f"{name}={value!r} is not a valid list, e.g. [0, 1, 2]") from None


def default_profile() -> str:
    return os.environ.get("MEDLIB_PROFILE", "smoke")


def parameters(namespace: dict | None = None, **given) -> types.SimpleNamespace:
    """Merge a chapter's knobs (a notebook's ``globals()`` and/or keywords) with their profile's values.

    Knobs left at ``None`` take the profile's value. Raises :class:`ParameterError` for an unknown name,
    an unknown profile, or a bad value, naming it and what is allowed.
    """
    given = {k: v for k, v in (namespace or {}).items()
             if not k.startswith("_") and k not in _IPYTHON and not isinstance(v, types.ModuleType)
             and not callable(v)} | given
    unknown = sorted(set(given) - set(KNOBS))
    if unknown:
        raise ParameterError(f"unknown parameter {', '.join(map(repr, unknown))}; "
                             f"the knobs are: {', '.join(KNOBS)}")
    given = {k: _literal(k, v) for k, v in given.items()}
    profile = KNOBS["profile"].check("profile", given.get("profile") or default_profile())
    values = PROFILES[profile] | {k: v for k, v in given.items() if v is not None} | {"profile": profile}
    for name, value in values.items():
        KNOBS[name].check(name, value)
    return types.SimpleNamespace(**values, started=time.time(), given=sorted(given))
