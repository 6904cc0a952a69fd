"""Supervised pre-training on the pool's labels: the transfer-learning (TL) arm."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import SUPERVISED_VIEW
from .base import Arm, Method


class Supervised(Method):
    """Class-balanced cross-entropy over the pool's union label space, on mildly cropped, flipped and
    intensity-jittered views.

    A pool's labels are its datasets' classes (``"flag: class"``), and one dataset and one class can hold most of
    its images (PneumoniaMNIST's pneumonia, RetinaMNIST's grade 0); each class is weighted by the inverse of its
    frequency (scikit-learn's ``"balanced"`` weights, ``n / (k * count)``), so that the encoder learns every class
    of every dataset rather than the largest one.
    """

    arm = Arm("tl", "TL (supervised)", "#1f77b4", 2)
    name, title = "supervised", "Supervised"
    recipe = "class-balanced cross-entropy; crop, flip and mild intensity views"
    views_per_image = 1

    def __init__(self, encoder: nn.Module, class_counts: torch.Tensor):
        super().__init__()
        counts = torch.as_tensor(class_counts, dtype=torch.float32)
        self.encoder, self.head = encoder, nn.Linear(encoder.feature_dim, len(counts))
        self.register_buffer("class_weight", counts.sum() / (len(counts) * counts.clamp(min=1)))

    @classmethod
    def create(cls, encoder, class_counts, **options):
        return cls(encoder, class_counts, **options)

    def views(self, images, g):
        return SUPERVISED_VIEW(images, g)

    def view_loss(self, views, labels):
        return F.cross_entropy(self.head(self.encoder(views)), labels, weight=self.class_weight)
