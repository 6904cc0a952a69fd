"""Grids of runs built from a chapter's parameters: which pre-training each arm uses, which runs to do."""

from __future__ import annotations

import types

from .experiment import AdaptConfig
from .pretrain import PRETRAINED_ARMS, PretrainConfig


def sources_for(P: types.SimpleNamespace, target: str) -> tuple[str, ...]:
    """The source pool of a target: ``P.sources`` if given, else the profile's flags less the target."""
    return tuple(P.sources) if P.sources else tuple(f for f in P.source_flags if f != target)


def pretrain_config(P: types.SimpleNamespace, arm: str, target: str, sources=None) -> PretrainConfig:
    """The pre-training of ``arm`` on the source pool of ``target`` (the same images for every arm)."""
    return PretrainConfig(arm, tuple(sources or sources_for(P, target)), (target,), P.size, P.backbone, P.stem,
                          P.pretrain_epochs, P.pretrain_batch_size, max_images=P.pretrain_max_images)


def adapt_configs(P: types.SimpleNamespace, target: str, arms=None, protocols=None, seeds=None, sources=None,
                  **scenario) -> list[AdaptConfig]:
    """Every arm x protocol x seed on ``target``, with a scenario (e.g. ``label_fraction=0.1``).

    The ``imagenet`` arm always uses torchvision's own stem, whatever ``P.stem`` is.
    """
    configs = []
    for arm in arms or P.arms:
        pretrain = pretrain_config(P, arm, target, sources) if arm in PRETRAINED_ARMS else None
        for protocol in protocols or P.protocols:
            epochs = P.linear_epochs if protocol == "linear" else P.finetune_epochs
            for seed in seeds if seeds is not None else P.seeds:
                stem = "imagenet" if arm == "imagenet" else P.stem
                configs.append(AdaptConfig(arm, target, protocol, seed, P.size, P.backbone, stem, epochs,
                                           max_train_images=P.max_train_images, pretrain=pretrain, **scenario))
    return configs
