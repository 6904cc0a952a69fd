"""What the chapters read from the run store as a compact archive without weights: compute on a GPU, render
anywhere.

:func:`export_archive` writes the stored runs of the chosen chapters (:func:`medlib.plan.chapter_runs`): each
run's ``config.json``, ``result.json`` and test prediction CSV (MedMNIST's naming), never a ``.pt`` file, as
gzip'd tar parts of at most :data:`PART_BYTES` each, and ``manifest.json`` beside them (every run's key, commit,
device and precision; the runs still missing; the sha256 of every part and of every file), at most
:data:`MAX_FILES` files in all. :func:`import_archive` verifies every checksum before it writes anything and fills
a run store, leaving the runs it already holds as they are. An archive of a partial computation imports as well;
``python -m medlib compute`` then computes only what is missing.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import time
from pathlib import Path

from . import __version__
from .compute import precision
from .jobs import describe, kind, runnable
from .plan import CHAPTERS, chapter_runs
from .revision import code_commit
from .store import CorruptFile, RunStore, atomic_write, read_result, write_json
from .validation import ParameterError, check_choices

MANIFEST = "manifest.json"
MAX_FILES = 8
"""Files of an archive, the manifest included."""
PART_BYTES = 16 * 2**20
_HEADROOM = 2**16  # a tar of PART_BYTES - _HEADROOM bytes stays below PART_BYTES gzip'd, however incompressible
_BLOCK = 512  # tar's block: a member is a header block plus its data rounded up to blocks


class ArchiveError(RuntimeError):
    """An archive that cannot be imported: no manifest, a part or a file that fails its checksum, a stray file."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_files(run_dir: Path) -> list[Path]:
    """What a chapter reads of a run: ``config.json``, ``result.json`` and the prediction CSVs (no weights)."""
    return [run_dir / "config.json", run_dir / "result.json", *sorted(run_dir.glob("*.csv"))]


