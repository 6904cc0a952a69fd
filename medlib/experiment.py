"""The study's unit of work: pre-train once, adapt many times, every result cached in the run store."""

from __future__ import annotations

import types
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd
import torch
from medmnist.info import INFO
from tqdm.auto import tqdm

from . import scenarios
from .adapt import PROTOCOLS, adapt
from .compute import default_device, precision
from .data import FLAGS, SINGLE_LABEL_TASKS, SIZES, ImageSet, check_source_pool, load
from .metrics import METRICS, evaluate, majority_baseline, read_predictions, write_predictions
from .methods import ARMS
from .models import BACKBONES, STEMS, Classifier, backbone, imagenet_weights_problem
from .pretrain import (PRETRAINED_ARMS, PretrainConfig, load_encoder, new_encoder, pretrain,
                       starting_points)
from .samplers import label_subset
from .scenarios import SCENARIOS, check_scenario
from .stats import Prediction, completed, seed_summary
from .store import RunStore, StoreError, key_fields, load_torch, save_torch
from .validation import ParameterError, check_choice, check_number, check_numbers


@dataclass(frozen=True)
class AdaptConfig:
    """One adaptation run: an arm's encoder, a target, a protocol, a scenario and a seed."""

    arm: str
    target: str
    protocol: str
    seed: int = 0
    size: int = 28
    backbone: str = "resnet18"
    stem: str = "imagenet"
    epochs: int | None = 20  # fine-tuning only, like lrs and batch_size: the linear probe fits to convergence
    lrs: tuple[float, ...] | None = (1e-3,)  # fine-tuning's learning rates; the best on val AUC is kept
    batch_size: int | None = 128
    label_fraction: float | None = None
    per_class: int | None = None
    imbalance_ratio: float | None = None
    minority: int | None = None
    max_train_images: int | None = None
    keep_model: bool = False
    pretrain: PretrainConfig | None = None
    label_noise: float | None = None  # share of train labels flipped (medlib.scenarios); None: no noise

    def __post_init__(self):
        check_choice("arm", self.arm, ARMS)
        check_choice("target", self.target, FLAGS)
        check_choice("protocol", self.protocol, PROTOCOLS)
        check_choice("size", self.size, SIZES)
        check_choice("backbone", self.backbone, BACKBONES)
        check_choice("stem", self.stem, STEMS)
        check_number("seed", self.seed, low=0, integer=True)
        if self.protocol == "linear":  # one key per probe run, whatever fine-tuning settings were passed
            for name in ("epochs", "lrs", "batch_size"):
                object.__setattr__(self, name, None)
        else:
            check_number("epochs", self.epochs, low=1, integer=True)
            object.__setattr__(self, "lrs", check_numbers("lrs", self.lrs, low=0, low_open=True))
            check_number("batch_size", self.batch_size, low=1, integer=True)
        info = INFO[self.target]
        check_scenario({s.field: getattr(self, s.field) for s in SCENARIOS}, self.minority, self.max_train_images,
                       len(info["label"]), info["task"] in SINGLE_LABEL_TASKS)
        if (self.arm in PRETRAINED_ARMS) != (self.pretrain is not None):
            raise ParameterError(f"arm={self.arm!r} {'needs' if self.arm in PRETRAINED_ARMS else 'takes no'} "
                                 "pre-training config")
        if self.pretrain is not None:
            check_source_pool(self.pretrain.sources, (self.target,))
            mismatch = [k for k in ("arm", "size", "backbone", "stem")
                        if getattr(self.pretrain, k) != getattr(self, k)]
            if mismatch:
                raise ParameterError(f"pre-training and adaptation disagree on {', '.join(mismatch)}")
        if self.arm == "imagenet" and self.stem != "imagenet":
            raise ParameterError("arm='imagenet' needs stem='imagenet' (torchvision's weights)")

    def to_dict(self) -> dict:
        """The config as stored and hashed (:func:`medlib.store.key_fields` with :data:`ADDED_FIELDS`), the
        pre-training's as :meth:`PretrainConfig.to_dict` writes it."""
        return key_fields(self, ADDED_FIELDS) | {"pretrain": self.pretrain.to_dict() if self.pretrain else None}


ADDED_FIELDS = {"label_noise": None}  # field -> the default under which it is left out of a run's key


