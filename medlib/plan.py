"""Which stored runs each chapter needs: the one place the chapters' grids are built.

Each chapter's notebook builds its grid with the function of the same name here, and ``python -m medlib
compute`` computes :func:`chapter_runs` of the chosen chapters as jobs (:mod:`medlib.jobs`), so a chapter that
runs after ``compute`` reads every pre-training and adaptation from the run store. The corruption scores of
``07_robustness`` and the Grad-CAM maps and embeddings of ``08_explainability`` are computed by the chapters
themselves from the stored models; ``compute`` stores those models.
"""

from __future__ import annotations

import types
from dataclasses import replace

from .decision import study_configs
from .experiment import AdaptConfig
from .pretrain import PRETRAINED_ARMS, PretrainConfig
from .study import adapt_configs, pretrain_config


def pretrainings(P: types.SimpleNamespace) -> dict[str, dict[str, PretrainConfig]]:
    """``{target: {arm: config}}``: the pre-training of every pre-trained arm of ``P`` on each target's pool."""
    return {t: {a: pretrain_config(P, a, t) for a in P.arms if a in PRETRAINED_ARMS} for t in P.targets}


def head_to_head(P: types.SimpleNamespace) -> list[AdaptConfig]:
    """Every arm x protocol x seed on every target, all labels."""
    return [c for t in P.targets for c in adapt_configs(P, t)]


def scarcity(P: types.SimpleNamespace) -> list[AdaptConfig]:
    """Every arm x protocol x seed on ``P.target`` at each label fraction."""
    return [c for f in P.label_fractions for c in adapt_configs(P, P.target, label_fraction=f)]


def per_class(P: types.SimpleNamespace) -> list[AdaptConfig]:
    """The extra scarcity point with ``P.per_class`` labels per class (none when it is not set)."""
    return [] if P.per_class is None else adapt_configs(P, P.target, per_class=P.per_class)


def imbalance(P: types.SimpleNamespace) -> list[AdaptConfig]:
    """Every arm x protocol x seed on ``P.target`` at each majority : minority ratio."""
    return [c for r in P.imbalance_ratios for c in adapt_configs(P, P.target, imbalance_ratio=r, minority=P.minority)]


def domain(P: types.SimpleNamespace) -> list[AdaptConfig]:
    """The arms without pre-training once, and every pre-trained arm pre-trained on each of ``P.source_pools``
    (the runs of :func:`medlib.domain.domain_grid`)."""
    pretrained = [a for a in P.arms if a in PRETRAINED_ARMS]
    others = [a for a in P.arms if a not in PRETRAINED_ARMS]
    configs = adapt_configs(P, P.target, arms=others) if others else []
    return configs + [c for pool in P.source_pools if pretrained
                      for c in adapt_configs(P, P.target, arms=pretrained, sources=pool)]


def robustness(P: types.SimpleNamespace) -> list[AdaptConfig]:
    """The head-to-head grid on ``P.target``, each adapted model kept for the corruption scores."""
    return [replace(c, keep_model=True) for c in adapt_configs(P, P.target)]


def explainability(P: types.SimpleNamespace) -> list[AdaptConfig]:
    """Every arm x protocol on ``P.target`` with the first seed, each adapted model kept for Grad-CAM."""
    return [replace(c, keep_model=True) for c in adapt_configs(P, P.target, seeds=P.seeds[:1])]


def _pretrainings_only(P):
    return [c for by_arm in pretrainings(P).values() for c in by_arm.values()]


CHAPTERS = {
    "01_data": lambda P: [],
    "02_pretraining": _pretrainings_only,
    "03_head_to_head": head_to_head,
    "04_scarcity": lambda P: scarcity(P) + per_class(P),
    "05_imbalance": imbalance,
    "06_domain": domain,
    "07_robustness": robustness,
    "08_explainability": explainability,
    "09_speed": lambda P: _pretrainings_only(P) + head_to_head(P),
    "10_summary": study_configs,
}
"""Chapter name -> the configs (pre-trainings and adaptations) its stored runs come from."""


def chapter_runs(P: types.SimpleNamespace, chapters=None) -> tuple[list[PretrainConfig], list[AdaptConfig]]:
    """The distinct pre-trainings and adaptations of ``chapters`` (default: all), in order; an adaptation's
    pre-training is among the pre-trainings."""
    configs = [c for name in (chapters or CHAPTERS) for c in CHAPTERS[name](P)]
    adaptations = list(dict.fromkeys(c for c in configs if isinstance(c, AdaptConfig)))
    pretrains = [c for c in configs if isinstance(c, PretrainConfig)] + [a.pretrain for a in adaptations if a.pretrain]
    return list(dict.fromkeys(pretrains)), adaptations