def _tar_bytes(files: list[Path]) -> int:
    return sum(_BLOCK + -(-f.stat().st_size // _BLOCK) * _BLOCK for f in files)


def _pack(runs: list[tuple[str, Path]]) -> list[list[tuple[str, Path]]]:
    """``runs`` in order, cut into parts whose tar stays below ``PART_BYTES - _HEADROOM``."""
    parts, size = [[]], 2 * _BLOCK  # a tar ends with two empty blocks
    for run_kind, run_dir in runs:
        run_size = _tar_bytes(run_files(run_dir))
        if parts[-1] and size + run_size > PART_BYTES - _HEADROOM:
            parts.append([])
            size = 2 * _BLOCK
        parts[-1].append((run_kind, run_dir))
        size += run_size
    return parts


def _part_bytes(runs: list[tuple[str, Path]], root: Path) -> bytes:
    """A gzip'd tar of the runs' files, byte-identical for the same files (no times, owners or modes)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for _, run_dir in runs:
            for path in run_files(run_dir):
                data = path.read_bytes()
                info = tarfile.TarInfo(path.relative_to(root).as_posix())
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _weights_needed(cfg) -> list:
    """The runs whose weights ``cfg`` loads when it is computed: an adaptation's pre-training (if any), an
    evaluation's adaptation and that adaptation's pre-training."""
    adaptation = getattr(cfg, "adapt", None)  # an evaluation's
    pretrain = getattr(adaptation or cfg, "pretrain", None)
    return ([adaptation] if adaptation is not None else []) + ([pretrain] if pretrain is not None else [])


def export_archive(P, chapters: list[str], folder: Path | str, store: RunStore | None = None, say=print) -> dict:
    """Write the archive of ``chapters`` under profile ``P`` into ``folder``; return its manifest.

    Parts an earlier export left in ``folder`` are replaced (the new manifest is written before they go), so an
    export after each chapter leaves a complete archive of what was stored at that moment. The ``imagenet`` runs
    whose weights cannot be had here are left out, as ``compute`` and the chapters leave them out."""
    store, folder = store or RunStore(), Path(folder)
    check_choices("chapter", chapters, CHAPTERS)
    stored, missing = [], []
    pretrains, adaptations, evaluations = chapter_runs(P, chapters)
    adaptations = runnable(adaptations, say)
    evaluations = [e for e in evaluations if e.adapt in adaptations]
    for cfg in [*pretrains, *adaptations, *evaluations]:
        run_dir = store.path(kind(cfg), cfg.to_dict())
        if store.get(kind(cfg), cfg.to_dict(), quiet=True) is None:
            missing.append({"kind": kind(cfg), "key": run_dir.name, "run": describe(cfg),
                            "needs": [store.path(kind(c), c.to_dict()).name for c in _weights_needed(cfg)]})
        else:
            stored.append((kind(cfg), run_dir))
    parts = _pack(stored)
    if len(parts) > MAX_FILES - 1:
        raise ParameterError(f"the archive of {', '.join(chapters)} would take {len(parts) + 1} files of at most "
                             f"{PART_BYTES >> 20} MiB, more than {MAX_FILES}; export fewer chapters with --only")
    manifest = {"medlib": __version__, "profile": P.profile, "chapters": list(chapters), "commit": code_commit(),
                "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "parts": [], "runs": [],
                "missing": missing}
    for i, runs in enumerate(p for p in parts if p):
        data = _part_bytes(runs, store.root)
        name = f"runs-{i + 1:02d}-{_sha256(data)[:12]}.tar.gz"
        atomic_write(folder / name, data)
        manifest["parts"].append({"name": name, "sha256": _sha256(data), "bytes": len(data)})
        for run_kind, run_dir in runs:
            config, result = json.loads((run_dir / "config.json").read_text()), read_result(run_dir / "result.json")
            manifest["runs"].append({
                "kind": run_kind, "key": run_dir.name, "part": name, "commit": config.get("commit"),
                "device": result.get("device"), "precision": result.get("precision"),
                "files": {p.name: _sha256(p.read_bytes()) for p in run_files(run_dir)}})
    for key in ("commit", "device", "precision"):
        manifest[key + "s"] = sorted({str(r[key]) for r in manifest["runs"]})
    write_json(folder / MANIFEST, manifest)
    for stale in set(folder.glob("runs-*.tar.gz")) - {folder / p["name"] for p in manifest["parts"]}:
        stale.unlink()
    return manifest


def read_manifest(folder: Path | str) -> dict:
    path = Path(folder) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ArchiveError(f"{folder} holds no {MANIFEST}: not an archive written by `python -m medlib archive "
                           "export`") from None
    except json.JSONDecodeError:
        raise ArchiveError(f"{path} cannot be read (damaged); export the archive again") from None


def import_archive(folder: Path | str, store: RunStore | None = None, say=print) -> dict:
    """Fill ``store`` from the archive in ``folder``; return counts (``imported``, ``kept``: already stored,
    ``left_out``, ``missing``: runs the archive lists as not yet computed). Raises :class:`ArchiveError`, before
    anything is written, if a part or a file fails its checksum or a part holds a file the manifest does not list.

    A run whose weights a missing run needs (the pre-training of a missing adaptation; the adaptation and its
    pre-training of a missing evaluation) is left out: the archive has no weights, so ``compute`` runs it again
    with the missing run (imported, it would count as stored and the missing run would find no weights)."""
    store, folder = store or RunStore(), Path(folder)
    manifest = read_manifest(folder)
    expected = {f"{r['kind']}/{r['key']}/{name}": digest
                for r in manifest["runs"] for name, digest in r["files"].items()}
    files = {}
    for part in manifest["parts"]:
        try:
            data = (folder / part["name"]).read_bytes()
        except FileNotFoundError:
            raise ArchiveError(f"{folder / part['name']} is missing; copy every file the manifest lists") from None
        if _sha256(data) != part["sha256"]:
            raise ArchiveError(f"{folder / part['name']} fails its checksum (damaged or cut short); nothing imported")
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar.getmembers():
                if not member.isfile() or member.name not in expected:
                    raise ArchiveError(f"{part['name']} holds {member.name!r}, which the manifest does not list; "
                                       "nothing imported")
                content = tar.extractfile(member).read()
                if _sha256(content) != expected[member.name]:
                    raise ArchiveError(f"{member.name} in {part['name']} fails its checksum; nothing imported")
                files[member.name] = content
    absent = sorted(set(expected) - set(files))
    if absent:
        raise ArchiveError(f"the parts lack {len(absent)} file(s) the manifest lists, e.g. {absent[0]}; "
                           "nothing imported")
    counts = {"imported": 0, "kept": 0, "left_out": 0, "missing": len(manifest["missing"])}
    needed = {key for m in manifest["missing"] for key in m["needs"]}
    for run in manifest["runs"]:
        run_dir = store.root / run["kind"] / run["key"]
        if run["key"] in needed:
            counts["left_out"] += 1
            continue
        try:
            read_result(run_dir / "result.json")
            counts["kept"] += 1
            continue
        except (FileNotFoundError, NotADirectoryError, CorruptFile):
            pass
        names = sorted(run["files"], key=lambda name: name == "result.json")  # result.json last: then it counts
        for name in names:
            atomic_write(run_dir / name, files[f"{run['kind']}/{run['key']}/{name}"])
        counts["imported"] += 1
    here = {"medlib": __version__, "precisions": [precision()]}
    for key, value in here.items():
        if manifest[key] not in (value, []):
            fix = "set MEDLIB_PRECISION to the archive's" if key == "precisions" else "check out the archive's commit"
            say(f"note: the archive's runs have {key} {manifest[key]}, this machine {value}; the chapters find them "
                f"only where these match ({fix})")
    return counts


def archive_command(args) -> int:
    """``python -m medlib archive export|import``."""
    from .profiles import parameters

    if args.action == "export":
        if args.folder is None and len(args.only or []) > 1:  # `--only A B FOLDER`: --only took the folder too
            args.folder = args.only.pop()
        if args.folder is None:
            raise ParameterError("archive export needs the archive's folder, e.g. `python -m medlib archive export "
                                 "--profile smoke --only 03_head_to_head archive/`")
        chapters = args.only or list(CHAPTERS)
        manifest = export_archive(parameters(profile=args.profile), chapters, args.folder)
        sizes = ", ".join(f"{p['bytes'] / 2**20:.2f} MiB" for p in manifest["parts"])
        only = f" --only {' '.join(chapters)}" if args.only else ""
        print(f"{len(manifest['runs'])} runs of {' '.join(args.only or ['every chapter'])} in "
              f"{len(manifest['parts'])} part(s) "
              f"({sizes or 'none'}) and {MANIFEST} under {args.folder}; precision {manifest['precisions']}, "
              f"device {manifest['devices']}")
        if manifest["missing"]:
            print(f"{len(manifest['missing'])} runs not stored yet (a partial archive): `python -m medlib compute "
                  f"--profile {args.profile}{only}` computes them")
    else:
        counts = import_archive(args.folder)
        print(f"{counts['imported']} runs imported, {counts['kept']} already stored, {counts['left_out']} "
              f"pre-trainings left out (missing adaptations need their weights: compute runs them again), "
              f"{counts['missing']} runs listed as not computed yet (run store {RunStore().root})")
    return 0
