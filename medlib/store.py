"""The run store: every expensive result on disk, keyed by a hash of everything that changes it.

Layout: ``<root>/<kind>/<key>/`` with ``config.json``, ``result.json`` (written last: a run counts only
when it exists) and any artefacts (weights, checkpoints, prediction CSVs). Writes go to a temporary file
that is renamed into place; a per-run file lock makes concurrent chapters compute a config once.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch
from filelock import FileLock

from . import __version__
from .compute import precision
from .revision import code_commit


class CorruptFile(RuntimeError):
    """A stored file fails its checksum or cannot be parsed."""


def canonical(config: dict) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)


def run_key(kind: str, config: dict) -> str:
    """sha256 of the kind, the canonical config, medlib's version and the compute precision (first 16 hex
    digits): a result computed in float32 is never read as a bf16 one, nor the other way round."""
    text = canonical({"kind": kind, "config": config, "medlib": __version__, "precision": precision()})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def atomic_write(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj) -> None:
    atomic_write(path, json.dumps(obj, indent=1, sort_keys=True, default=str).encode())


def save_torch(obj, path: Path) -> None:
    """``torch.save`` with a sha256 header, written atomically."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getvalue()
    atomic_write(path, hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)


def intact(path: Path) -> bool:
    """Whether a file written by :func:`save_torch` still matches its checksum (checked without unpickling)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        expected = f.readline().rstrip(b"\n")
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest().encode() == expected


def load_torch(path: Path):
    """Load what :func:`save_torch` wrote; raise :class:`CorruptFile` if it was damaged."""
    data = Path(path).read_bytes()
    digest, _, payload = data.partition(b"\n")
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise CorruptFile(f"{path} fails its checksum")
    return torch.load(io.BytesIO(payload), weights_only=False)


USAGE = {"read": 0, "computed": 0, "commits": Counter()}
"""Results this process read from a run store, and results it computed and stored (see ``RunStore.cached``);
``commits`` counts both by the commit that computed them ("not recorded" for runs stored before runs kept it)."""


NOT_RECORDED = "not recorded"


def _commit(run_dir: Path) -> str:
    """The commit that computed the run in ``run_dir``, from its ``config.json``; :data:`NOT_RECORDED` when that
    holds none (runs stored before runs recorded it) or cannot be read."""
    try:
        return json.loads((run_dir / "config.json").read_text()).get("commit", NOT_RECORDED)
    except (OSError, json.JSONDecodeError):
        return NOT_RECORDED


class RunStore:
    """Results of pre-training and adaptation runs under ``root`` (``MEDLIB_RUNS``, default ``runs/``)."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root if root is not None else os.environ.get("MEDLIB_RUNS", "runs"))

    def path(self, kind: str, config: dict) -> Path:
        return self.root / kind / run_key(kind, config)

    def get(self, kind: str, config: dict, quiet: bool = False) -> dict | None:
        """The stored result, or None if there is none, it cannot be read, or an artefact (``*.pt``) is damaged."""
        run_dir = self.path(kind, config)
        result = run_dir / "result.json"
        if not result.exists():
            return None
        try:
            result = json.loads(result.read_text())
        except json.JSONDecodeError:
            return None
        damaged = [p.name for p in sorted(run_dir.glob("*.pt")) if not intact(p)]
        if damaged:
            if not quiet:
                print(f"{run_dir}: {', '.join(damaged)} fails its checksum; this run is computed again")
            return None
        return result

    def cached(self, kind: str, config: dict, compute: Callable[[Path], dict]) -> dict:
        """The stored result for ``config``, or ``compute(run_dir)`` stored first (once, under a lock).

        A computed run records the commit of the code that computed it in its ``config.json``. Counts each call
        in :data:`USAGE` (``read`` or ``computed``, and by commit), so that a chapter can say how much of what
        it shows it computed itself, and with which code the rest was computed."""
        run_dir = self.path(kind, config)
        result, commit = self.get(kind, config), None
        if result is None:
            run_dir.mkdir(parents=True, exist_ok=True)
            with FileLock(str(run_dir / ".lock")):
                result = self.get(kind, config, quiet=True)
                if result is None:
                    (run_dir / "result.json").unlink(missing_ok=True)  # a damaged run stops counting first
                    commit = code_commit()
                    write_json(run_dir / "config.json", {"kind": kind, "medlib": __version__, "commit": commit,
                                                         "precision": precision(), "config": config})
                    result = compute(run_dir)
                    write_json(run_dir / "result.json", result)
        USAGE["read" if commit is None else "computed"] += 1
        USAGE["commits"][commit or _commit(run_dir)] += 1  # a read run's commit is in its config.json
        return result

    def runs(self, kind: str | None = None) -> list[dict]:
        """One row per finished run: kind, key, config and result."""
        rows = []
        for result in sorted(self.root.glob(f"{kind or '*'}/*/result.json")):
            config = json.loads((result.parent / "config.json").read_text())
            rows.append({"kind": result.parent.parent.name, "key": result.parent.name, "config": config["config"],
                         "commit": config.get("commit", NOT_RECORDED), "result": json.loads(result.read_text())})
        return rows
