"""Shared fixtures: the real offline MedMNIST files, and a private run store per test."""

import os
from pathlib import Path

import pytest

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
