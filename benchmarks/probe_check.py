"""The old linear probe against the new one on the same frozen features (BreastMNIST, the quick profile's data).

Old probe (medlib before 2026-11-28, kept only here): a linear layer trained with Adam at 1e-3 on the raw
post-ReLU features, batch 128, no class weights, the learning rate x0.1 at 50 % and 75 % of the quick profile's
100 linear epochs (``OLD_EPOCHS``), the epoch with the best val AUC kept. New probe: :func:`medlib.adapt.linear_probe`
(standardised features, L2 logistic regression by L-BFGS with balanced class weights, C chosen on val AUC).
Encoders: a random ResNet-18 (the scratch arm) and the TL and SimCLR arms pre-trained on the quick profile's
source pool and recipe for ``--pretrain-epochs`` epochs (1 keeps this under a few CPU minutes; the quick profile
runs 10). Prints per encoder and probe: val and test AUC, test balanced accuracy, the fraction of test images
predicted as the train split's majority class, and the train cross-entropy of the kept head; writes them as JSON
lines to ``--out`` as they come, and a PNG of the old and new probe's balanced accuracy and majority predictions.

    MEDLIB_DATA=folder_of_npz MEDLIB_OFFLINE=1 MEDLIB_RUNS=/tmp/runs python -m benchmarks.probe_check --out probe_check/
"""

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from benchmarks.budget_curve import output_options, rows_and_figure, save
from medlib.adapt import linear_probe
from medlib.compute import autocast, default_device, precision
from medlib.data import load
from medlib.experiment import AdaptConfig, encoder_for, train_split
from medlib.methods import ARM_LABELS
from medlib.metrics import evaluate, predictions
from medlib.models import Classifier
from medlib.pretrain import features
from medlib.profiles import parameters
from medlib.store import RunStore
from medlib.study import pretrain_config


OLD_EPOCHS = 100  # the quick profile's linear-probe epochs before the probe fitted to convergence
COMMON = ("target", "seed", "pretrain_epochs", "test_majority_share", "device", "precision")  # the same in every row


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


def check(pretrain_epochs: int, seed: int, out: Path, say=print) -> list[dict]:
    """Both probes on each encoder's frozen features; the rows, written to ``out/probe_check.jsonl`` as they come."""
    t0, device = time.perf_counter(), default_device()
    P = parameters(profile="quick", pretrain_epochs=pretrain_epochs)
    store, target = RunStore(), "breastmnist"
    cfg = AdaptConfig("scratch", target, "linear", seed, max_train_images=P.max_train_images)
    splits = {"train": train_split(cfg), "val": load(target, "val"), "test": load(target, "test")}
    majority = int(np.bincount(splits["train"].labels.numpy()).argmax())
    share = float((splits["test"].labels.numpy() == majority).mean())
    sources = pretrain_config(P, "tl", target).sources
    say(f"target {target}: train {len(splits['train'])} (majority class {majority}), val {len(splits['val'])}, "
        f"test {len(splits['test'])}; device {device}, precision {precision(device)}; old probe {OLD_EPOCHS} "
        f"epochs; pre-training {pretrain_epochs} epoch(s) on {P.pretrain_max_images} images of {'+'.join(sources)}")
    common = dict(zip(COMMON, (target, seed, pretrain_epochs, share, str(device), precision(device))))
    rows = []
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "probe_check.jsonl", "w") as lines:
        for arm in ("scratch", "tl", "ssl-simclr"):
            pre = pretrain_config(P, arm, target) if arm != "scratch" else None
            encoder = encoder_for(AdaptConfig(arm, target, "linear", seed, pretrain=pre), store, progress=False)
            f = {k: features(encoder, s.images, device) for k, s in splits.items()}
            say(f"{arm}: mean feature {f['train'].mean().item():.3f}, mean per-feature s.d. "
                f"{f['train'].std(0).mean().item():.3f}")
            head, best_epoch = old_probe(f["train"], splits["train"].labels.to(device), f["val"],
                                         splits["val"].labels, OLD_EPOCHS, seed, device)
            new_rows = [row(arm, "old: Adam, raw", head, f, splits, majority, best_epoch=best_epoch)]
            model = Classifier(encoder, 2).to(device)
            new = linear_probe(model, splits["train"], splits["val"], splits["test"], device)
            new_rows.append(row(arm, "new: L-BFGS, std", model.head, f, splits, majority, C=new["C"],
                                iterations=new["iterations"], converged=new["converged"], knn_auc=new["knn_auc"]))
            assert abs(new_rows[-1]["train_loss"] - new["train_loss"]) < 1e-6  # scored as medlib scores the probe
            rows += [r | common for r in new_rows]
            lines.writelines(json.dumps(r) + "\n" for r in rows[-2:])
            lines.flush()
    say(f"total {time.perf_counter() - t0:.0f} s")
    return rows


def plot(rows: list[dict], path: Path) -> None:
    """Per encoder, the old and new probe's test balanced accuracy and share of test images predicted as the train
    majority class, beside the share of the test images that are of that class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    encoders = list(dict.fromkeys(r["encoder"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for i, probe in enumerate(dict.fromkeys(r["probe"] for r in rows)):
        mine = {r["encoder"]: r for r in rows if r["probe"] == probe}
        for ax, key in zip(axes, ("test_balanced_acc", "test_pred_majority")):
            ax.bar(np.arange(len(encoders)) + 0.4 * (i - 0.5), [mine[e][key] for e in encoders], 0.4, label=probe)
    axes[0].axhline(0.5, ls=":", color="k", label="always the majority class")
    axes[1].axhline(rows[0]["test_majority_share"], ls="--", color="k", label="test images of that class")
    axes[0].set(ylabel="test balanced accuracy", ylim=(0.4, 0.9), title=f"{rows[0]['target']} test split, seed {rows[0]['seed']}")
    axes[1].set(ylabel="test images predicted as the train majority", ylim=(0.5, 1.3),
                title=f"encoders pre-trained {rows[0]['pretrain_epochs']} epoch(s)")
    for ax in axes:
        ax.set_xticks(range(len(encoders)), [ARM_LABELS[e] for e in encoders])
        ax.legend(loc="upper left")  # above the bars
    axes[1].set_yticks(np.arange(0.5, 1.01, 0.1))
    save(fig, axes, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pretrain-epochs", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    output_options(p, "probe_check")
    args = p.parse_args(argv)
    rows = rows_and_figure(p, args, "probe_check", lambda: check(args.pretrain_epochs, args.seed, args.out), plot)
    pd.set_option("display.width", 200)
    print(pd.DataFrame(rows).drop(columns=list(COMMON)).round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
