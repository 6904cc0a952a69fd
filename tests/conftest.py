"""Shared fixtures: the real offline MedMNIST files, a private run store per test, one torch thread."""

import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "medmnist"


@pytest.fixture(autouse=True)
def private_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLIB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture
def real_data(monkeypatch):
    """Point MEDLIB_DATA at the real offline files (MEDLIB_DATA if set, else ../shared/data/medmnist)."""
    root = Path(os.environ.get("MEDLIB_DATA") or SHARED_DATA)
    if not (root / "breastmnist.npz").exists():
        pytest.skip(f"real MedMNIST files not found in {root}")
    monkeypatch.setenv("MEDLIB_DATA", str(root))
    monkeypatch.setenv("MEDLIB_OFFLINE", "1")
    return root


@pytest.fixture(scope="module")
def one_thread():
    """Tiny steps run faster on one thread, and two OpenMP threads crawl on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
