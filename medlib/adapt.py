"""Adapting an encoder to a target: linear probe (frozen encoder) and full fine-tuning.

Linear probe: the frozen features are computed once, standardised with the train split's mean and s.d., and an
L2-regularised logistic regression with balanced class weights is fitted to convergence by L-BFGS
(scikit-learn; multinomial, binary, or one sigmoid per label for multi-label tasks), its strength C chosen on
the val AUC; the standard protocol of self-supervised evaluation (Kolesnikov et al., CVPR 2019; Chen et al.,
ICML 2020). A weighted k-nearest-neighbour classifier on the same features (Wu et al., CVPR 2018) is scored
beside it.
Fine-tuning follows MedMNIST v2's recipe (Yang et al., 2023): Adam, batch 128, lr x0.1 at 50 % and 75 % of
the epochs, the epoch with the best validation AUC kept; the learning rate is chosen on the val AUC from a grid
that is the same for every arm.
"""

from __future__ import annotations

import copy
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from tqdm.auto import tqdm

from .augment import to_float
from .data import ImageSet
from .metrics import evaluate
from .models import Classifier
from .compute import autocast
from .pretrain import features

PROTOCOLS = ("linear", "finetune")
MULTI_LABEL = "multi-label, binary-class"
PROBE_CS = tuple(10.0 ** k for k in range(-4, 3))  # the probe's inverse L2 strengths, chosen on val AUC
PROBE_MAX_ITER = 5000
KNN_K, KNN_T = 20, 0.1  # Wu et al. (2018), as lightly's benchmarks use them


def _loss(logits, labels, task):
    if task == MULTI_LABEL:
        return F.binary_cross_entropy_with_logits(logits, labels.float())
    return F.cross_entropy(logits, labels)


def _scores(logits, task) -> np.ndarray:
    probs = torch.sigmoid(logits) if task == MULTI_LABEL else logits.softmax(1)
    return probs.float().cpu().numpy()


@torch.no_grad()
def _predict(model: Classifier, images: torch.Tensor, device, batch_size: int = 1024) -> torch.Tensor:
    """Logits on uint8 images: the encoder's features in large batches, then the head in float32, exactly as
    the linear probe scores its frozen features."""
    return model.head(features(model.encoder, images, device, batch_size))


