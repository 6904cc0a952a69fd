"""Where the steps run and how: bf16 autocast where the device computes bfloat16 natively; CUDA graphs on CUDA.

Mixed precision (Micikevicius et al., ICLR 2018) in bfloat16 (Kalamkar et al., arXiv:1905.12322) keeps float32
weights, optimiser state and losses, and runs convolutions and matrix products in bf16. CUDA GPUs and CPUs with
AVX-512 BF16 or AMX (through oneDNN) do that natively; elsewhere bf16 would be emulated and slower, so medlib
stays in float32 there. ``MEDLIB_PRECISION=fp32`` (or ``bf16``) overrides the choice. The precision is part of
every run's key in the run store, so a result computed in one precision is never read as the other's.
"""

from __future__ import annotations

import os
from functools import lru_cache

import torch

from .validation import check_choice

PRECISIONS = ("auto", "bf16", "fp32")


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@lru_cache(maxsize=None)
def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 convolutions and matrix products in hardware (asked once per device:
    :func:`autocast` runs every step)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch's CPU feature probes (private API)
    return device.type == "cpu" and any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def precision(device: torch.device | None = None) -> str:
    """``"bf16"`` or ``"fp32"``: what training and inference on ``device`` (default: medlib's) compute in."""
    choice = os.environ.get("MEDLIB_PRECISION", "auto")
    check_choice("MEDLIB_PRECISION", choice, PRECISIONS)
    if choice != "auto":
        return choice
    return "bf16" if native_bf16(device or default_device()) else "fp32"


def cuda_graphs(device: torch.device) -> bool:
    """Whether training steps on ``device`` run as CUDA graphs (:mod:`medlib.step`): on CUDA, unless
    ``MEDLIB_CUDA_GRAPHS=0``. Graphed and eager steps compute the same update, so this is not part of a run's key."""
    choice = os.environ.get("MEDLIB_CUDA_GRAPHS", "1")
    check_choice("MEDLIB_CUDA_GRAPHS", choice, ("0", "1"))
    return device.type == "cuda" and choice == "1"


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on ``device`` where :func:`precision` says bf16 (and ``enabled``); float32 otherwise. Without
    autocast's weight-cast cache, which a captured CUDA graph must not keep (:mod:`medlib.step`); medlib uses each
    weight once per autocast region, so the cache saved nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled and precision(device) == "bf16",
                          cache_enabled=False)
