"""Augmented views drawn in batches on the training device, with per-sample random parameters.

The SimCLR recipe (Chen et al., ICML 2020): random resized crop, horizontal flip, colour jitter and random
grey; BYOL (Grill et al., NeurIPS 2020) adds solarisation to its second view. Gaussian blur is left out at
MedMNIST's small sizes, as SimCLR does on CIFAR-10. One ``affine_grid``/``grid_sample`` call crops, resizes
and flips a whole batch, so no image ever goes through PIL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

MEAN, STD = 0.5, 0.5  # MedMNIST v2's normalisation, applied to all three channels


def to_float(images: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """uint8 ``N x C x H x W`` -> normalised float with 3 channels (grey replicated)."""
    x = images.to(dtype).div_(255)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return ((x - MEAN) / STD).contiguous(memory_format=torch.channels_last)


def _uniform(n, low, high, g, device):
    return torch.rand(n, generator=g, device=device) * (high - low) + low


def _bernoulli(n, p, g, device):
    return torch.rand(n, generator=g, device=device) < p


@dataclass(frozen=True)
class ViewAugment:
    """One family of random views; calling it maps a uint8 batch to normalised float views."""

    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = 0.5
    jitter: float = 0.4  # brightness, contrast and saturation strength
    jitter_p: float = 0.8
    grey_p: float = 0.2
    solarize_p: float = 0.0

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        n, dev = images.shape[0], images.device
        x = images.float().div_(255)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = self._crop_flip(x, generator)
        if self.jitter > 0:
            x = self._jitter(x, generator)
        if self.grey_p > 0:
            grey = _bernoulli(n, self.grey_p, generator, dev).view(n, 1, 1, 1)
            x = torch.where(grey, _luma(x).expand_as(x), x)
        if self.solarize_p > 0:
            sol = _bernoulli(n, self.solarize_p, generator, dev).view(n, 1, 1, 1)
            x = torch.where(sol & (x >= 0.5), 1 - x, x)
        return ((x - MEAN) / STD).contiguous(memory_format=torch.channels_last)

    def _crop_flip(self, x, g):
        n, dev = x.shape[0], x.device
        area = _uniform(n, *self.crop_scale, g, dev)
        log_ratio = _uniform(n, math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1]), g, dev)
        ratio = torch.exp(log_ratio)
        w = torch.sqrt(area * ratio).clamp(max=1.0)
        h = torch.sqrt(area / ratio).clamp(max=1.0)
        cx = (torch.rand(n, generator=g, device=dev) * 2 - 1) * (1 - w)
        cy = (torch.rand(n, generator=g, device=dev) * 2 - 1) * (1 - h)
        flip = torch.where(_bernoulli(n, self.hflip, g, dev), -1.0, 1.0)
        zero = torch.zeros_like(w)
        theta = torch.stack([torch.stack([w * flip, zero, cx], 1), torch.stack([zero, h, cy], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def _jitter(self, x, g):
        n, dev = x.shape[0], x.device
        on = _bernoulli(n, self.jitter_p, g, dev).view(n, 1, 1, 1)
        lo, hi = max(0.0, 1 - self.jitter), 1 + self.jitter
        b, c, s = (_uniform(n, lo, hi, g, dev).view(n, 1, 1, 1) for _ in range(3))
        y = x * b
        mean = _luma(y).mean(dim=(2, 3), keepdim=True)
        y = (y - mean) * c + mean
        grey = _luma(y)
        y = ((y - grey) * s + grey).clamp_(0, 1)
        return torch.where(on, y, x)


def _luma(x: torch.Tensor) -> torch.Tensor:
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


SIMCLR_VIEW = ViewAugment()
BYOL_VIEWS = (ViewAugment(), ViewAugment(solarize_p=0.2))
SUPERVISED_VIEW = ViewAugment(crop_scale=(0.5, 1.0), jitter=0.0, grey_p=0.0)
