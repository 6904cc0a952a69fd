"""Pre-training on a source pool with one of the registered methods (:mod:`medlib.methods`).

Every arm sees exactly the same source images. Views are drawn in batches on the training device
(:mod:`medlib.augment`), a step runs as :class:`medlib.step.TrainStep` (a CUDA graph on a GPU); the loop
checkpoints every epoch, resumes from the last complete checkpoint, and randomness is derived from
``(seed, epoch)`` so that a resumed run ends with the same weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from lightly.utils.benchmarking import knn_predict
from lightly.utils.scheduler import cosine_schedule
from torch import nn
from tqdm.auto import tqdm

from .augment import to_float
from .compute import autocast, default_device, precision
from .data import SIZES, ImageSet, check_sources, source_pool
from .methods import BYOL, PRETRAINED_ARMS, Method, SimCLR, get
from .models import BACKBONES, STEMS, backbone
from .step import TrainStep, sgd
from .store import CorruptFile, key_fields, load_torch, save_torch
from .validation import check_choice, check_number

__all__ = ["BYOL", "PRETRAINED_ARMS", "Method", "NonFiniteLoss", "PretrainConfig", "SimCLR", "build_method",
           "features", "knn_accuracy", "lineage", "load_encoder", "new_encoder", "pools", "pretrain",
           "starting_points"]  # the methods stay importable from here


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that changes a pre-trained encoder; its hash keys the run store."""

    arm: str
    sources: tuple[str, ...]
    targets: tuple[str, ...] = ()
    size: int = 28
    backbone: str = "resnet18"
    stem: str = "imagenet"
    epochs: int = 10
    batch_size: int = 256
    lr: float | None = None  # None: the method's own (``Method.lr``), x batch / 256
    weight_decay: float = 5e-4
    max_images: int | None = None
    seed: int = 0
    recipe: str | None = None  # None: the method's (``Method.recipe``)
    start_lrs: tuple[tuple[str, float], ...] = ()  # the rates of the pre-trainings it starts from, by arm (those
    # not named: their method's own); kept only for arms it starts from, so a random start never carries any
    options: tuple[tuple[str, float], ...] = ()  # the method's options (``Method.options``) that differ from their
    # defaults, e.g. (("temperature", 0.2),)
    start_options: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()  # the same for the pre-trainings it
    # starts from, by arm; kept, like ``start_lrs``, only for arms it starts from and only where not the defaults

    def __post_init__(self):
        check_choice("arm", self.arm, PRETRAINED_ARMS)
        sources, targets = check_sources(self.sources, self.targets)
        object.__setattr__(self, "sources", sources)
        object.__setattr__(self, "targets", targets)
        check_choice("size", self.size, SIZES)
        check_choice("backbone", self.backbone, BACKBONES)
        check_choice("stem", self.stem, STEMS)
        check_number("epochs", self.epochs, low=1, integer=True)
        check_number("batch_size", self.batch_size, low=2, integer=True)
        if self.lr is None:
            object.__setattr__(self, "lr", get(self.arm).lr)
        if self.recipe is None:
            object.__setattr__(self, "recipe", get(self.arm).recipe)
        check_choice("recipe", self.recipe, (get(self.arm).recipe,))
        check_number("lr", self.lr, low=0, low_open=True)
        rates = dict(self.start_lrs)
        for arm, rate in rates.items():
            check_choice("start_lrs", arm, PRETRAINED_ARMS)
            check_number(f"start_lrs[{arm}]", rate, low=0, low_open=True)
        earlier = _earlier_arms(self.arm)
        object.__setattr__(self, "start_lrs", tuple(sorted((a, float(r)) for a, r in rates.items() if a in earlier)))
        object.__setattr__(self, "options", get(self.arm).set_options(get(self.arm).check_options(
            "options", dict(self.options))))
        starts = {}
        for arm, options in dict(self.start_options).items():
            check_choice("start_options", arm, PRETRAINED_ARMS)
            starts[arm] = get(arm).set_options(get(arm).check_options(f"start_options[{arm!r}]", dict(options)))
        object.__setattr__(self, "start_options",
                           tuple(sorted((a, o) for a, o in starts.items() if a in earlier and o)))
        check_number("weight_decay", self.weight_decay, low=0)
        if self.max_images is not None:
            check_number("max_images", self.max_images, low=2, integer=True)
        check_number("seed", self.seed, low=0, integer=True)

    def to_dict(self) -> dict:
        """The config as stored and hashed (:func:`medlib.store.key_fields`: ``start_lrs``, ``options`` and
        ``start_options`` left out while empty)."""
        return key_fields(self, {"start_lrs": (), "options": (), "start_options": ()})


