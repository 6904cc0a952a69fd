"""SimCLR (Chen et al., ICML 2020): NT-Xent between two views of each image.

The projection head is lightly's (Susmelj et al., 2020); NT-Xent is lightly's, restated without host
synchronisation (:mod:`medlib.losses`).
"""

from __future__ import annotations

from lightly.models.modules import SimCLRProjectionHead
from torch import nn

from ..augment import SIMCLR_VIEW
from ..losses import NTXentLoss
from .base import Arm, Method, Option


class SimCLR(Method):
    """NT-Xent between two views of each image, through a 2-layer MLP projection to 128 dimensions; its
    temperature is lightly's default (0.5) unless a profile sets another."""

    arm = Arm("ssl-simclr", "SSL SimCLR", "#d62728", 3)
    name, title = "simclr", "SimCLR"
    options = {"temperature": Option(0.5, 0)}

    def __init__(self, encoder: nn.Module, temperature: float = 0.5):
        super().__init__()
        dim = encoder.feature_dim
        self.encoder, self.projection = encoder, SimCLRProjectionHead(dim, dim, 128)
        self.criterion = NTXentLoss(temperature=temperature)

    @staticmethod
    def lightly_transform(size: int, **options):
        from lightly.transforms import SimCLRTransform

        return SimCLRTransform(input_size=size, **options)

    def views(self, images, g):
        """Two views of every image (rows i and n + i), drawn in one batched call: half the kernels of two."""
        return SIMCLR_VIEW(images.repeat(2, 1, 1, 1), g)

    def view_loss(self, views, labels=None):
        z0, z1 = self.projection(self.encoder(views)).chunk(2)
        return self.criterion(z0, z1)
