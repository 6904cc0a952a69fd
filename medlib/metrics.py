"""Test metrics: MedMNIST's AUC and ACC (``medmnist.evaluator``, Yang et al. 2023) plus class-balanced ones."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from medmnist.evaluator import getACC, getAUC
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

from .data import file_name

METRICS = ("auc", "acc", "balanced_acc", "macro_f1", "minority_recall")


def predictions(y_score: np.ndarray, task: str) -> np.ndarray:
    """Predicted labels as MedMNIST's ACC takes them (threshold 0.5 for binary and multi-label)."""
    if task == "multi-label, binary-class":
        return (y_score > 0.5).astype(int)
    if task == "binary-class":
        return (y_score[:, -1] > 0.5).astype(int)
    return y_score.argmax(1)


def evaluate(y_true: np.ndarray, y_score: np.ndarray, task: str, minority: int | None = None) -> dict:
    """AUC and ACC exactly as ``medmnist.Evaluator``; balanced accuracy, macro-F1 and the recall of the
    ``minority`` class (default: the rarest class in ``y_true``) for single-label tasks."""
    y_true, y_score = np.asarray(y_true), np.asarray(y_score, dtype=np.float64)
    out = {"auc": float(getAUC(y_true, y_score, task)), "acc": float(getACC(y_true, y_score, task))}
    if task == "multi-label, binary-class":
        return out | {k: math.nan for k in METRICS[2:]}
    y_true = y_true.reshape(-1)
    y_pred = predictions(y_score, task)
    if minority is None:
        counts = np.bincount(y_true, minlength=y_score.shape[1])
        minority = int(np.argmin(np.where(counts > 0, counts, np.iinfo(np.int64).max)))
    labels = np.arange(y_score.shape[1])
    return out | {
        "balanced_acc": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "minority_recall": float(recall_score(y_true, y_pred, labels=[minority], average="macro", zero_division=0)),
    }


def majority_baseline(train_labels: np.ndarray, y_true: np.ndarray, task: str, n_classes: int,
                      minority: int | None = None) -> dict:
    """Metrics of a model that always predicts the train split's majority class (per label if multi-label)."""
    train_labels = np.asarray(train_labels)
    if task == "multi-label, binary-class":
        y_score = np.tile((train_labels.mean(0) > 0.5).astype(float), (len(y_true), 1))
    else:
        y_score = np.zeros((len(y_true), n_classes))
        y_score[:, np.bincount(train_labels.reshape(-1), minlength=n_classes).argmax()] = 1.0
    return evaluate(y_true, y_score, task, minority)


def write_predictions(y_score: np.ndarray, folder: Path, flag: str, size: int, split: str, metrics: dict,
                      run: str) -> Path:
    """A CSV named as ``medmnist.Evaluator`` names it, so ``python -m medmnist evaluate`` re-scores it."""
    stem = file_name(flag, size)[: -len(".npz")]
    path = Path(folder) / f"{stem}_{split}_[AUC]{metrics['auc']:.3f}_[ACC]{metrics['acc']:.3f}@{run}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(y_score).to_csv(path, header=None)
    return path


def read_predictions(folder: Path, split: str = "test") -> np.ndarray:
    """The scores :func:`write_predictions` wrote for ``split`` in ``folder`` (one run's folder: one such file)."""
    found = sorted(Path(folder).glob(f"*_{split}_[[]AUC[]]*.csv"))
    if len(found) != 1:
        raise FileNotFoundError(f"{folder}: expected one {split} prediction CSV, found {len(found)}")
    return pd.read_csv(found[0], header=None, index_col=0).to_numpy(dtype=np.float64)
