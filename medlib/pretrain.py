"""Pre-training on a source pool: supervised (the transfer-learning arm) and self-supervised (SimCLR, BYOL).

Every arm sees exactly the same source images. Views are drawn in batches on the training device
(:mod:`medlib.augment`), a step runs as :class:`medlib.step.TrainStep` (a CUDA graph on a GPU); the loop
checkpoints every epoch, resumes from the last complete checkpoint, and randomness is derived from
``(seed, epoch)`` so that a resumed run ends with the same weights.
SimCLR: Chen et al., ICML 2020. BYOL: Grill et al., NeurIPS 2020. BYOL's loss, heads and schedules come from
lightly (Susmelj et al., 2020); SimCLR's NT-Xent is lightly's, restated without host synchronisation
(:mod:`medlib.losses`).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from lightly.loss import NegativeCosineSimilarity
from lightly.models.utils import deactivate_requires_grad
from lightly.utils.benchmarking import knn_predict
from lightly.utils.scheduler import cosine_schedule
from torch import nn
from tqdm.auto import tqdm

from .augment import BYOL_VIEWS, SIMCLR_VIEW, SUPERVISED_VIEW, to_float
from .compute import autocast, default_device, precision
from .data import SIZES, ImageSet, check_sources, source_pool
from .losses import NTXentLoss
from .models import BACKBONES, STEMS, backbone, byol_heads, simclr_head
from .step import TrainStep, sgd
from .store import CorruptFile, load_torch, save_torch
from .validation import check_choice, check_number

PRETRAINED_ARMS = ("tl", "ssl-simclr", "ssl-byol")


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
    lr: float = 0.06
    weight_decay: float = 5e-4
    max_images: int | None = None
    seed: int = 0

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
        check_number("lr", self.lr, low=0, low_open=True)
        check_number("weight_decay", self.weight_decay, low=0)
        if self.max_images is not None:
            check_number("max_images", self.max_images, low=2, integer=True)
        check_number("seed", self.seed, low=0, integer=True)

    def to_dict(self) -> dict:
        return asdict(self)


class Method(nn.Module):
    """A pre-training method: ``loss`` of a uint8 batch is ``view_loss`` of the ``views`` it draws; methods with a
    momentum target network (BYOL) also move it after each step (``target_weight``, ``update_targets``)."""

    def views(self, images: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def view_loss(self, views: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, images, labels, g):
        return self.view_loss(self.views(images, g), labels)

    def target_weight(self, step: int, total: int) -> float:
        return 0.0

    def update_targets(self, weight: float | torch.Tensor) -> None:
        pass


class Supervised(Method):
    """Cross-entropy over the pool's union label space: the transfer-learning (TL) arm."""

    def __init__(self, encoder: nn.Module, n_classes: int):
        super().__init__()
        self.encoder, self.head = encoder, nn.Linear(encoder.feature_dim, n_classes)

    def views(self, images, g):
        return SUPERVISED_VIEW(images, g)

    def view_loss(self, views, labels):
        return F.cross_entropy(self.head(self.encoder(views)), labels)


class SimCLR(Method):
    """NT-Xent between two views of each image (Chen et al., ICML 2020)."""

    def __init__(self, encoder: nn.Module, temperature: float = 0.5):
        super().__init__()
        self.encoder, self.projection = encoder, simclr_head(encoder.feature_dim)
        self.criterion = NTXentLoss(temperature=temperature)

    def views(self, images, g):
        """Two views of every image (rows i and n + i), drawn in one batched call: half the kernels of two."""
        return SIMCLR_VIEW(images.repeat(2, 1, 1, 1), g)

    def view_loss(self, views, labels=None):
        z0, z1 = self.projection(self.encoder(views)).chunk(2)
        return self.criterion(z0, z1)