def batches(n: int, batch_size: int) -> list[slice]:
    """Consecutive slices of ``range(n)`` with ``batch_size`` items; a lone last item joins the batch before it,
    because BatchNorm cannot normalise a batch of one image in training mode."""
    bounds = list(range(0, n, batch_size)) + [n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        del bounds[-2]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def standardisation(f_train: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and s.d. of each feature over the train split (s.d. 1 for a constant feature, e.g. a dead ReLU)."""
    mean, std = f_train.mean(0), f_train.std(0)
    return mean, torch.where(std > 0, std, torch.ones_like(std))


def logistic_regression(z: np.ndarray, y: np.ndarray, task: str, C: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Weights (outputs x features), biases and L-BFGS iterations of an L2-regularised logistic regression with
    balanced class weights on standardised features ``z``: multinomial, or one sigmoid per label (multi-label).
    A binary fit is returned as two outputs, (0, w), whose softmax is the fitted sigmoid."""
    columns = list(y.T) if task == MULTI_LABEL else [y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # recorded as converged=False instead
        fits = [LogisticRegression(C=C, class_weight="balanced", solver="lbfgs", max_iter=PROBE_MAX_ITER).fit(z, t)
                for t in columns]
    weight, bias = np.concatenate([f.coef_ for f in fits]), np.concatenate([f.intercept_ for f in fits])
    if task != MULTI_LABEL and len(fits[0].classes_) == 2:
        weight, bias = np.vstack([np.zeros_like(weight), weight]), np.concatenate([[0.0], bias])
    return weight, bias, max(int(f.n_iter_.max()) for f in fits)


def knn_scores(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor, task: str, n_outputs: int,
               k: int = KNN_K, t: float = KNN_T) -> np.ndarray:
    """Weighted kNN scores (Wu et al., CVPR 2018; lightly's ``knn_predict`` weighting): the ``k`` bank features
    nearest in cosine similarity vote with weight exp(similarity / t); a class's score is its share of the
    votes (per label for multi-label: the weighted share of positive neighbours), which AUC can rank."""
    sim, idx = (F.normalize(queries, dim=1) @ F.normalize(bank, dim=1).T).topk(min(k, len(bank)), dim=1)
    weight = (sim / t).exp()
    votes = bank_labels.float() if task == MULTI_LABEL else F.one_hot(bank_labels, n_outputs).float()
    return ((weight.unsqueeze(2) * votes[idx]).sum(1) / weight.sum(1, keepdim=True)).cpu().numpy()


def fit_probe(z_train: np.ndarray, y_train: np.ndarray, z_val: np.ndarray, y_val: np.ndarray, task: str):
    """:func:`logistic_regression` at every C of ``PROBE_CS``; the weights, biases and record (C, val AUC and
    loss, iterations, the grid) of the C with the best val AUC, ties going to the lower val cross-entropy."""
    grid, best = [], None
    for C in PROBE_CS:
        weight, bias, iterations = logistic_regression(z_train, y_train, task, C)
        logits = torch.from_numpy(z_val @ weight.T + bias)
        record = {"C": C, "val_auc": evaluate(y_val, _scores(logits, task), task)["auc"],
                  "val_loss": _loss(logits, torch.from_numpy(y_val).long(), task).item(), "iterations": iterations}
        grid.append(record)
        rank = (round(record["val_auc"], 12), -record["val_loss"])  # AUCs equal but for rounding are ties
        if best is None or rank > best[3]:
            best = (weight, bias, record, rank)
    return best[0], best[1], best[2] | {"C_grid": grid, "converged": best[2]["iterations"] < PROBE_MAX_ITER}


def linear_probe(model: Classifier, train: ImageSet, val: ImageSet, test: ImageSet, device) -> dict:
    """Fit the probe on the frozen encoder's features (C chosen on the val AUC) and load it into ``model.head``,
    the standardisation folded into its weight and bias, so that the model scores images as the probe does.
    Every class must occur in ``train`` (:func:`medlib.samplers.label_subset` keeps at least one of each)."""
    task, n_outputs = train.task, model.head.out_features
    on_device = [features(model.encoder, s.images, device) for s in (train, val, test)]
    f_train, f_val, f_test = (f.cpu().double() for f in on_device)  # fitted in float64 on the CPU
    mean, std = standardisation(f_train)
    z_train, z_val, z_test = ((f - mean) / std for f in (f_train, f_val, f_test))
    weight, bias, probe = fit_probe(z_train.numpy(), train.labels.numpy(), z_val.numpy(), val.labels.numpy(), task)
    weight = torch.from_numpy(weight) / std
    with torch.no_grad():
        model.head.weight.copy_(weight)
        model.head.bias.copy_(torch.from_numpy(bias) - weight @ mean)
        train_loss = _loss(model.head(on_device[0]), train.labels.to(device), task).item()
        test_logits = model.head(on_device[2])
    knn = knn_scores(z_train.float(), train.labels, z_test.float(), task, n_outputs)
    return probe | {"train_loss": train_loss, "knn_auc": evaluate(test.labels.numpy(), knn, task)["auc"],
                    "test_scores": _scores(test_logits, task)}


def _finetune(model: Classifier, train: ImageSet, val: ImageSet, epochs: int, lr: float, batch_size: int,
              seed: int, device, progress: bool) -> dict:
    """One fine-tuning run at ``lr``: Adam with MedMNIST's step schedule, val AUC every epoch, best epoch kept."""
    task, x_train, y_train = train.task, train.images.to(device), train.labels.to(device)
    g = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    milestones = [m for m in (int(0.5 * epochs), int(0.75 * epochs)) if m > 0]  # none for 1 epoch
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    best, history, t0 = (-1.0, 0, None), [], time.perf_counter()
    val_true = val.labels.numpy()
    for epoch in tqdm(range(epochs), desc=f"fine-tune lr={lr:g}", disable=not progress, leave=False):
        model.train()
        order = torch.randperm(len(y_train), generator=g).to(device)
        loss_sum = torch.zeros((), device=device)
        for part in batches(len(order), batch_size):
            idx = order[part]
            with autocast(device):
                loss = _loss(model(to_float(x_train[idx])), y_train[idx], task)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(idx)
        scheduler.step()
        val_auc = evaluate(val_true, _scores(_predict(model, val.images, device), task), task)["auc"]
        history.append({"epoch": epoch + 1, "train_loss": (loss_sum / len(order)).item(), "val_auc": val_auc,
                        "seconds": time.perf_counter() - t0})
        if val_auc > best[0]:
            best = (val_auc, epoch + 1, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    return {"val_auc": best[0], "best_epoch": best[1], "history": history}


def adapt(model: Classifier, protocol: str, train: ImageSet, val: ImageSet, test: ImageSet, epochs: int,
          seed: int = 0, lrs: tuple[float, ...] = (1e-3,), batch_size: int = 128, device=None,
          progress: bool = True) -> dict:
    """Fit the probe (``linear``; see :func:`linear_probe`) or fine-tune the whole ``model`` (``finetune``) in
    place, once per learning rate in ``lrs`` from the same start, keeping the rate and epoch with the best val AUC.

    Returns the val AUC, the test scores and the wall time; the probe's C, its grid, train loss, iterations,
    convergence and the kNN test AUC, or fine-tuning's rate, its grid, best epoch and history (the probe's
    history is its one fit).
    """
    device = device or torch.device("cpu")
    torch.manual_seed(seed)
    model.head.reset_parameters()
    model.to(device)
    t0 = time.perf_counter()
    if protocol == "linear":
        out = linear_probe(model, train, val, test, device)
        out["history"] = [{"epoch": 1, "train_loss": out["train_loss"], "val_auc": out["val_auc"],
                           "seconds": time.perf_counter() - t0}]
        return out | {"seconds": time.perf_counter() - t0}
    start, grid, best = copy.deepcopy(model.state_dict()), [], None
    for lr in lrs:
        model.load_state_dict(start)
        run = _finetune(model, train, val, epochs, lr, batch_size, seed, device, progress)
        grid.append({"lr": lr, "val_auc": run["val_auc"], "best_epoch": run["best_epoch"]})
        if best is None or run["val_auc"] > best[0]["val_auc"]:
            best = (run | {"lr": lr}, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[1])
    return best[0] | {"lr_grid": grid, "seconds": time.perf_counter() - t0,
                      "test_scores": _scores(_predict(model, test.images, device), task=train.task)}


def probabilities(model: Classifier, images: torch.Tensor, task: str) -> np.ndarray:
    """Class probabilities of uint8 ``images`` on the model's device, exactly as an adaptation run scores its test
    split (softmax, or sigmoid for multi-label)."""
    return _scores(_predict(model, images, next(model.parameters()).device), task)
