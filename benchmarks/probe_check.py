"""The old linear probe against the new one on the same frozen features (BreastMNIST, the quick profile's data).

Old probe (medlib before 2026-11-28, kept only here): a linear layer trained with Adam at 1e-3 on the raw
post-ReLU features, batch 128, no class weights, the learning rate x0.1 at 50 % and 75 % of the quick profile's
100 linear epochs (``OLD_EPOCHS``), the epoch with the best val AUC kept. New probe: :func:`medlib.adapt.linear_probe`
(standardised features, L2 logistic regression by L-BFGS with balanced class weights, C chosen on val AUC).
Encoders: a random ResNet-18 (the scratch arm) and the TL and SimCLR arms pre-trained on the quick profile's
source pool and recipe for ``--pretrain-epochs`` epochs (1 keeps this under a few CPU minutes; the quick profile
runs 10). Prints per encoder and probe: val and test AUC, test balanced accuracy, the fraction of test images
predicted as the train split's majority class, and the train cross-entropy of the kept head.

    MEDLIB_DATA=folder_of_npz MEDLIB_OFFLINE=1 MEDLIB_RUNS=/tmp/runs python -m benchmarks.probe_check
"""

import argparse
import copy
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from medlib.adapt import linear_probe
from medlib.compute import autocast, default_device, precision
from medlib.data import load
from medlib.experiment import AdaptConfig, encoder_for, train_split
from medlib.metrics import evaluate, predictions
from medlib.models import Classifier
from medlib.pretrain import features
from medlib.profiles import parameters
from medlib.store import RunStore
from medlib.study import pretrain_config


OLD_EPOCHS = 100  # the quick profile's linear-probe epochs before the probe fitted to convergence


def old_probe(f_train, y_train, f_val, y_val, epochs, seed, device, lr=1e-3, batch_size=128):
    """The probe before 2026-11-28: Adam on raw features, MedMNIST's step schedule, best val-AUC epoch kept."""
    torch.manual_seed(seed)
    head = torch.nn.Linear(f_train.shape[1], 2).to(device)
    g = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [int(0.5 * epochs), int(0.75 * epochs)], 0.1)
    best = (-1.0, 0, None)
    for epoch in range(epochs):
        order = torch.randperm(len(y_train), generator=g).to(device)
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            with autocast(device):
                loss = F.cross_entropy(head(f_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()
        with torch.no_grad():
            val_auc = evaluate(y_val.cpu().numpy(), head(f_val).softmax(1).cpu().numpy(), "binary-class")["auc"]
        if val_auc > best[0]:
            best = (val_auc, epoch + 1, copy.deepcopy(head.state_dict()))
    head.load_state_dict(best[2])
    return head, best[1]


def row(encoder, probe, head, f, splits, majority, **extra):
    with torch.no_grad():
        scores = {k: head(f[k]).softmax(1).cpu().numpy() for k in f}
        train_loss = F.cross_entropy(head(f["train"]), splits["train"].labels.to(f["train"].device)).item()
    test = evaluate(splits["test"].labels.numpy(), scores["test"], "binary-class")
    return {"encoder": encoder, "probe": probe,
            "val_auc": evaluate(splits["val"].labels.numpy(), scores["val"], "binary-class")["auc"],
            "test_auc": test["auc"], "test_balanced_acc": test["balanced_acc"],
            "test_pred_majority": float((predictions(scores["test"], "binary-class") == majority).mean()),
            "train_loss": train_loss} | extra


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0, device = time.perf_counter(), default_device()
    P = parameters(profile="quick", pretrain_epochs=args.pretrain_epochs)
    store, target = RunStore(), "breastmnist"
    cfg = AdaptConfig("scratch", target, "linear", args.seed, max_train_images=P.max_train_images)
    splits = {"train": train_split(cfg), "val": load(target, "val"), "test": load(target, "test")}
    majority = int(np.bincount(splits["train"].labels.numpy()).argmax())
    print(f"target {target}: train {len(splits['train'])} (majority class {majority}), val {len(splits['val'])}, "
          f"test {len(splits['test'])}; device {device}, precision {precision(device)}; old probe "
          f"{OLD_EPOCHS} epochs; pre-training {args.pretrain_epochs} epoch(s) on {P.pretrain_max_images} "
          f"images of {'+'.join(pretrain_config(P, 'tl', target).sources)}")
    rows = []
    for arm in ("scratch", "tl", "ssl-simclr"):
        pre = pretrain_config(P, arm, target) if arm != "scratch" else None
        encoder = encoder_for(AdaptConfig(arm, target, "linear", args.seed, pretrain=pre), store, progress=False)
        f = {k: features(encoder, s.images, device) for k, s in splits.items()}
        print(f"{arm}: mean feature {f['train'].mean().item():.3f}, mean per-feature s.d. "
              f"{f['train'].std(0).mean().item():.3f}")
        head, best_epoch = old_probe(f["train"], splits["train"].labels.to(device), f["val"],
                                     splits["val"].labels, OLD_EPOCHS, args.seed, device)
        rows.append(row(arm, "old: Adam, raw", head, f, splits, majority, best_epoch=best_epoch))
        model = Classifier(encoder, 2).to(device)
        new = linear_probe(model, splits["train"], splits["val"], splits["test"], device)
        rows.append(row(arm, "new: L-BFGS, std", model.head, f, splits, majority, C=new["C"],
                        iterations=new["iterations"], converged=new["converged"], knn_auc=new["knn_auc"]))
        assert abs(rows[-1]["train_loss"] - new["train_loss"]) < 1e-6  # the table scores the probe as medlib does
    pd.set_option("display.width", 200)
    print(pd.DataFrame(rows).round(3).to_string(index=False))
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
