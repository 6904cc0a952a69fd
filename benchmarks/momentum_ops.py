"""Operator calls of one BYOL momentum update: lightly's ``update_momentum`` against medlib's multi-tensor update.

Counted with ``torch.profiler`` on the CPU (aten calls; on CUDA each is at least one kernel launch for lightly's
per-parameter path, while a foreach call launches a few fused kernels for all tensors).

    python benchmarks/momentum_ops.py
"""

import torch
from lightly.models.utils import update_momentum
from torch.profiler import ProfilerActivity, profile

from medlib.models import backbone
from medlib.pretrain import BYOL


def aten_calls(fn) -> int:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return sum(e.count for e in prof.key_averages() if e.key.startswith("aten::"))


def main():
    torch.manual_seed(0)
    byol = BYOL(backbone("resnet18"))
    weight = byol.target_weight(1, 10)
    tensors = len([*byol.encoder_momentum.parameters(), *byol.projection_momentum.parameters()])

    def lightly_update():
        update_momentum(byol.encoder, byol.encoder_momentum, 0.99)
        update_momentum(byol.projection, byol.projection_momentum, 0.99)

    print(f"{tensors} momentum parameter tensors; aten calls per update: lightly update_momentum "
          f"{aten_calls(lightly_update)}, medlib BYOL.update_targets {aten_calls(lambda: byol.update_targets(weight))}")


if __name__ == "__main__":
    main()
