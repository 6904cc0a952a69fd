"""Backbones (torchvision ResNets, He et al., CVPR 2016) and the classifier an arm is adapted with."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
import torchvision
from torch import nn

from .data import offline
from .validation import check_choice

BACKBONES = ("resnet18", "resnet50")
STEMS = ("imagenet", "cifar")
_WEIGHTS = {"resnet18": "ResNet18_Weights", "resnet50": "ResNet50_Weights"}


class WeightsUnavailable(RuntimeError):
    """ImageNet weights could not be downloaded (offline)."""


def backbone(name: str = "resnet18", stem: str = "imagenet", imagenet_weights: bool = False) -> nn.Module:
    """A ResNet encoder that maps ``N x 3 x H x W`` to ``N x feature_dim`` features.

    ``stem="imagenet"`` keeps torchvision's 7x7/2 convolution and max-pool; ``stem="cifar"`` uses a 3x3/1
    convolution and no max-pool, the small-input stem of MedMNIST v2's 28-pixel ResNets (4-16x the compute).
    """
    check_choice("backbone", name, BACKBONES)
    check_choice("stem", stem, STEMS)
    weights = None
    if imagenet_weights:
        if stem != "imagenet":
            raise ValueError("ImageNet weights need stem='imagenet'")
        problem = imagenet_weights_problem(name)
        if problem:
            raise WeightsUnavailable(problem)
        weights = getattr(torchvision.models, _WEIGHTS[name]).IMAGENET1K_V1
    net = getattr(torchvision.models, name)(weights=weights)
    if stem == "cifar":
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    net.feature_dim = net.fc.in_features
    net.fc = nn.Identity()
    return net.to(memory_format=torch.channels_last)


@lru_cache(maxsize=None)
def imagenet_weights_problem(name: str = "resnet18") -> str | None:
    """None if torchvision's ImageNet weights for ``name`` load (downloading once), else why not.

    With ``MEDLIB_OFFLINE=1`` only weights already in torch's hub cache count; nothing is downloaded.
    """
    weights = getattr(torchvision.models, _WEIGHTS[name]).IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if offline() and not cached.exists():
        return (f"torchvision's {name} ImageNet weights are not in torch's hub cache and MEDLIB_OFFLINE=1 forbids a "
                "download")
    try:
        weights.get_state_dict(progress=False)
    except Exception as e:
        return f"torchvision's {name} ImageNet weights could not be downloaded ({type(e).__name__}: {e})"
    return None


def blocks(encoder: nn.Module, name: str) -> list[nn.Module]:
    """The ResNet block ``name`` (e.g. ``"layer4"``) of ``encoder``: one per part of an encoder made of parts
    side by side (``encoder.parts``, e.g. :class:`medlib.methods.fusion.Concatenation`), else its own."""
    return [getattr(part, name) for part in getattr(encoder, "parts", [encoder])]


class Classifier(nn.Module):
    """Encoder followed by one linear layer; ``freeze`` keeps the encoder fixed (a linear probe)."""

    def __init__(self, encoder: nn.Module, n_outputs: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.feature_dim, n_outputs)

    def forward(self, x):
        return self.head(self.encoder(x))

