"""A pytest run without the MedMNIST files says loudly, at the end, how much it skipped and how to run it all."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_tests_skipped_for_missing_data_are_counted_loudly_at_the_end(tmp_path):
    env = os.environ | {"MEDLIB_DATA": str(tmp_path), "MEDLIB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests/test_data.py", "-k",
                           "real_breastmnist or grey"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    assert f"2 tests SKIPPED: no MedMNIST files in {tmp_path}" in done.stdout
    assert "Point MEDLIB_DATA at a folder that holds breastmnist.npz" in done.stdout