def _earlier_arms(arm: str) -> set[str]:
    """The arms whose pre-trainings ``arm``'s encoder goes through before its own (``Method.starts_from``, all
    the way back)."""
    out = set()
    for first in get(arm).starts_from:
        out |= {first} | _earlier_arms(first)
    return out


@torch.no_grad()
def features(encoder: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 1024) -> torch.Tensor:
    """Encoder features of uint8 images in large batches (eval mode), as float32 on ``device``."""
    was_training = encoder.training
    encoder.eval()
    out = []
    for i in range(0, len(images), batch_size):
        with autocast(device):
            out.append(encoder(to_float(images[i:i + batch_size].to(device))).float())
    encoder.train(was_training)
    return torch.cat(out)


def knn_accuracy(encoder, bank: ImageSet, queries: ImageSet, device, k: int = 20) -> float:
    """Weighted kNN accuracy (Wu et al., CVPR 2018) of held-out source images against the pool."""
    f_bank = F.normalize(features(encoder, bank.images, device), dim=1)
    f_query = F.normalize(features(encoder, queries.images, device), dim=1)
    pred = knn_predict(f_query, f_bank.T, bank.labels.to(device), bank.n_classes, knn_k=min(k, len(bank)))
    return (pred[:, 0].cpu() == queries.labels).float().mean().item()


def build_method(cfg: PretrainConfig, class_counts: torch.Tensor) -> Method:
    """``cfg.arm``'s method on a fresh encoder for a pool with ``class_counts`` images per label, its initial
    weights drawn from ``cfg.seed``."""
    torch.manual_seed(cfg.seed)
    return get(cfg.arm).create(new_encoder(cfg), class_counts, **dict(cfg.options))


def new_encoder(cfg: PretrainConfig) -> nn.Module:
    """A freshly initialised encoder of ``cfg.arm``'s kind (``Method.build_encoder``) on ``cfg``'s backbone."""
    return get(cfg.arm).build_encoder(lambda: backbone(cfg.backbone, cfg.stem))


def pools(cfg: PretrainConfig, knn_images: int = 2000) -> tuple[ImageSet, ImageSet, ImageSet]:
    """(pool, kNN bank, kNN queries): the source train pool, a seeded subset of it, held-out source val images."""
    pool = source_pool(cfg.sources, cfg.size, cfg.targets, "train", cfg.max_images, cfg.seed)
    held_out = source_pool(cfg.sources, cfg.size, cfg.targets, "val", knn_images // 2, cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    bank = pool.subset(torch.randperm(len(pool), generator=g)[:knn_images])
    return pool, bank, held_out


def starting_points(cfg: PretrainConfig) -> tuple[PretrainConfig, ...]:
    """The pre-trainings whose encoders ``cfg``'s method starts from (``Method.starts_from``: the same pool,
    epochs, batch and seed, each with its own method's recipe, at its rate and options in ``cfg.start_lrs`` and
    ``cfg.start_options`` or else its method's own); empty for a random encoder."""
    rates, options = dict(cfg.start_lrs), dict(cfg.start_options)
    return tuple(replace(cfg, arm=arm, lr=rates.get(arm), recipe=None, options=options.get(arm, ()))
                 for arm in get(cfg.arm).starts_from)


def lineage(cfg: PretrainConfig) -> list[PretrainConfig]:
    """Every distinct pre-training ``cfg``'s encoder went through: ``cfg`` first, then its starting points'
    lineages (what a compute-matched comparison adds up)."""
    out = [cfg]
    for first in starting_points(cfg):
        out += [c for c in lineage(first) if c not in out]
    return out


def pretrain(cfg: PretrainConfig, run_dir: Path, device: torch.device | None = None, progress: bool = True,
             start: Sequence[Path] = ()) -> dict:
    """Pre-train the encoder of ``cfg`` into ``run_dir/encoder.pt``, from the encoder weights in ``start`` (the
    run directories of :func:`starting_points`, in order); return the run's history and cost. A method that does
    not train (``Method.trains``) stores its starting encoder as it is, with no epochs."""
    device = device or default_device()
    run_dir = Path(run_dir)
    pool, bank, held_out = pools(cfg)
    method = build_method(cfg, torch.bincount(pool.labels, minlength=pool.n_classes))
    method.start([load_torch(Path(d) / "encoder.pt") for d in start])
    method = method.to(device)
    bs = min(cfg.batch_size, len(pool))
    steps = len(pool) // bs
    history = _train(cfg, method, pool, bank, held_out, bs, steps, run_dir, device, progress) if method.trains else []
    save_torch(method.encoder.state_dict(), run_dir / "encoder.pt")
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)
    return {"history": history, "n_images": len(pool), "classes": list(pool.classes), "dropped": pool.dropped,
            "seconds": sum(h["seconds"] for h in history), "device": str(device), "precision": precision(device),
            "images_per_s": steps * bs * len(history) / max(1e-9, sum(h["seconds"] for h in history))}


