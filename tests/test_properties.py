"""Property-based tests (hypothesis) over the validation layer, the run configs, the scenario samplers and the source
pools: synthetic labels and tiny synthetic images, no training, no data files. Each property says what every
accepted input must satisfy; a refusal must be one ParameterError line, never another exception."""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from medmnist.info import INFO

from medlib import data
from medlib.data import FLAGS, SINGLE_LABEL_TASKS, ImageSet, rgb, source_pool
from medlib.experiment import AdaptConfig, pretrained
from medlib.pretrain import PretrainConfig
from medlib.profiles import KNOBS, parameters
from medlib.samplers import imbalance_subset, label_subset
from medlib.store import RunStore
from medlib.validation import ParameterError, check_choice, check_number, check_sequence

FAST = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

FEW_FLAGS = st.sampled_from(["breastmnist", "pneumoniamnist", "retinamnist", "dermamnist", "chestmnist"])
ANYTHING = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.floats(allow_nan=True),
                     st.text(max_size=4), st.lists(st.integers(0, 3), max_size=3))


def refused(call) -> ParameterError | None:
    """The ParameterError ``call`` raises (in one line), or None if it accepts; any other exception fails."""
    try:
        call()
    except ParameterError as e:
        assert "\n" not in str(e)
        return e
    return None


# --- the validation layer ------------------------------------------------------------------------------------

@FAST
@given(st.one_of(st.lists(ANYTHING, max_size=5), st.tuples(ANYTHING, ANYTHING), ANYTHING))
def test_an_accepted_list_is_a_nonempty_sequence_with_each_value_once(values):
    if refused(lambda: check_sequence("xs", values)) is None:
        assert isinstance(values, (list, tuple)) and values
        assert all(v not in values[:i] for i, v in enumerate(values))


@FAST
@given(ANYTHING, st.sampled_from([None, 0, 1]), st.sampled_from([None, 1, 5]), st.booleans(), st.booleans())
def test_an_accepted_number_is_finite_and_within_its_bounds(value, low, high, low_open, integer):
    if refused(lambda: check_number("x", value, low=low, high=high, low_open=low_open, integer=integer)) is None:
        assert type(value) in ((int,) if integer else (int, float)) and math.isfinite(value)
        assert (low is None or (value > low if low_open else value >= low)) and (high is None or value <= high)


@FAST
@given(ANYTHING | st.sampled_from([28.0, 64.0, True, "28"]))
def test_an_accepted_choice_is_an_allowed_value_of_the_same_type(value):
    if refused(lambda: check_choice("size", value, data.SIZES)) is None:
        assert any(type(value) is type(s) and value == s for s in data.SIZES)


@FAST
@given(st.lists(st.integers(-2, 4), max_size=5))
def test_notebook_seeds_are_accepted_only_when_nonnegative_and_distinct(seeds):
    accepted = refused(lambda: parameters(seeds=seeds)) is None
    assert accepted == (bool(seeds) and min(seeds) >= 0 and len(set(seeds)) == len(seeds))


@FAST
@given(st.sampled_from(sorted(KNOBS)),
       ANYTHING | st.lists(FEW_FLAGS, max_size=3) | st.lists(st.lists(FEW_FLAGS, max_size=3), max_size=3))
def test_any_value_of_any_notebook_knob_is_accepted_or_refused_in_one_line(name, value):
    refused(lambda: parameters(**{name: value}))


# --- the run configs -----------------------------------------------------------------------------------------

@FAST
@given(st.lists(FEW_FLAGS, min_size=1, max_size=3), st.lists(FEW_FLAGS, max_size=2))
def test_an_accepted_pretraining_pools_distinct_single_label_sources_without_its_targets(sources, targets):
    target = targets[0] if targets else "breastmnist"
    adapt = lambda: AdaptConfig("tl", target, "linear", pretrain=PretrainConfig("tl", tuple(sources),  # noqa: E731
                                                                                 tuple(targets)))
    if refused(lambda: PretrainConfig("tl", tuple(sources), tuple(targets))) is None:
        assert len(set(sources)) == len(sources) and len(set(targets)) == len(targets)
        assert all(INFO[s]["task"] in SINGLE_LABEL_TASKS for s in sources)
        if refused(adapt) is None:
            assert target not in sources
        with pytest.MonkeyPatch.context() as mp:  # pre-training it: refused before the store is touched
            mp.setattr(RunStore, "cached", lambda *a: pytest.fail("a pool holding its target reached the store"))
            if set(sources) & set(targets):
                assert refused(lambda: pretrained(PretrainConfig("tl", tuple(sources), tuple(targets))))