class BYOL(Method):
    """An online network predicts a momentum target network's projection (Grill et al., NeurIPS 2020)."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.projection, self.prediction = byol_heads(encoder.feature_dim)
        self.encoder_momentum = copy.deepcopy(encoder)
        self.projection_momentum = copy.deepcopy(self.projection)
        deactivate_requires_grad(self.encoder_momentum)
        deactivate_requires_grad(self.projection_momentum)
        self.criterion = NegativeCosineSimilarity()

    def views(self, images, g):
        return torch.cat([BYOL_VIEWS[0](images, g), BYOL_VIEWS[1](images, g)])

    def view_loss(self, views, labels=None):
        p0, p1 = self.prediction(self.projection(self.encoder(views))).chunk(2)
        with torch.no_grad():
            z0, z1 = self.projection_momentum(self.encoder_momentum(views)).chunk(2)
        return 0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0))

    def target_weight(self, step, total):
        """1 - m, the momentum m rising from 0.99 to 1 on lightly's cosine schedule."""
        return 1.0 - cosine_schedule(step, total, 0.99, 1.0)

    @torch.no_grad()
    def update_targets(self, weight):
        """Target <- target + w * (online - target), w = 1 - m: lightly's ``update_momentum`` as multi-tensor
        operations instead of three kernels per parameter; one lerp for a number ``w``, three operations for a
        device tensor (which a captured step reads anew at every replay)."""
        targets = [*self.encoder_momentum.parameters(), *self.projection_momentum.parameters()]
        online = [*self.encoder.parameters(), *self.projection.parameters()]
        if not isinstance(weight, torch.Tensor):
            torch._foreach_lerp_(targets, online, weight)
            return
        delta = torch._foreach_sub(online, targets)
        torch._foreach_mul_(delta, weight)
        torch._foreach_add_(targets, delta)


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


def build_method(cfg: PretrainConfig, n_classes: int) -> Method:
    torch.manual_seed(cfg.seed)
    encoder = backbone(cfg.backbone, cfg.stem)
    if cfg.arm == "tl":
        return Supervised(encoder, n_classes)
    return SimCLR(encoder) if cfg.arm == "ssl-simclr" else BYOL(encoder)


def pools(cfg: PretrainConfig, knn_images: int = 2000) -> tuple[ImageSet, ImageSet, ImageSet]:
    """(pool, kNN bank, kNN queries): the source train pool, a seeded subset of it, held-out source val images."""
    pool = source_pool(cfg.sources, cfg.size, cfg.targets, "train", cfg.max_images, cfg.seed)
    held_out = source_pool(cfg.sources, cfg.size, cfg.targets, "val", knn_images // 2, cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    bank = pool.subset(torch.randperm(len(pool), generator=g)[:knn_images])
    return pool, bank, held_out


def pretrain(cfg: PretrainConfig, run_dir: Path, device: torch.device | None = None, progress: bool = True) -> dict:
    """Pre-train the encoder of ``cfg`` into ``run_dir/encoder.pt``; return the run's history and cost."""
    device = device or default_device()
    run_dir = Path(run_dir)
    pool, bank, held_out = pools(cfg)
    method = build_method(cfg, pool.n_classes).to(device)
    bs = min(cfg.batch_size, len(pool))
    lr = cfg.lr * bs / 256
    optimizer = sgd(method, lr, cfg.weight_decay)
    start, history = _resume(run_dir / "checkpoint.pt", method, optimizer)
    images, labels = pool.images.to(device), pool.labels.to(device)
    g = torch.Generator(device)
    idx = torch.empty(bs, dtype=torch.long, device=device)  # the batch's indices, read by the (captured) step
    train_step = TrainStep(method, optimizer, lambda: method.loss(images[idx], labels[idx], g), generators=[g])
    steps = len(pool) // bs
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
    save_torch(method.encoder.state_dict(), run_dir / "encoder.pt")
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)
    return {"history": history, "n_images": len(pool), "classes": list(pool.classes), "dropped": pool.dropped,
            "seconds": sum(h["seconds"] for h in history), "device": str(device), "precision": precision(device),
            "images_per_s": steps * bs * len(history) / max(1e-9, sum(h["seconds"] for h in history))}


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
    encoder = backbone(cfg.backbone, cfg.stem)
    encoder.load_state_dict(load_torch(Path(run_dir) / "encoder.pt"))
    return encoder
