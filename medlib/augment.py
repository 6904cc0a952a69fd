"""Augmented views drawn in batches on the training device, with per-sample random parameters.

The SimCLR recipe (Chen et al., ICML 2020): random resized crop, horizontal flip, colour jitter and random
grey; BYOL (Grill et al., NeurIPS 2020) adds solarisation to its second view. Most MedMNIST images are grey,
on which saturation and grey conversion do nothing, so the self-supervised views add a random gamma (an
intensity curve, as in medical-imaging augmentation pipelines such as nnU-Net's) to the jitter. Gaussian blur is left out at
MedMNIST's small sizes, as SimCLR does on CIFAR-10. One ``grid_sample`` call crops, resizes and flips a whole
batch, and two batched 3 x 3 colour products do the jitter, grey and normalisation, so no image ever goes
through PIL and the views cost a few per cent of a ResNet-18 step (``python -m benchmarks.throughput``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

MEAN, STD = 0.5, 0.5  # MedMNIST v2's normalisation, applied to all three channels
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights, as PIL's and torchvision's grey conversion


def to_float(images: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """uint8 ``N x C x H x W`` -> normalised float with 3 channels (grey replicated)."""
    x = images.to(dtype).div_(255)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return ((x - MEAN) / STD).contiguous(memory_format=torch.channels_last)


def _uniform(u: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Uniform in [low, high) from uniform [0, 1) draws ``u``."""
    return u * (high - low) + low


@lru_cache(maxsize=None)
def _colour_constants(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Luma weights and the 3 x 3 identity on ``device``, made once (no host-to-device copy per batch)."""
    return torch.tensor(LUMA, device=device), torch.eye(3, device=device)


@dataclass(frozen=True)
class ViewAugment:
    """One family of random views; calling it maps a uint8 batch to normalised float views.

    Brightness, contrast and saturation are each linear in the pixel's colour, so the jitter of a sample is one
    3 x 3 colour matrix plus an offset, applied to the whole batch in one batched product, then clamped; grey
    conversion and normalisation are a second product. Random numbers are drawn in one call, a row per parameter
    in the order of the step-by-step recipe (crop, flip, jitter, grey, solarise; on the CPU the same numbers as a
    call per parameter), so views equal it up to float rounding (~1e-6).
    """

    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = 0.5
    jitter: float = 0.4  # brightness, contrast and saturation strength
    jitter_p: float = 0.8
    gamma: float = 0.0  # with the jitter: x -> x ** g, log g uniform in [-log(1 + gamma), log(1 + gamma)]
    grey_p: float = 0.2
    solarize_p: float = 0.0

    @property
    def draws(self) -> int:
        """Random numbers per sample: crop area, ratio, centre x and y, flip; jitter on, b, c, s, gamma; grey;
        solarise."""
        return 5 + (self.jitter > 0) * (4 + (self.gamma > 0)) + (self.grey_p > 0) + (self.solarize_p > 0)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        n, dev = images.shape[0], images.device
        u = iter(torch.rand(self.draws, n, generator=generator, device=dev))  # one launch for every draw
        x = images.float()  # values in [0, 255] until the normalisation folds in the 1/255
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = self._crop_flip(x, u)
        h, w = x.shape[2:]
        x = x.view(n, 3, h * w)
        luma, eye = _colour_constants(dev)
        if self.jitter > 0:
            # y = b*x; y = (y - mean)*c + mean; y = (y - grey)*s + grey, i.e. y = A x + B luma(x) + C
            on = next(u) < self.jitter_p
            lo, hi = max(0.0, 1 - self.jitter), 1 + self.jitter
            b, c, s = (torch.where(on, _uniform(next(u), lo, hi), 1.0) for _ in range(3))
            mean = x.mean(dim=2) @ luma  # mean luma of each cropped image
            matrix = (s * c * b).view(n, 1, 1) * eye + ((1 - s) * c * b).view(n, 1, 1) * luma
            x = torch.einsum("nck,nkp->ncp", matrix, x).add_(((1 - c) * b * mean).view(n, 1, 1)).clamp_(0, 255)
            if self.gamma > 0:
                log_g = _uniform(next(u), -math.log1p(self.gamma), math.log1p(self.gamma))
                curve = torch.where(on, torch.exp(log_g), 1.0).view(n, 1, 1)
                x = x.mul_(1 / 255).pow_(curve).mul_(255)
        if self.grey_p > 0:  # grey (luma in every channel) and normalisation, (x / 255 - MEAN) / STD, in one product
            grey = (next(u) < self.grey_p).view(n, 1, 1)
            matrix = torch.where(grey, luma.expand(3, 3), eye) * (1 / (255 * STD))
            x = torch.einsum("nck,nkp->ncp", matrix, x).sub_(MEAN / STD)
        else:
            x = x.mul(1 / (255 * STD)).sub_(MEAN / STD)
        x.clamp_(-MEAN / STD, (1 - MEAN) / STD)  # float rounding must not leave [0, 1] before normalisation
        if self.solarize_p > 0:  # x >= 0.5 -> 1 - x, written for normalised values
            sol = (next(u) < self.solarize_p).view(n, 1, 1)
            x = torch.where(sol & (x >= (0.5 - MEAN) / STD), (1 - 2 * MEAN) / STD - x, x)
        return x.view(n, 3, h, w).contiguous(memory_format=torch.channels_last)

    def _crop_flip(self, x, u):
        """Random resized crop and horizontal flip of the whole batch (draws from ``u``): one ``grid_sample``."""
        n, dev = x.shape[0], x.device
        height, width = x.shape[2:]
        area = _uniform(next(u), *self.crop_scale)
        log_ratio = _uniform(next(u), math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1]))
        ratio = torch.exp(log_ratio)
        w = torch.sqrt(area * ratio).clamp(max=1.0)
        h = torch.sqrt(area / ratio).clamp(max=1.0)
        cx = (next(u) * 2 - 1) * (1 - w)
        cy = (next(u) * 2 - 1) * (1 - h)
        flip = torch.where(next(u) < self.hflip, -1.0, 1.0)
        # affine_grid's sampling grid for [[w * flip, 0, cx], [0, h, cy]], built from its two axes
        gx = (w * flip).view(n, 1) * _base(width, dev) + cx.view(n, 1)
        gy = h.view(n, 1) * _base(height, dev) + cy.view(n, 1)
        grid = torch.stack([gx.view(n, 1, width).expand(n, height, width),
                            gy.view(n, height, 1).expand(n, height, width)], dim=-1)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


@lru_cache(maxsize=None)
def _base(size: int, device: torch.device) -> torch.Tensor:
    """Pixel centres in [-1, 1] (``align_corners=False``), as ``affine_grid`` places them (made once per size)."""
    return torch.linspace(-1, 1, size, device=device) * (size - 1) / size


SIMCLR_VIEW = ViewAugment(gamma=0.5)
BYOL_VIEWS = (ViewAugment(gamma=0.5), ViewAugment(gamma=0.5, solarize_p=0.2))
SUPERVISED_VIEW = ViewAugment(crop_scale=(0.5, 1.0), jitter=0.2, gamma=0.2, grey_p=0.0)  # milder intensity jitter
