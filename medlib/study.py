"""Grids of runs built from a chapter's parameters: which pre-training each arm uses, which runs to do."""

from __future__ import annotations

import types

from .data import same_patients
from .experiment import AdaptConfig
from .pretrain import PRETRAINED_ARMS, PretrainConfig


def sources_for(P: types.SimpleNamespace, target: str) -> tuple[str, ...]:
    """The source pool of a target: ``P.sources`` if given, else the profile's flags less the target and the
    datasets cut from its patients (:func:`medlib.data.same_patients`)."""
    return tuple(P.sources) if P.sources else tuple(f for f in P.source_flags if f not in same_patients(target))


def pretrain_config(P: types.SimpleNamespace, arm: str, target: str, sources=None, seed: int = 0) -> PretrainConfig:
    """The pre-training of ``arm`` on the source pool of ``target`` (the same images for every arm), at the
    profile's rate and options for the arm (``P.pretrain_lrs``, ``P.pretrain_options``; its method's own where the
    profile names none), and the same for the pre-trainings it starts from."""
    options = {a: tuple(o.items()) for a, o in P.pretrain_options.items()}
    return PretrainConfig(arm, tuple(sources or sources_for(P, target)), (target,), P.size, P.backbone, P.stem,
                          P.pretrain_epochs, P.pretrain_batch_size, lr=P.pretrain_lrs.get(arm),
                          max_images=P.pretrain_max_images, seed=seed, start_lrs=tuple(P.pretrain_lrs.items()),
                          options=options.get(arm, ()), start_options=tuple(options.items()))


def adapt_configs(P: types.SimpleNamespace, target: str, arms=None, protocols=None, seeds=None, sources=None,
                  **scenario) -> list[AdaptConfig]:
    """Every arm x protocol x seed on ``target``, with a scenario (e.g. ``label_fraction=0.1``).

    The ``imagenet`` arm always uses torchvision's own stem, whatever ``P.stem`` is. Every seed adapts the arm's
    one pre-training (seed 0), or with ``P.pretrain_per_seed`` a pre-training of its own with the same seed, so
    that the spread over seeds includes the variance of pre-training.
    """
    configs = []
    for arm in arms or P.arms:
        for protocol in protocols or P.protocols:
            tuning = {} if protocol == "linear" else {"epochs": P.finetune_epochs, "lrs": tuple(P.finetune_lrs)}
            for seed in seeds if seeds is not None else P.seeds:
                pretrain = (pretrain_config(P, arm, target, sources, seed if P.pretrain_per_seed else 0)
                            if arm in PRETRAINED_ARMS else None)
                stem = "imagenet" if arm == "imagenet" else P.stem
                configs.append(AdaptConfig(arm, target, protocol, seed, P.size, P.backbone, stem,
                                           max_train_images=P.max_train_images, pretrain=pretrain, **tuning,
                                           **scenario))
    return configs