@FAST
@given(st.sampled_from(FLAGS), st.one_of(st.none(), st.integers(-1, 12)),
       st.one_of(st.none(), st.floats(0.5, 60)), st.one_of(st.none(), st.floats(-0.1, 1.2)),
       st.one_of(st.none(), st.integers(0, 5)))
def test_an_accepted_adaptation_scenario_can_be_drawn_from_its_target(target, minority, ratio, fraction, per_class):
    cfg = lambda: AdaptConfig("scratch", target, "linear", imbalance_ratio=ratio, minority=minority,  # noqa: E731
                              label_fraction=fraction, per_class=per_class)
    if refused(cfg) is None:
        single = INFO[target]["task"] in SINGLE_LABEL_TASKS
        scenario = [v for v in (minority, ratio, fraction, per_class) if v is not None]
        assert single or not scenario
        assert minority is None or 0 <= minority < len(INFO[target]["label"])
        assert ratio is None or ratio >= 1
        assert fraction is None or 0 < fraction <= 1
        assert fraction is None or per_class is None


# --- the scenario samplers -----------------------------------------------------------------------------------

LABELS = st.lists(st.integers(0, 4), min_size=1, max_size=80).map(lambda xs: torch.tensor(xs))


def counts(labels: torch.Tensor, index: torch.Tensor | None = None) -> dict[int, int]:
    chosen = labels if index is None else labels[index]
    return {c: int((chosen == c).sum()) for c in torch.unique(labels).tolist()}


def assert_a_subset_of_the_split(index: torch.Tensor, labels: torch.Tensor):
    assert torch.equal(index, index.sort().values) and len(index.unique()) == len(index) <= len(labels)
    assert len(index) == 0 or (0 <= index.min() and index.max() < len(labels))


@FAST
@given(LABELS, st.one_of(st.floats(1e-6, 1.0), st.none()), st.integers(1, 30), st.integers(0, 3))
def test_a_label_subset_keeps_every_class_is_stratified_and_seeded(labels, fraction, per_class, seed):
    kwargs = dict(label_fraction=fraction) if fraction is not None else dict(per_class=per_class)
    index = label_subset(labels, **kwargs, seed=seed)
    assert_a_subset_of_the_split(index, labels)
    assert torch.equal(index, label_subset(labels, **kwargs, seed=seed))  # deterministic
    full, kept = counts(labels), counts(labels, index)
    for c, n in full.items():
        want = round(fraction * n) if fraction is not None else per_class
        assert kept[c] == max(1, min(want, n))  # every class keeps at least one image
        if fraction is not None and kept[c] > 1:
            assert abs(kept[c] - fraction * n) <= 0.5 + 1e-9  # the fraction, within rounding


@FAST
@given(LABELS, st.floats(1, 60), st.one_of(st.none(), st.integers(0, 4)), st.integers(0, 3))
@example(torch.tensor([0] * 100 + [1] * 500), 4.35, None, 0)  # 4.35 * 100 is 434.99999999999994 in floats
@example(torch.tensor([0] * 500 + [1] * 100), 1.15, None, 0)  # 1.15 * 100 is 114.99999999999999
def test_an_imbalanced_split_realises_its_ratio_within_rounding(labels, ratio, minority, seed):
    present = sorted(counts(labels))
    e = refused(lambda: imbalance_subset(labels, ratio, minority, seed))
    if e is not None:
        assert len(present) < 2 or minority not in present
        return
    index = imbalance_subset(labels, ratio, minority, seed)
    assert_a_subset_of_the_split(index, labels)
    assert torch.equal(index, imbalance_subset(labels, ratio, minority, seed))
    full, kept = counts(labels), counts(labels, index)
    minority = min(present, key=lambda c: (full[c], c)) if minority is None else minority
    m, big = kept[minority], max(kept[c] for c in present if c != minority)
    majority, r = max(full[c] for c in present if c != minority), Fraction(repr(ratio))  # the ratio as written
    assert all(kept[c] >= 1 for c in present)
    if full[minority] * r >= majority:  # the minority is cut to majority / ratio images (at least one)
        assert (m, big) == (max(1, math.floor(majority / r)), majority)
    else:  # too few minority images for that: the others are cut to ratio x minority
        assert (m, big) == (full[minority], math.floor(r * full[minority]))