def pretrained(cfg: PretrainConfig, store: RunStore | None = None, progress: bool = True) -> dict:
    """The stored pre-training run of ``cfg`` (computed first if missing), with its ``run_dir``. A pool that holds
    one of ``cfg.targets`` is refused before anything is stored (it may describe a pool, e.g. for domain distances,
    but never pre-trains a target's encoder)."""
    check_source_pool(cfg.sources, cfg.targets)
    store = store or RunStore()
    starts = starting_points(cfg)

    def compute(run_dir: Path) -> dict:
        start = [Path(pretrained(first, store, progress)["run_dir"]) for first in starts]
        return pretrain(cfg, run_dir, progress=progress, start=start)

    result = store.cached("pretrain", cfg.to_dict(), compute)
    return result | {"run_dir": str(store.path("pretrain", cfg.to_dict()))}


def encoder_for(cfg: AdaptConfig, store: RunStore, progress: bool = True) -> torch.nn.Module:
    if cfg.arm in PRETRAINED_ARMS:
        return load_encoder(cfg.pretrain, Path(pretrained(cfg.pretrain, store, progress)["run_dir"]))
    torch.manual_seed(cfg.seed)
    return backbone(cfg.backbone, cfg.stem, imagenet_weights=cfg.arm == "imagenet")


def minority_class(cfg: AdaptConfig) -> int | None:
    """The class the imbalance scenario cuts and minority recall scores: ``cfg.minority``, else the rarest
    class of the target's full train split (None for multi-label targets)."""
    if cfg.minority is not None:
        return cfg.minority
    train = load(cfg.target, "train", cfg.size)
    return None if train.labels.ndim == 2 else scenarios.minority(train, cfg)


def train_split(cfg: AdaptConfig) -> ImageSet:
    """The target's train split after the scenario (:mod:`medlib.scenarios`): the scenarios that choose images
    (imbalance, then label scarcity), then the size cap, then those that change labels (label noise)."""
    train = scenarios.apply(load(cfg.target, "train", cfg.size), cfg, "images")
    if cfg.max_train_images is not None and len(train) > cfg.max_train_images:
        fraction = cfg.max_train_images / len(train)
        train = train.subset(label_subset(train.labels, fraction, seed=cfg.seed))
    return scenarios.apply(train, cfg, "labels")


def _level(cfg, field: str):
    """``cfg``'s value of ``field``; an unset scenario shows as its unchanged level (label noise 0)."""
    value = getattr(cfg, field)
    return scenarios.BY_FIELD[field].unchanged if value is None and field in scenarios.BY_FIELD else value


def scenario_counts(configs, keys: Sequence[str]) -> pd.DataFrame:
    """Train images per class after each config's scenario (one row per ``keys`` value), e.g. the labelled subset
    of a label fraction or the resampled split of an imbalance ratio, as labelled after it; with label noise,
    ``flipped`` counts the labels it changed. The test split is untouched."""
    rows = []
    for cfg in configs:
        train = train_split(cfg)
        counts = train.class_counts()
        flipped = ({"flipped": int((train.labels != train_split(replace(cfg, label_noise=None)).labels).sum())}
                   if cfg.label_noise else {"flipped": 0} if "label_noise" in keys else {})
        rows.append({k: _level(cfg, k) for k in keys}
                    | {f"{i}: {c}": n for i, (c, n) in enumerate(zip(train.classes, counts))} | {"total": len(train)}
                    | flipped)
    return pd.DataFrame(rows).set_index(list(keys))


def run_adaptation(cfg: AdaptConfig, store: RunStore | None = None, progress: bool = True) -> dict:
    """The stored result of one adaptation run: test metrics, majority baseline, history, cost."""
    store = store or RunStore()

    def compute(run_dir: Path) -> dict:
        train, val, test = train_split(cfg), load(cfg.target, "val", cfg.size), load(cfg.target, "test", cfg.size)
        device = default_device()
        model = Classifier(encoder_for(cfg, store, progress), _n_outputs(cfg))
        out = adapt(model, cfg.protocol, train, val, test, cfg.epochs, cfg.seed, cfg.lrs, cfg.batch_size, device,
                    progress)
        if cfg.keep_model:
            save_torch(model.state_dict(), run_dir / "model.pt")
        y_true = test.labels.numpy()
        minority = minority_class(cfg)
        metrics = evaluate(y_true, out["test_scores"], test.task, minority)
        write_predictions(out.pop("test_scores"), run_dir, cfg.target, cfg.size, "test", metrics, run_dir.name)
        return out | {"test": metrics, "n_train": len(train), "train_counts": train.class_counts(),
                      "majority": majority_baseline(train.labels.numpy(), y_true, test.task,
                                                    test.n_classes, minority), "device": str(device),
                      "precision": precision(device)}

    return store.cached("adapt", cfg.to_dict(), compute)


