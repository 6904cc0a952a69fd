"""SimCLR's NT-Xent loss (Chen et al., ICML 2020) in a form that never makes the host wait for the device.

lightly's ``NTXentLoss`` removes each view's similarity with itself by boolean indexing, whose output size the
host must read back from the device every step; that stalls the launch queue and cannot be captured in a CUDA
graph (:mod:`medlib.step`). Here those entries are masked with -inf instead, which leaves the softmax over the same
2n - 1 candidates, so the loss and its gradient are lightly's (equal to float rounding: tests/test_losses.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NTXentLoss(nn.Module):
    """Normalised temperature-scaled cross-entropy over the 2n views of n images, in-batch negatives."""

    def __init__(self, temperature: float = 0.5):
        super().__init__()
        self.temperature = temperature

    def forward(self, z0: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        n = len(z0)
        z = torch.cat([F.normalize(z0, dim=1), F.normalize(z1, dim=1)])
        logits = (z @ z.T / self.temperature).masked_fill(
            torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
        positives = torch.arange(2 * n, device=z.device).roll(n)  # view i of one image pairs with view i + n
        return F.cross_entropy(logits, positives)