# --- the source pools ----------------------------------------------------------------------------------------

POOL_FLAGS = ("breastmnist", "pneumoniamnist", "retinamnist")  # grey, grey, colour


@st.composite
def synthetic_store(draw):
    """Tiny 2x2 images of 0s and 1s for every split of POOL_FLAGS (collisions are frequent), some target val/test
    images copied into other flags' train splits, in the other flag's channel format."""
    sets = {}
    for flag in POOL_FLAGS:
        channels, n_classes = INFO[flag]["n_channels"], len(INFO[flag]["label"])
        for split in data.SPLITS:
            n = draw(st.integers(1 if split == "train" else 0, 6))
            images = torch.tensor(draw(st.lists(st.lists(st.integers(0, 1), min_size=4 * channels,
                                                         max_size=4 * channels), min_size=n, max_size=n)),
                                  dtype=torch.uint8).reshape(n, channels, 2, 2)
            labels = torch.tensor(draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n)),
                                  dtype=torch.long)
            sets[flag, split] = ImageSet(images, labels, INFO[flag]["task"],
                                         tuple(INFO[flag]["label"].values()), (flag,),
                                         torch.zeros(n, dtype=torch.long), split, 28)
    for _ in range(draw(st.integers(0, 3))):  # plant target val/test images in another flag's train split
        src, dst = draw(st.sampled_from(POOL_FLAGS)), draw(st.sampled_from(POOL_FLAGS))
        eval_images = torch.cat([sets[src, "val"].images, sets[src, "test"].images])
        if len(eval_images):
            image = rgb(eval_images[draw(st.integers(0, len(eval_images) - 1))][None])
            if INFO[dst]["n_channels"] == 1:
                if not torch.equal(image[:, :1].expand(-1, 3, -1, -1), image):
                    continue  # a colour picture has no grey copy
                image = image[:, :1]
            train = sets[dst, "train"]
            sets[dst, "train"] = replace(train, images=torch.cat([train.images, image.contiguous()]),
                                         labels=torch.cat([train.labels, train.labels[:1]]),
                                         groups=torch.zeros(len(train) + 1, dtype=torch.long))
    return sets


@settings(FAST, max_examples=80)
@given(synthetic_store(), st.lists(st.sampled_from(POOL_FLAGS), min_size=1, max_size=3),
       st.lists(st.sampled_from(POOL_FLAGS), max_size=2), st.one_of(st.none(), st.integers(2, 8)), st.integers(0, 2))
def test_a_source_pool_never_holds_a_target_val_or_test_image(sets, sources, targets, max_images, seed):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(data, "load", lambda flag, split="train", size=28, root=None: sets[flag, split])
        build = lambda: source_pool(sources, targets=targets, max_images=max_images, seed=seed)  # noqa: E731
        if refused(build) is not None:
            assert len(set(sources)) < len(sources) or len(set(targets)) < len(targets)
            return
        pool = build()
        assert torch.equal(pool.images, build().images)  # seeded
    forbidden = [rgb(sets[t, s].images) for t in targets for s in ("val", "test")]
    for image in pool.images:
        assert not any(torch.equal(image, f) for part in forbidden for f in part)
    total = sum(len(sets[s, "train"]) for s in sources)
    assert len(pool) == min(total - sum(pool.dropped.values()), max_images or total)
    assert pool.names == tuple(sources) and len(pool.classes) == sum(len(INFO[s]["label"]) for s in sources)
