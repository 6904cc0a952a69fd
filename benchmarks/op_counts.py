"""Operator calls, counted with ``torch.profiler`` on the CPU (aten calls; on CUDA each compute call is at least
one kernel launch, views and reshapes none): BYOL's momentum update, lightly's ``update_momentum`` against
medlib's multi-tensor update; one batch of 256 SimCLR views at 28 px (``medlib.augment``) and both views of those
256 images as a SimCLR step draws them (``SimCLR.views``). Run it on two commits to compare them.

    python -m benchmarks.op_counts
"""

import argparse

import torch
from lightly.models.utils import update_momentum
from torch.profiler import ProfilerActivity, profile

from medlib.augment import SIMCLR_VIEW
from medlib.models import backbone
from medlib.pretrain import BYOL, SimCLR


def aten_calls(fn) -> int:
    """aten calls of ``fn``, those made inside other aten calls included."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return sum(e.count for e in prof.key_averages() if e.key.startswith("aten::"))


def main(argv=None):
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    torch.manual_seed(0)
    byol = BYOL(backbone("resnet18"))
    weight = byol.target_weight(1, 10)
    tensors = len([*byol.encoder_momentum.parameters(), *byol.projection_momentum.parameters()])

    def lightly_update():
        update_momentum(byol.encoder, byol.encoder_momentum, 1 - weight)
        update_momentum(byol.projection, byol.projection_momentum, 1 - weight)

    images = torch.randint(0, 256, (256, 3, 28, 28), dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    SIMCLR_VIEW(images, g)  # once untimed, so that cached constants are made
    print(f"{tensors} momentum parameter tensors; aten calls per update: lightly update_momentum "
          f"{aten_calls(lightly_update)}, medlib BYOL.update_targets {aten_calls(lambda: byol.update_targets(weight))}")
    simclr = SimCLR(backbone("resnet18"))
    print(f"aten calls per batch of SimCLR views: {aten_calls(lambda: SIMCLR_VIEW(images, g))}; "
          f"for both views of the batch (SimCLR.views): {aten_calls(lambda: simclr.views(images, g))}")


if __name__ == "__main__":
    main()
