"""Test-session environment, inherited by nbval's notebook kernels (which start in notebooks/):
medlib importable from the repository root, and MEDLIB_DATA / MEDLIB_RUNS as absolute paths."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
for name in ("MEDLIB_DATA", "MEDLIB_RUNS"):
    if os.environ.get(name):
        os.environ[name] = str(Path(os.environ[name]).resolve())
os.environ.setdefault("MEDLIB_RUNS", str(ROOT / "runs"))
