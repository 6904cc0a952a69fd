"""The run store: every expensive result on disk, keyed by a hash of everything that changes it.

Layout: ``<root>/<kind>/<key>/`` with ``config.json``, ``result.json`` (written last: a run counts only
when it exists) and any artefacts (weights, checkpoints, prediction CSVs). Writes go to a temporary file
that is renamed into place; a per-run file lock makes concurrent chapters compute a config once. With
``MEDLIB_READ_ONLY=1`` (a store filled from an archive, :mod:`medlib.archive`) a missing run is an error, never a
computation.
"""

from __future__ import annotations

import contextlib
import dataclasses
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


def key_fields(config, added: dict) -> dict:
    """A config dataclass as stored and hashed: a field added after runs were stored (``added``: field -> its
    default) is left out while it holds that default, so that those runs keep their keys."""
    return {k: v for k, v in dataclasses.asdict(config).items() if not (k in added and v == added[k])}


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


def _json(obj) -> bytes:
    return json.dumps(obj, indent=1, sort_keys=True, default=str).encode()


def write_json(path: Path, obj) -> None:
    atomic_write(path, _json(obj))


def _seal(payload: bytes) -> bytes:
    """``payload`` behind a first line holding its sha256: what :func:`_unseal` and :func:`intact` check."""
    return hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload


def _unseal(path: Path) -> bytes:
    """The payload of a file written with :func:`_seal`; :class:`CorruptFile` if it fails its checksum."""
    digest, _, payload = Path(path).read_bytes().partition(b"\n")
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise CorruptFile(f"{path} fails its checksum")
    return payload


def save_torch(obj, path: Path) -> None:
    """``torch.save`` with a sha256 header, written atomically."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(path, _seal(buffer.getvalue()))


def write_result(path: Path, result: dict) -> None:
    """A run's ``result.json``: JSON behind a sha256 line, like :func:`save_torch`, so an edit is detected."""
    atomic_write(path, _seal(_json(result)))


def read_result(path: Path) -> dict:
    """What :func:`write_result` wrote; :class:`CorruptFile` if it was edited, damaged or is not a result."""
    try:
        return json.loads(_unseal(path))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptFile(f"{path} is not a result ({type(e).__name__})") from None


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
    return torch.load(io.BytesIO(_unseal(path)), weights_only=False)


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


def runs_root() -> Path:
    """``MEDLIB_RUNS`` (default ``runs``) as an absolute path, a relative one taken from the working directory:
    the CLI and the book's notebook kernels (which run from the repository root) then use the same store."""
    return Path(os.environ.get("MEDLIB_RUNS") or "runs").expanduser().absolute()


def _make_folder(path: Path) -> None:
    """Create ``path`` and check that a file can be written in it; :class:`StoreError` if not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise StoreError(f"the run store cannot write to {path} ({e.strerror or e}); set MEDLIB_RUNS to a folder "
                         "you can write") from None


def _remove_if_empty(run_dir: Path) -> None:
    """Remove a run folder that a refusal or failure left with nothing but its ``config.json`` and lock."""
    with contextlib.suppress(OSError):  # never hides the failure that brought us here
        left = {p.name for p in run_dir.iterdir()}
        if left <= {"config.json", ".lock"}:
            for name in left:
                (run_dir / name).unlink()
            run_dir.rmdir()


class StoreError(RuntimeError):
    """The run store's folder cannot hold runs (``MEDLIB_RUNS`` names a file, or cannot be written)."""


def read_only() -> bool:
    """Whether ``MEDLIB_READ_ONLY=1``: the store only serves stored runs and computes none."""
    return os.environ.get("MEDLIB_READ_ONLY", "0") == "1"


def _missing(kind: str, run_dir: Path, config: dict) -> StoreError:
    """The one-line refusal of a read-only store asked for a run it does not hold."""
    what = " ".join(str(config[k]) for k in ("arm", "protocol", "target", "sources", "seed") if k in config)
    profile = os.environ.get("MEDLIB_PROFILE", "PROFILE")
    return StoreError(f"the {kind} run {run_dir.name} ({what}) is not in the read-only run store "
                      f"{run_dir.parent.parent} (MEDLIB_READ_ONLY=1); compute it with `python -m medlib compute "
                      f"--profile {profile} --only CHAPTER` and export it again, or unset MEDLIB_READ_ONLY to "
                      "compute it here")


