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
from functools import partial

from .adapt import PROTOCOLS
from .data import FLAGS, SIZES
from .methods import ARMS
from .models import BACKBONES, STEMS
from .validation import (ParameterError, check_choice, check_choices, check_number, check_numbers,
                         check_sequence)

OFFLINE_FLAGS = ("breastmnist", "pneumoniamnist", "retinamnist")
FULL_FLAGS = ("pathmnist", "dermamnist", "octmnist", "pneumoniamnist", "retinamnist", "breastmnist",
              "bloodmnist", "tissuemnist", "organamnist", "organcmnist", "organsmnist")

_COMMON = dict(size=28, backbone="resnet18", stem="imagenet", arms=list(ARMS), protocols=list(PROTOCOLS),
               target="breastmnist", sources=None, minority=None, per_class=None, pretrain_per_seed=False)

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


_int = partial(check_number, integer=True)
KNOBS = {
    "profile": partial(check_choice, allowed=PROFILES),
    "size": partial(check_choice, allowed=SIZES),
    "backbone": partial(check_choice, allowed=BACKBONES),
    "stem": partial(check_choice, allowed=STEMS),
    "target": partial(check_choice, allowed=FLAGS),
    "targets": partial(check_choices, allowed=FLAGS),
    "sources": partial(_optional, partial(check_choices, allowed=FLAGS)),
    "source_flags": partial(check_choices, allowed=FLAGS),
    "source_pools": _flag_lists,
    "arms": partial(check_choices, allowed=ARMS),
    "protocols": partial(check_choices, allowed=PROTOCOLS),
    "seeds": partial(check_numbers, low=0, integer=True),
    "pretrain_epochs": partial(_int, low=1),
    "pretrain_max_images": partial(_optional, partial(_int, low=2)),
    "pretrain_batch_size": partial(_int, low=2),
    "pretrain_per_seed": _flag,
    "finetune_epochs": partial(_int, low=1),
    "finetune_lrs": partial(check_numbers, low=0, low_open=True),
    "max_train_images": partial(_optional, partial(_int, low=2)),
    "label_fractions": partial(check_numbers, low=0, high=1, low_open=True),
    "per_class": partial(_optional, partial(_int, low=1)),
    "imbalance_ratios": partial(check_numbers, low=1),
    "minority": partial(_optional, partial(_int, low=0)),
    "label_noise_rates": partial(check_numbers, low=0, high=1, high_open=True),
    "severities": partial(check_numbers, low=1, high=5, integer=True),
    "n_images": partial(_int, low=1, high=64),
}
HELP = {  # each knob's help, once: the chapters' parameters cells are written from it (parameters_cell); no "=" in
          # a help (papermill reads a line with two as no parameter)
    "profile": "smoke | quick | gpu | full",
    "size": "image size in pixels (28, 64, 128, 224)",
    "backbone": "resnet18 or resnet50",
    "stem": "imagenet (7x7/2 conv + max-pool) or cifar (3x3/1 conv, no pool)",
    "target": "the dataset the one-target grids adapt to (scarcity, imbalance, label noise, ...)",
    "targets": "datasets the head-to-head grid adapts to",
    "sources": 'one fixed source pool for every target instead, e.g. ["pneumoniamnist"]',
    "source_flags": "datasets a source pool may draw from (each target's pool leaves the target out)",
    "source_pools": 'source pools to compare, e.g. [["pneumoniamnist"], ["retinamnist"]]',
    "arms": "None: every arm (scratch, imagenet and each method of medlib.methods)",
    "protocols": "linear (frozen encoder + linear head), finetune (all weights)",
    "seeds": "one adaptation run per seed",
    "pretrain_epochs": "pre-training epochs",
    "pretrain_max_images": "seeded subset of the source pool used for pre-training (None: all)",
    "pretrain_batch_size": "pre-training batch size",
    "pretrain_per_seed": "True: each seed adapts a pre-training of its own (spreads include pre-training)",
    "finetune_epochs": "epochs of full fine-tuning",
    "finetune_lrs": "fine-tuning learning rates; the best on val AUC is kept",
    "max_train_images": "cap on the target train split (stratified; None: all)",
    "label_fractions": "fractions of the labelled train split",
    "per_class": "labelled images per class for an extra scarcity point (None: skip)",
    "imbalance_ratios": "majority : minority ratios of the resampled train split",
    "minority": "class index cut to the minority (None: the rarest class)",
    "label_noise_rates": "shares of the train labels flipped to another class, each below (k - 1) / k",
    "severities": "corruption severities to evaluate (1 mild ... 5 strong)",
    "n_images": "images per class in sample grids, test images in Grad-CAM panels",
}
_IPYTHON = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def parameters_cell(names) -> str:
    """The ``parameters`` cell of a chapter template that uses the knobs ``names`` (after ``profile``): each
    ``None`` (the profile's value) with its :data:`HELP`, aligned, so that help is written once, here."""
    lines = ["import os", "", f'profile = os.environ.get("MEDLIB_PROFILE", "smoke")  # {HELP["profile"]}']
    return "\n".join(lines + [f"{f'{name} = None':<27} # {HELP[name]}" for name in names if name != "profile"])


def _literal(name: str, value):
    """``papermill -p seeds "[0,1,2]"`` passes the list as text: read it as a Python literal."""
    if not (isinstance(value, str) and value.strip()[:1] in "[("):
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
    profile = KNOBS["profile"]("profile", given.get("profile") or default_profile())
    values = PROFILES[profile] | {k: v for k, v in given.items() if v is not None} | {"profile": profile}
    for name, value in values.items():
        KNOBS[name](name, value)
    return types.SimpleNamespace(**values, started=time.time(), given=sorted(given))
