"""TL and SSL side by side: the TL and SimCLR encoders of the same source pool, their features concatenated.

The seed paper asks how to bridge transfer and self-supervised learning (Zhao et al., arXiv:2407.05592), and its
authors' companion work fuses TL and SSL features in an ensemble (ETSEF, Zhao et al., arXiv:2407.06566). This arm
is the plainest such fusion: the two stored encoders, unchanged, run side by side and their features (512 + 512
for a ResNet-18) are concatenated into one encoder that is adapted like any arm: the linear probe reads both
feature sets, and fine-tuning trains both encoders. It pre-trains nothing of its own; its encoder went through both
pre-trainings, which the speed chapter's compute table counts. Grad-CAM of a fused encoder averages the maps of the
same block in both parts (:func:`medlib.models.blocks`).
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Arm, Method
from .simclr import SimCLR
from .supervised import Supervised


class Concatenation(nn.Module):
    """Encoders side by side (``parts``): the features of each, concatenated."""

    def __init__(self, parts: list[nn.Module]):
        super().__init__()
        self.parts = nn.ModuleList(parts)
        self.feature_dim = sum(p.feature_dim for p in parts)

    def forward(self, x):
        return torch.cat([part(x) for part in self.parts], dim=1)


class Fusion(Method):
    """The encoders of ``starts_from`` concatenated (:class:`Concatenation`); no pre-training step of its own."""

    arm = Arm("fusion", "Fusion TL+SimCLR", "#bcbd22", 7)
    name, title = "fusion", "TL and SimCLR fused"
    starts_from = ("tl", "ssl-simclr")
    trains = False
    views_per_image = 0
    recipe = f"TL ({Supervised.recipe}) and SimCLR ({SimCLR.recipe}) encoders, features concatenated"

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    @classmethod
    def build_encoder(cls, backbone):
        return Concatenation([backbone() for _ in cls.starts_from])

    def start(self, weights):
        for part, state in zip(self.encoder.parts, weights, strict=True):
            part.load_state_dict(state)
