"""The pre-training methods, one module each, and the registry every list of arms is read from.

Each module owns its method's views, heads, loss, training-step pieces and display (:class:`Arm`). The book's
arms are the two without pre-training (:data:`START_ARMS`) and one per registered method; the run configs'
choices, the CLI's help, the figures' order, colours and labels, the benchmark's methods and the profiles'
default arms all come from here. A new method is one module plus its entry in :data:`REGISTERED`.
"""

from __future__ import annotations

from ..validation import check_choice
from .base import Arm, Method
from .bridge import BridgeSimCLR
from .byol import BYOL
from .fusion import Fusion
from .simclr import SimCLR
from .supervised import Supervised
from .vicreg import VICReg

REGISTERED = (Supervised, SimCLR, BYOL, VICReg, BridgeSimCLR, Fusion)
START_ARMS = (Arm("scratch", "Scratch (random init)", "#7f7f7f", 0),  # random initialisation
              Arm("imagenet", "ImageNet (supervised)", "#8c564b", 1))  # torchvision's ImageNet weights

METHODS: dict[str, type[Method]] = {}  # arm name -> method, in the book's order


def register(method: type[Method]) -> type[Method]:
    """Add ``method`` under its arm's name; a name, colour or order already taken is refused. Called for
    :data:`REGISTERED` as this package is imported; the lists of arms below are derived once, after that."""
    taken = [*START_ARMS, *(m.arm for m in METHODS.values())]
    for field in ("name", "colour", "order"):
        if getattr(method.arm, field) in {getattr(a, field) for a in taken}:
            raise ValueError(f"{method.__name__}: arm {field} {getattr(method.arm, field)!r} is taken")
    METHODS[method.arm.name] = method
    return method


def get(arm: str) -> type[Method]:
    """The method that pre-trains ``arm`` (one clear line for an arm without pre-training or unknown)."""
    check_choice("arm", arm, METHODS)
    return METHODS[arm]


for _method in sorted(REGISTERED, key=lambda m: m.arm.order):
    register(_method)
_ARMS = sorted([*START_ARMS, *(m.arm for m in METHODS.values())], key=lambda a: a.order)
ARMS = tuple(a.name for a in _ARMS)  # every arm, in the book's order
PRETRAINED_ARMS = tuple(METHODS)
TRAINING_ARMS = tuple(a for a, m in METHODS.items() if m.trains)  # with a pre-training step of their own
ARM_COLOURS = {a.name: a.colour for a in _ARMS}
ARM_LABELS = {a.name: a.label for a in _ARMS}
BENCHMARKED = {m.name: m for m in METHODS.values() if m.lightly_transform is not None}  # name -> method