def load_model(cfg: AdaptConfig, store: RunStore | None = None) -> Classifier:
    """The adapted model of a ``keep_model=True`` run (run first if missing), in eval mode on the CPU."""
    if not cfg.keep_model:
        raise ParameterError("load_model needs a config with keep_model=True")
    store = store or RunStore()
    run_adaptation(cfg, store)
    weights = store.path("adapt", cfg.to_dict()) / "model.pt"
    if not weights.exists():
        raise StoreError(f"{weights.parent}: the run's result is stored but not its model (model.pt), e.g. a run "
                         "imported from an archive, which carries no weights; delete that folder to compute it again")
    encoder = new_encoder(cfg.pretrain) if cfg.pretrain is not None else backbone(cfg.backbone, cfg.stem)
    model = Classifier(encoder, _n_outputs(cfg))
    model.load_state_dict(load_torch(weights))
    return model.eval()


def _n_outputs(cfg: AdaptConfig) -> int:
    test = load(cfg.target, "test", cfg.size)
    return test.labels.shape[1] if test.labels.ndim == 2 else test.n_classes


def run_grid(configs: list[AdaptConfig], store: RunStore | None = None, progress: bool = True) -> pd.DataFrame:
    """Run (or read from the store) every config; one row each with its scenario and test metrics.

    An ``imagenet`` run whose weights cannot be downloaded is kept as a row with a ``skipped`` note. ``run`` is
    the run's key in the store and ``pretrain_seed`` the seed of its pre-training (None without one).
    """
    store, rows = store or RunStore(), []
    for cfg in tqdm(configs, desc="runs", disable=not progress):
        row = {k: v for k, v in asdict(cfg).items() if k != "pretrain"} | {
            "run": store.path("adapt", cfg.to_dict()).name,
            "pretrain_seed": cfg.pretrain.seed if cfg.pretrain else None}
        problem = imagenet_weights_problem(cfg.backbone) if cfg.arm == "imagenet" else None
        if problem:
            rows.append(row | {"skipped": problem})
            continue
        result = run_adaptation(cfg, store, progress=False)
        rows.append(row | result["test"] | {f"majority_{k}": v for k, v in result["majority"].items()}
                    | {k: result.get(k) for k in ("val_auc", "C", "knn_auc", "lr", "best_epoch", "seconds", "n_train")}
                    | {"skipped": None})
    return pd.DataFrame(rows)


def summarize(df: pd.DataFrame, by: list[str], metrics=METRICS) -> pd.DataFrame:
    """Mean and standard deviation over seeds of each metric, one row per group (skipped runs left out; no rows
    when every run was skipped)."""
    done = completed(df)
    done = done.reindex(columns=list(dict.fromkeys([*done.columns, *metrics])))  # all skipped: no metric columns
    return seed_summary(done, by, metrics)


def test_predictions(df: pd.DataFrame, store: RunStore | None = None) -> dict:
    """``{run key: Prediction}`` of the stored (not skipped) runs of ``df`` (:func:`run_grid` rows): the test
    scores each run wrote (:func:`medlib.metrics.write_predictions`), the test labels, and the minority class."""
    store, out, tests = store or RunStore(), {}, {}
    done = completed(df)
    for row in done.itertuples():
        split = tests.setdefault((row.target, row.size), load(row.target, "test", row.size))
        scenario = types.SimpleNamespace(target=row.target, size=row.size, minority=row.minority)
        out[row.run] = Prediction(split.labels.numpy(), read_predictions(store.root / "adapt" / row.run),
                                  split.task, minority_class(scenario))
    return out


def with_scenario(cfg: AdaptConfig, **changes) -> AdaptConfig:
    return replace(cfg, **changes)
