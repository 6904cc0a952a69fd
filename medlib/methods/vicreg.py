"""VICReg (Bardes, Ponce and LeCun, ICLR 2022): variance-invariance-covariance regularisation of two views.

No negatives and no momentum network: the embeddings of two views of an image are pulled together (invariance),
each embedding dimension keeps a standard deviation of at least 1 over the batch (variance), and different
dimensions are decorrelated (covariance). Views are BYOL's, as in the paper; the projection head is lightly's
(Susmelj et al., 2020) at the size of lightly's CIFAR-10 example; the loss is lightly's ``VICRegLoss`` with its
covariance term restated without host synchronisation, so that the step can be captured as a CUDA graph.
"""

from __future__ import annotations

import torch
from lightly.loss import VICRegLoss as LightlyVICRegLoss
from lightly.loss.vicreg_loss import invariance_loss, variance_loss
from lightly.models.modules.heads import VICRegProjectionHead
from torch import nn

from .base import Arm, Method
from .byol import byol_views, lightly_byol_transform


def covariance_loss(x: torch.Tensor) -> torch.Tensor:
    """Sum of the squared off-diagonal entries of the batch covariance of ``x`` (N x D), over D: lightly's
    ``covariance_loss``, whose off-diagonal entries are picked by boolean indexing (the host reads their count
    back from the device, which a CUDA graph cannot capture); here the diagonal is subtracted instead."""
    x = x - x.mean(dim=0)
    cov = x.T @ x / (len(x) - 1)
    return (cov.square().sum() - cov.diagonal().square().sum()) / x.shape[1]


class VICRegLoss(LightlyVICRegLoss):
    """lightly's VICReg loss (weights 25, 25, 1) with :func:`covariance_loss`, computed in float32 (no bf16
    autocast: the variance term's 1e-4 and the covariance's squares need float32's precision)."""

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        with torch.autocast(z_a.device.type, enabled=False):
            z_a, z_b = z_a.float(), z_b.float()
            variance = 0.5 * (variance_loss(z_a, self.eps) + variance_loss(z_b, self.eps))
            return (self.lambda_param * invariance_loss(z_a, z_b) + self.mu_param * variance
                    + self.nu_param * (covariance_loss(z_a) + covariance_loss(z_b)))


class VICReg(Method):
    """Encoder and a 2-layer projection to 2048 dimensions, trained with :class:`VICRegLoss` on two views."""

    arm = Arm("ssl-vicreg", "SSL VICReg", "#9467bd", 5)
    name, title = "vicreg", "VICReg"
    lightly_transform = staticmethod(lightly_byol_transform)
    # With SGD at the other methods' 0.06 its loss became NaN in epoch 3 of the quick profile's pre-training (bf16,
    # BreastMNIST's pool); at 0.02 all 10 epochs trained, the held-out kNN at 0.80-0.82.
    lr = 0.02

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.projection = VICRegProjectionHead(encoder.feature_dim, 2048, 2048, num_layers=2)
        self.criterion = VICRegLoss()

    def views(self, images, g):
        return byol_views(images, g)

    def view_loss(self, views, labels=None):
        z0, z1 = self.projection(self.encoder(views)).chunk(2)
        return self.criterion(z0, z1)
