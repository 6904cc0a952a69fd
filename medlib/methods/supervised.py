"""Supervised pre-training on the pool's labels: the transfer-learning (TL) arm."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ..augment import SUPERVISED_VIEW
from .base import Arm, Method


class Supervised(Method):
    """Cross-entropy over the pool's union label space, on mildly cropped and flipped views."""

    arm = Arm("tl", "TL (supervised)", "#1f77b4", 2)
    name, title = "supervised", "Supervised"

    def __init__(self, encoder: nn.Module, n_classes: int):
        super().__init__()
        self.encoder, self.head = encoder, nn.Linear(encoder.feature_dim, n_classes)

    @classmethod
    def create(cls, encoder, n_classes):
        return cls(encoder, n_classes)

    def views(self, images, g):
        return SUPERVISED_VIEW(images, g)

    def view_loss(self, views, labels):
        return F.cross_entropy(self.head(self.encoder(views)), labels)