def _train(cfg: PretrainConfig, method: Method, pool: ImageSet, bank: ImageSet, held_out: ImageSet, bs: int,
           steps: int, run_dir: Path, device: torch.device, progress: bool) -> list[dict]:
    """The epochs of ``cfg``'s pre-training (``steps`` batches of ``bs`` images each), resumed from
    ``run_dir/checkpoint.pt``; their history."""
    lr = cfg.lr * bs / 256
    optimizer = sgd(method, lr, cfg.weight_decay)
    start, history = _resume(run_dir / "checkpoint.pt", method, optimizer)
    images, labels = pool.images.to(device), pool.labels.to(device)
    g = torch.Generator(device)
    idx = torch.empty(bs, dtype=torch.long, device=device)  # the batch's indices, read by the (captured) step
    train_step = TrainStep(method, optimizer, lambda: method.loss(images[idx], labels[idx], g), generators=[g])
    total = steps * cfg.epochs
    bar = tqdm(total=total, initial=start * steps, desc=f"pretrain {cfg.arm}", disable=not progress, unit="step")
    try:  # the bar is closed before an error or interrupt is reported
        for epoch in range(start, cfg.epochs):
            g.manual_seed(cfg.seed * 100_003 + epoch)
            order = torch.randperm(len(pool), generator=g, device=device)
            method.train()
            loss_sum, t0 = torch.zeros((), device=device), time.perf_counter()
            for i in range(steps):
                step = epoch * steps + i
                idx.copy_(order[i * bs:(i + 1) * bs])
                loss = train_step(cosine_schedule(step, total, lr, 0.0), method.target_weight(step, total))
                loss_sum += loss
                if progress and (i % 10 == 9 or i == steps - 1):
                    bar.update(10 if i % 10 == 9 else (i % 10) + 1)
                    bar.set_postfix(loss=f"{loss.item():.3f}", img_s=f"{(i + 1) * bs / (time.perf_counter() - t0):.0f}")
            epoch_loss = (loss_sum / steps).item()
            seconds = time.perf_counter() - t0
            if not math.isfinite(epoch_loss):
                kept = (f"the last good checkpoint (epoch {epoch}, {run_dir / 'checkpoint.pt'}) is kept" if epoch
                        else "no checkpoint had been written yet")
                raise NonFiniteLoss(f"{cfg.arm} pre-training loss became {epoch_loss} in epoch {epoch + 1}; "
                                    f"{kept}; lower lr={cfg.lr}?")
            history.append({"epoch": epoch + 1, "loss": epoch_loss, "seconds": seconds,
                            "images_per_s": steps * bs / seconds,
                            "knn_acc": knn_accuracy(method.encoder, bank, held_out, device)})
            save_torch({"epoch": epoch + 1, "method": method.state_dict(), "optimizer": optimizer.state_dict(),
                        "history": history}, run_dir / "checkpoint.pt")
    finally:
        bar.close()
    return history


def _resume(path: Path, method: nn.Module, optimizer) -> tuple[int, list]:
    """Load the last complete checkpoint; a damaged one is reported, deleted and never loaded."""
    if not path.exists():
        return 0, []
    try:
        state = load_torch(path)
        method.load_state_dict(state["method"])
        optimizer.load_state_dict(state["optimizer"])
        return state["epoch"], state["history"]
    except (CorruptFile, KeyError, RuntimeError) as e:
        print(f"checkpoint {path} is damaged ({e}); starting this pre-training again")
        path.unlink()
        return 0, []


def load_encoder(cfg: PretrainConfig, run_dir: Path) -> nn.Module:
    encoder = new_encoder(cfg)
    encoder.load_state_dict(load_torch(Path(run_dir) / "encoder.pt"))
    return encoder
