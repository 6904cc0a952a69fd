"""Provenance of an executed chapter: what ran, with which code, where, and for how long."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

import pandas as pd
import torch

import medlib
from medlib.compute import default_device, precision
from medlib.store import USAGE

ROOT = Path(__file__).resolve().parent.parent


def git_commit() -> str:
    """Short commit hash, with ``-dirty`` when tracked files outside ``book/results`` differ; else ``unknown``.

    ``book/results`` is left out because executing the book rewrites it.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)book/results")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


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
    torch version, wall time, and how many run-store results were computed or read in this process.
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
                      "the store (computed earlier; each records its device)"),
    ]
    return pd.DataFrame(rows, columns=["item", "value"])
