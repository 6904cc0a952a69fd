"""Test-session environment, inherited by nbval's notebook kernels (which start in notebooks/):
medlib importable from the repository root, and MEDLIB_DATA / MEDLIB_RUNS as absolute paths; and a closing
summary of the tests that skipped for want of the MedMNIST files."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
for name in ("MEDLIB_DATA", "MEDLIB_RUNS"):
    if os.environ.get(name):
        os.environ[name] = str(Path(os.environ[name]).resolve())
os.environ.setdefault("MEDLIB_RUNS", str(ROOT / "runs"))

MISSING_DATA = "real MedMNIST files not found in "
"""The start of the skip reason of every test that needs the offline MedMNIST files (tests/conftest.py)."""


def pytest_terminal_summary(terminalreporter):
    """Say loudly, at the end, how many tests skipped for want of the MedMNIST files and how to run them: a user's
    pytest must not check less than CI without saying so."""
    reasons = [r.longrepr[2] for r in terminalreporter.stats.get("skipped", [])
               if isinstance(r.longrepr, tuple) and MISSING_DATA in r.longrepr[2]]
    if reasons:
        root = reasons[0].split(MISSING_DATA, 1)[1]
        terminalreporter.write_sep("=", f"{len(reasons)} tests SKIPPED: no MedMNIST files in {root}", red=True,
                                   bold=True)
        terminalreporter.write_line(
            "This run checked less than CI does. Point MEDLIB_DATA at a folder that holds breastmnist.npz, "
            "pneumoniamnist.npz and retinamnist.npz (e.g. MEDLIB_DATA=../shared/data/medmnist MEDLIB_OFFLINE=1) and "
            "run pytest again.", red=True, bold=True)
