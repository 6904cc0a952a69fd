"""TL, then SSL: SimCLR pre-training that starts from the TL arm's encoder on the same source pool.

The seed paper asks how to bridge transfer and self-supervised learning (Zhao et al., arXiv:2407.05592); this arm
is the sequential bridge: supervised pre-training on the pool's labels, then SimCLR (Chen et al., ICML 2020) on the
same images from those weights, with its own fresh projection head. Its encoder has seen twice the pre-training
epochs of any other arm (the TL run's and its own), which the speed chapter's compute table shows.
"""

from __future__ import annotations

from .base import Arm
from .simclr import SimCLR
from .supervised import Supervised


class BridgeSimCLR(SimCLR):
    """SimCLR from the TL encoder: :class:`SimCLR`'s views, head and loss; ``starts_from`` names the arm whose
    stored pre-training on the same pool (same epochs, batch and seed) initialises the encoder."""

    arm = Arm("bridge-simclr", "Bridge TL→SimCLR", "#17becf", 6)
    name, title = "bridge-simclr", "TL then SimCLR"
    starts_from = ("tl",)
    recipe = f"SimCLR ({SimCLR.recipe}) from the TL encoder ({Supervised.recipe})"
    lightly_transform = None  # SimCLR's step, benchmarked as SimCLR
