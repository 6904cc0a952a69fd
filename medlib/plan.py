"""Which stored runs each chapter needs: the one place the chapters' grids are built.

Each chapter's notebook builds its grid with the function of the same name here, and ``python -m medlib
compute`` computes :func:`chapter_runs` of the chosen chapters as jobs (:mod:`medlib.jobs`), so a chapter that
runs after ``compute`` reads every result it shows from the run store: pre-trainings, adaptations, and the
evaluations of adapted models (the corruption scores of ``07_robustness``, the Grad-CAM maps and embeddings of
``08_explainability``), which those chapters then read without the models' weights.
"""

from __future__ import annotations

import types
from dataclasses import replace

from .corruptions import RobustnessConfig
from .experiment import AdaptConfig
from .explain import ExplainConfig, panel_layer
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


def label_noise(P: types.SimpleNamespace) -> list[AdaptConfig]:
    """Every arm x protocol x seed on ``P.target`` at each share of flipped train labels; a rate of 0 is the
    head-to-head run itself (no noise, the same key)."""
    return [c for r in P.label_noise_rates for c in adapt_configs(P, P.target, label_noise=r or None)]


def domain(P: types.SimpleNamespace) -> list[AdaptConfig]:
    """The arms without pre-training once, and every pre-trained arm pre-trained on each of ``P.source_pools``;
    every protocol and seed, on ``P.target``."""
    pretrained = [a for a in P.arms if a in PRETRAINED_ARMS]
    others = [a for a in P.arms if a not in PRETRAINED_ARMS]
    configs = adapt_configs(P, P.target, arms=others) if others else []
    return configs + [c for pool in P.source_pools if pretrained
                      for c in adapt_configs(P, P.target, arms=pretrained, sources=pool)]


def robustness(P: types.SimpleNamespace) -> list[RobustnessConfig]:
    """The corruption scores (every family at ``P.severities``) of each model of the head-to-head grid on
    ``P.target``, each adapted model kept to compute them."""
    return [RobustnessConfig(replace(c, keep_model=True), severities=tuple(P.severities))
            for c in adapt_configs(P, P.target)]


def explainability(P: types.SimpleNamespace) -> list[ExplainConfig]:
    """Grad-CAM on ``P.n_images`` test images and the embedding of each model of every arm x protocol on
    ``P.target`` with the first seed; one Grad-CAM block per protocol (:func:`medlib.explain.panel_layer`)."""
    out = []
    for protocol in P.protocols:
        configs = [replace(c, keep_model=True) for c in adapt_configs(P, P.target, protocols=[protocol],
                                                                       seeds=P.seeds[:1])]
        layer = panel_layer(configs)
        out += [ExplainConfig(c, P.n_images, layer) for c in configs]
    return out


def study_configs(P: types.SimpleNamespace) -> list[AdaptConfig]:
    """The configs of the head-to-head, scarcity and imbalance chapters' grids, built as those chapters build
    them (so their runs are read from the run store when the chapters ran); the summary chapter's grid:

    - head to head: :func:`head_to_head`;
    - scarcity: :func:`scarcity` and :func:`per_class`, except a fraction of 1 when ``P.target`` is one of
      ``P.targets``: those runs repeat the head-to-head ones (same train split, same seeds), and a condition
      must not be counted twice;
    - imbalance: :func:`imbalance`;
    - label noise: :func:`label_noise`, except a rate of 0 (the head-to-head runs).
    """
    fractions = [c for c in scarcity(P) if not (c.label_fraction == 1 and P.target in P.targets)]
    noisy = [c for c in label_noise(P) if c.label_noise is not None or P.target not in P.targets]
    return head_to_head(P) + fractions + per_class(P) + imbalance(P) + noisy


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
    "11_label_noise": label_noise,
}
"""Chapter name -> the configs (pre-trainings and adaptations) its stored runs come from."""


def chapter_runs(P: types.SimpleNamespace, chapters=None) -> tuple[list, list, list]:
    """The distinct pre-trainings, adaptations and evaluations of adapted models of ``chapters`` (default: all), in
    order; an evaluation's adaptation is among the adaptations, an adaptation's pre-training among the
    pre-trainings."""
    configs = [c for name in (chapters or CHAPTERS) for c in CHAPTERS[name](P)]
    evaluations = list(dict.fromkeys(c for c in configs if isinstance(c, (RobustnessConfig, ExplainConfig))))
    adaptations = [c for c in configs if isinstance(c, AdaptConfig)] + [e.adapt for e in evaluations]
    adaptations = list(dict.fromkeys(adaptations))
    pretrains = [c for c in configs if isinstance(c, PretrainConfig)] + [a.pretrain for a in adaptations if a.pretrain]
    return list(dict.fromkeys(pretrains)), adaptations, evaluations
