"""What every pre-training method is: a module whose ``loss`` of a uint8 batch trains an encoder, and an arm of
the book (name, label, colour, order) that shows it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from ..validation import ParameterError, check_choice, check_number


@dataclass(frozen=True)
class Arm:
    """An arm as the book shows it: its name in configs and results, label, colour, and place in every order."""

    name: str
    label: str
    colour: str
    order: int


class Option(NamedTuple):
    """A hyper-parameter of a method that tuning may set: its default and the open interval (``low``, ``high``;
    None: unbounded) its values must lie in."""

    default: float
    low: float
    high: float | None = None


class Method(nn.Module):
    """A pre-training method: ``loss`` of a uint8 batch is ``view_loss`` of the ``views`` it draws; methods with a
    momentum target network (BYOL) also move it after each step (``target_weight``, ``update_targets``).

    A subclass sets ``arm`` (its :class:`Arm`), ``name`` and ``title`` (the method, e.g. ``"simclr"``,
    ``"SimCLR"``), and ``lightly_transform(size, **options)``, lightly's transform of the same views (for
    ``python -m benchmarks.throughput``; None: not benchmarked). ``create`` makes it on an encoder for a pool whose
    labels have ``class_counts`` images each, drawing its heads' initial weights from torch's global generator.
    ``lr`` is its pre-training's learning rate at batch 256 (SGD, scaled linearly with the batch): lightly's
    CIFAR-10 recipe at half its rate, unless a method needs its own. ``recipe`` names the version of its views and
    loss; it is part of every pre-training's config (and so of its run key), so that a changed recipe is never read
    from a run the old one made. ``starts_from`` (empty: a random encoder) names the arms whose stored pre-trainings
    on the same pool initialise the encoder (``build_encoder`` makes it from as many backbones, ``start`` loads
    their weights); ``trains`` False keeps that starting encoder as it is, with no step of its own.
    ``views_per_image`` is how many augmented views of an image one step passes through the encoder (what a
    compute-matched comparison counts). ``options`` are the hyper-parameters beyond the rate that a profile may set
    (``pretrain_options``; e.g. SimCLR's temperature), passed to ``create`` by name.
    """

    arm: Arm
    name: str
    title: str
    lightly_transform = None
    lr = 0.06
    recipe = "grey-intensity views"  # the SSL views with a random gamma (medlib.augment)
    starts_from: tuple[str, ...] = ()
    trains = True
    views_per_image = 2
    options: dict[str, Option] = {}

    @classmethod
    def create(cls, encoder: nn.Module, class_counts: torch.Tensor, **options) -> "Method":
        return cls(encoder, **options)

    @classmethod
    def check_options(cls, name: str, options: dict) -> dict:
        """``options`` (option -> value) if each is one of :attr:`options` and inside its interval; else one line
        that says what is allowed."""
        if not isinstance(options, dict):
            raise ParameterError(f"{name}={options!r} is not allowed; give a dict of option: value")
        if options and not cls.options:
            raise ParameterError(f"{name}={options!r} is not allowed: {cls.arm.name} has no options to set")
        for option, value in options.items():
            check_choice(name, option, cls.options)
            bounds = cls.options[option]
            check_number(f"{name}[{option!r}]", value, low=bounds.low, high=bounds.high, low_open=True,
                         high_open=True)
        return options

    @classmethod
    def set_options(cls, options: dict) -> tuple[tuple[str, float], ...]:
        """The options that differ from their defaults, sorted by name: what a run's config records."""
        return tuple(sorted((k, float(v)) for k, v in options.items() if v != cls.options[k].default))

    @classmethod
    def build_encoder(cls, backbone: Callable[[], nn.Module]) -> nn.Module:
        """The encoder this method pre-trains, made from ``backbone()`` (a fresh ResNet encoder per call)."""
        return backbone()

    def start(self, weights: list[dict]) -> None:
        """Load the encoder weights of the ``starts_from`` pre-trainings (at most one here), in that order."""
        for state in weights[:1]:
            self.encoder.load_state_dict(state)

    def views(self, images: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def view_loss(self, views: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, images, labels, g):
        return self.view_loss(self.views(images, g), labels)

    def target_weight(self, step: int, total: int) -> float:
        return 0.0

    def update_targets(self, weight: float | torch.Tensor) -> None:
        pass
