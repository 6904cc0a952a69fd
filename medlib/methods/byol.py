"""BYOL (Grill et al., NeurIPS 2020): an online network predicts a momentum target network's projection.

Heads, loss and momentum schedule are lightly's (Susmelj et al., 2020); the target update is lightly's
``update_momentum`` as multi-tensor operations. Its two views differ: only the second is solarised.
"""

from __future__ import annotations

import copy

import torch
from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
from lightly.models.utils import deactivate_requires_grad
from lightly.utils.scheduler import cosine_schedule
from torch import nn

from ..augment import BYOL_VIEWS
from .base import Arm, Method, Option


def byol_views(images: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """BYOL's two views of every image (rows i and n + i): the second may be solarised."""
    return torch.cat([BYOL_VIEWS[0](images, g), BYOL_VIEWS[1](images, g)])


def lightly_byol_transform(size: int, **options):
    """lightly's transform of BYOL's two views (its defaults solarise the second view only, as ``byol_views``)."""
    from lightly.transforms import BYOLTransform, BYOLView1Transform, BYOLView2Transform

    return BYOLTransform(BYOLView1Transform(input_size=size, **options),
                         BYOLView2Transform(input_size=size, **options))


class BYOL(Method):
    """Online encoder, projection (to 256) and prediction; target encoder and projection follow by momentum, which
    rises from ``momentum`` (lightly's 0.99 unless a profile sets another; the paper's 0.996) to 1."""

    arm = Arm("ssl-byol", "SSL BYOL", "#ff7f0e", 4)
    name, title = "byol", "BYOL"
    lightly_transform = staticmethod(lightly_byol_transform)
    options = {"momentum": Option(0.99, 0, 1)}

    def __init__(self, encoder: nn.Module, momentum: float = 0.99):
        super().__init__()
        self.encoder, self.momentum = encoder, momentum
        self.projection = BYOLProjectionHead(encoder.feature_dim, 1024, 256)
        self.prediction = BYOLPredictionHead(256, 1024, 256)
        self.encoder_momentum = copy.deepcopy(encoder)
        self.projection_momentum = copy.deepcopy(self.projection)
        deactivate_requires_grad(self.encoder_momentum)
        deactivate_requires_grad(self.projection_momentum)
        self.criterion = NegativeCosineSimilarity()

    def views(self, images, g):
        return byol_views(images, g)

    def view_loss(self, views, labels=None):
        p0, p1 = self.prediction(self.projection(self.encoder(views))).chunk(2)
        with torch.no_grad():
            z0, z1 = self.projection_momentum(self.encoder_momentum(views)).chunk(2)
        return 0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0))

    def target_weight(self, step, total):
        """1 - m, the momentum m rising from ``momentum`` to 1 on lightly's cosine schedule."""
        return 1.0 - cosine_schedule(step, total, self.momentum, 1.0)

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