class RunStore:
    """Results of pre-training and adaptation runs under ``root`` (default :func:`runs_root`)."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else runs_root()
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"the run store {self.root} is a file, not a folder; set MEDLIB_RUNS to a folder")

    def path(self, kind: str, config: dict) -> Path:
        return self.root / kind / run_key(kind, config)

    def check_writable(self) -> None:
        """Create the store's folder and check that it can be written (:class:`StoreError` if not)."""
        _make_folder(self.root)

    def get(self, kind: str, config: dict, quiet: bool = False) -> dict | None:
        """The stored result, or None if there is none, or its ``result.json`` or an artefact (``*.pt``) fails its
        checksum (edited, damaged or left half-written): such a run does not count and is computed again."""
        run_dir = self.path(kind, config)
        try:
            result, damaged = read_result(run_dir / "result.json"), []
        except (FileNotFoundError, NotADirectoryError):  # not computed yet (or a store that cannot hold runs)
            return None
        except CorruptFile:
            result, damaged = None, ["result.json"]
        damaged += [p.name for p in sorted(run_dir.glob("*.pt")) if not intact(p)]
        if damaged:
            if not quiet:
                print(f"{run_dir}: {', '.join(damaged)} fails its checksum; this run is computed again")
            return None
        return result

    def cached(self, kind: str, config: dict, compute: Callable[[Path], dict]) -> dict:
        """The stored result for ``config``, or ``compute(run_dir)`` stored first (once, under a lock); in a
        read-only store (:func:`read_only`) a missing run raises :class:`StoreError` instead.

        Opening a run to compute it removes the temporary files a killed write left in its folder; a computation
        that fails before it stores anything removes the run's folder again. A computed run records the commit of
        the code that computed it in its ``config.json``. Counts each call in :data:`USAGE` (``read`` or
        ``computed``, and by commit), so that a chapter can say how much of what it shows it computed itself, and
        with which code the rest was computed."""
        run_dir = self.path(kind, config)
        result, commit = self.get(kind, config), None
        if result is None and read_only():
            raise _missing(kind, run_dir, config)
        if result is None:
            _make_folder(run_dir)
            try:
                with FileLock(str(run_dir / ".lock")):
                    result = self.get(kind, config, quiet=True)
                    if result is None:
                        for stale in [run_dir / "result.json", *run_dir.glob(".*.tmp")]:  # a damaged run stops
                            stale.unlink(missing_ok=True)                                  # counting first
                        commit = code_commit()
                        write_json(run_dir / "config.json", {"kind": kind, "medlib": __version__, "commit": commit,
                                                             "precision": precision(), "config": config})
                        result = compute(run_dir)
                        write_result(run_dir / "result.json", result)
            except BaseException:
                _remove_if_empty(run_dir)
                raise
        USAGE["read" if commit is None else "computed"] += 1
        USAGE["commits"][commit or _commit(run_dir)] += 1  # a read run's commit is in its config.json
        return result

    def scan(self, kind: str | None = None) -> tuple[list[dict], list[str]]:
        """(one row per finished run: kind, key, config, commit and result; one line per run left out because its
        ``result.json`` fails its checksum or its ``config.json`` cannot be read)."""
        rows, damaged = [], []
        for path in sorted(self.root.glob(f"{kind or '*'}/*/result.json")):
            try:
                result = read_result(path)
                config = json.loads((path.parent / "config.json").read_text())
                described = config["config"]
            except CorruptFile:
                damaged.append(f"{path.parent}: result.json fails its checksum (edited or damaged); not counted, "
                               "computed again when asked for")
                continue
            except (OSError, ValueError, KeyError, TypeError) as e:
                damaged.append(f"{path.parent}: config.json cannot be read ({type(e).__name__}); not listed")
                continue
            rows.append({"kind": path.parent.parent.name, "key": path.parent.name, "config": described,
                         "commit": config.get("commit", NOT_RECORDED), "result": result})
        return rows, damaged

    def runs(self, kind: str | None = None) -> list[dict]:
        """One row per finished run (see :meth:`scan`)."""
        return self.scan(kind)[0]
