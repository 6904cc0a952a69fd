"""Provenance of an executed chapter: what ran, with which code, where, and for how long."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import pandas as pd
import torch

import medlib
from medlib.compute import default_device, precision
from medlib.revision import git_commit
from medlib.store import USAGE


def device(which: torch.device | None = None) -> str:
    """The CUDA device name, or the CPU model from ``/proc/cpuinfo``, with torch's thread count and the compute
    precision, of ``which`` (default: the device medlib trains on)."""
    which = which or default_device()
    compute = "bf16 autocast" if precision(which) == "bf16" else "float32"
    if which.type == "cuda":
        return f"{torch.cuda.get_device_name(which)} (CUDA), {torch.get_num_threads()} CPU threads, {compute}"
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        model = names[0] if names else model
    return f"{model} (CPU), {torch.get_num_threads()} threads, {compute}"


def provenance(params: dict, started: float) -> pd.DataFrame:
    """A two-column table (item, value) that ends each chapter.

    ``params`` are the chapter's parameters (``profile`` among them), ``started`` is the ``time.time()``
    taken when the chapter began. Items: profile, parameters, medlib version, git commit, device,
    torch version, wall time, and how many run-store results were computed or read in this process, by the
    commit that computed them.
    """
    rows = [
        ("profile", params.get("profile", os.environ.get("MEDLIB_PROFILE", "unknown"))),
        ("parameters", ", ".join(f"{k}={v!r}" for k, v in params.items() if k != "profile")),
        ("medlib version", medlib.__version__),
        ("git commit", git_commit()),
        ("device", device()),
        ("torch version", torch.__version__),
        ("wall time", f"{time.time() - started:.1f} s"),
        ("run store", f"{USAGE['computed']} results computed in this execution, {USAGE['read']} read from "
                      "the store (computed earlier; each records its device); results by the commit that computed "
                      f"them: {commits(USAGE['commits'])}"),
    ]
    return pd.DataFrame(rows, columns=["item", "value"])


def commits(counts) -> str:
    """``{commit: results}`` as text, most results first, e.g. ``9bc0b0a x 40, 2f52557 x 12``."""
    return ", ".join(f"{commit} x {n}" for commit, n in counts.most_common()) or "none"
