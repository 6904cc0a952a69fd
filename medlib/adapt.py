"""Adapting an encoder to a target: linear probe (frozen encoder) and full fine-tuning.

Fine-tuning follows MedMNIST v2's recipe (Yang et al., 2023): Adam, lr 1e-3, batch 128, lr x0.1 at 50 %
and 75 % of the epochs, and the epoch with the best validation AUC is kept. The linear probe computes the
frozen features once and trains only the linear layer on them.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .augment import to_float
from .data import ImageSet
from .metrics import evaluate
from .models import Classifier
from .compute import autocast
from .pretrain import features

PROTOCOLS = ("linear", "finetune")


def _loss(logits, labels, task):
    if task == "multi-label, binary-class":
        return F.binary_cross_entropy_with_logits(logits, labels.float())
    return F.cross_entropy(logits, labels)


def _scores(logits, task) -> np.ndarray:
    probs = torch.sigmoid(logits) if task == "multi-label, binary-class" else logits.softmax(1)
    return probs.float().cpu().numpy()


@torch.no_grad()
def _predict(model: Classifier, images: torch.Tensor, device, batch_size: int = 1024) -> torch.Tensor:
    """Logits on uint8 images: the encoder's features in large batches, then the head in float32, exactly as
    the linear probe scores its frozen features."""
    return model.head(features(model.encoder, images, device, batch_size))


def _fit(model, params, inputs, labels, val_inputs, val_labels, task, epochs, lr, batch_size, g, device,
         forward, desc, progress):
    """The shared loop: Adam with MedMNIST's step schedule, val AUC every epoch, best epoch kept."""
    optimizer = torch.optim.Adam(params, lr=lr)
    milestones = [m for m in (int(0.5 * epochs), int(0.75 * epochs)) if m > 0]  # none for 1 epoch
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    best, history, t0 = (-1.0, 0, None), [], time.perf_counter()
    val_true = val_labels.cpu().numpy()
    for epoch in tqdm(range(epochs), desc=desc, disable=not progress, leave=False):
        model.train()
        order = torch.randperm(len(labels), generator=g).to(device)
        loss_sum = torch.zeros((), device=device)
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            with autocast(device):
                loss = _loss(forward(inputs, idx), labels[idx], task)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(idx)
        scheduler.step()
        val_auc = evaluate(val_true, _scores(val_inputs(), task), task)["auc"]
        history.append({"epoch": epoch + 1, "train_loss": (loss_sum / len(order)).item(), "val_auc": val_auc,
                        "seconds": time.perf_counter() - t0})
        if val_auc > best[0]:
            best = (val_auc, epoch + 1, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    return best[0], best[1], history


def adapt(model: Classifier, protocol: str, train: ImageSet, val: ImageSet, test: ImageSet, epochs: int,
          seed: int = 0, lr: float = 1e-3, batch_size: int = 128, device=None, progress: bool = True) -> dict:
    """Train the head (``linear``) or the whole ``model`` (``finetune``) in place; keep its best-val-AUC epoch.

    Returns the best val AUC and epoch, the per-epoch history, the wall time and the test scores.
    """
    device = device or torch.device("cpu")
    task, encoder = train.task, model.encoder
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model.head.reset_parameters()
    model.to(device)
    y_train = train.labels.to(device)
    t0 = time.perf_counter()
    if protocol == "linear":
        f_train, f_val, f_test = (features(encoder, s.images, device) for s in (train, val, test))
        head = model.head
        result = _fit(head, head.parameters(), f_train, y_train, lambda: head(f_val).detach(), val.labels, task,
                      epochs, lr, batch_size, g, device, lambda x, idx: head(x[idx]), "linear probe", progress)
        test_logits = head(f_test).detach()
    else:
        x_train = train.images.to(device)
        result = _fit(model, model.parameters(), x_train, y_train, lambda: _predict(model, val.images, device),
                      val.labels, task, epochs, lr, batch_size, g, device,
                      lambda x, idx: model(to_float(x[idx])), "fine-tune", progress)
        test_logits = _predict(model, test.images, device)
    val_auc, best_epoch, history = result
    return {"val_auc": val_auc, "best_epoch": best_epoch, "history": history,
            "seconds": time.perf_counter() - t0, "test_scores": _scores(test_logits, task)}


def probabilities(model: Classifier, images: torch.Tensor, task: str) -> np.ndarray:
    """Class probabilities of uint8 ``images`` on the model's device, exactly as an adaptation run scores its test
    split (softmax, or sigmoid for multi-label)."""
    return _scores(_predict(model, images, next(model.parameters()).device), task)
