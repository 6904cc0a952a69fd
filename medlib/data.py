"""MedMNIST 2D as in-memory uint8 tensors, and source pools built from them.

MedMNIST v2: Yang et al., "MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D biomedical
image classification", Scientific Data 10, 41 (2023). Files are read through the ``medmnist`` package.

Channel policy: every image is given to the models with 3 channels; a grey image is replicated across
R, G and B. Grey and colour datasets can therefore share one source pool and one backbone.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from medmnist.info import DEFAULT_ROOT, INFO

from .validation import ParameterError, check_choice, check_choices

FLAGS = tuple(flag for flag in INFO if not flag.endswith("3d"))
SIZES = (28, 64, 128, 224)
SPLITS = ("train", "val", "test")
SINGLE_LABEL_TASKS = ("binary-class", "multi-class", "ordinal-regression")
SAME_PATIENTS = (("organamnist", "organcmnist", "organsmnist"),)  # one CT collection cut in three planes


class DataError(RuntimeError):
    """A MedMNIST file is missing, cannot be downloaded, or is not the official file."""


def data_root() -> Path:
    """``MEDLIB_DATA`` if set, else medmnist's default root (``~/.medmnist``)."""
    return Path(os.environ.get("MEDLIB_DATA") or DEFAULT_ROOT).expanduser()


def offline() -> bool:
    return os.environ.get("MEDLIB_OFFLINE", "0").lower() in ("1", "true", "yes")


def file_name(flag: str, size: int) -> str:
    return f"{flag}{'' if size == 28 else f'_{size}'}.npz"


def file_info(flag: str, size: int) -> tuple[str, str]:
    """The official (url, md5) of a flag at a size, from ``medmnist.info``."""
    suffix = "" if size == 28 else f"_{size}"
    return INFO[flag][f"url{suffix}"], INFO[flag][f"MD5{suffix}"]


def download_url(flag: str, size: int) -> str:
    """Where a missing file is downloaded from: the official URL, or ``MEDLIB_MIRROR`` followed by the file's
    name (e.g. ``MEDLIB_MIRROR=http://mirror.example/medmnist/`` serves ``breastmnist.npz`` there)."""
    mirror = os.environ.get("MEDLIB_MIRROR")
    return f"{mirror.rstrip('/')}/{file_name(flag, size)}" if mirror else file_info(flag, size)[0]


def _download(flag: str, size: int, path: Path) -> None:
    """Stream the file into a temporary file next to ``path`` and rename it into place only if its MD5 is the
    official one: a broken or interrupted download leaves nothing behind."""
    url, md5 = download_url(flag, size), file_info(flag, size)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        digest = hashlib.md5()
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                f.write(block)
        if digest.hexdigest() != md5:
            raise ValueError(f"{url} sent a file whose MD5 is {digest.hexdigest()}; nothing was kept")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _problem(flag: str, size: int, root: Path, what: str) -> DataError:
    url, md5 = file_info(flag, size)
    return DataError(
        f"{file_name(flag, size)} {what}. Download it from {url} (MD5 {md5}) and put it in {root}, "
        f"or set MEDLIB_DATA to a folder that holds it.")


@lru_cache(maxsize=None)
def _md5(path: str, size: int, mtime: float) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_file(flag: str, size: int = 28, root: Path | None = None) -> Path:
    """Return the path of a verified official file, downloading it when allowed.

    A missing file is downloaded (from :func:`download_url`) unless ``MEDLIB_OFFLINE=1``; a file whose MD5
    differs from ``medmnist.info`` is refused. Both raise :class:`DataError` naming file, URL, MD5, root.
    """
    check_choice("flag", flag, FLAGS)
    check_choice("size", size, SIZES)
    root = Path(root) if root is not None else data_root()
    path = root / file_name(flag, size)
    if not path.exists():
        if offline():
            raise _problem(flag, size, root, "is missing and MEDLIB_OFFLINE=1 forbids a download")
        try:
            _download(flag, size, path)
        except (OSError, ValueError) as e:  # URLError and HTTPError are OSErrors
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise _problem(flag, size, root, f"is missing and could not be downloaded ({reason})") from None
    stat = path.stat()
    if _md5(str(path), stat.st_size, stat.st_mtime) != file_info(flag, size)[1]:
        raise _problem(flag, size, root, "is not the official file (its MD5 differs; truncated or altered?)")
    return path


@dataclass(frozen=True)
class ImageSet:
    """Images as uint8 ``N x C x H x W`` and labels (``N`` for single-label tasks, ``N x L`` for multi-label).

    ``groups`` says which dataset each image comes from (``names[g]``); ``classes`` names the labels.
    """

    images: torch.Tensor
    labels: torch.Tensor
    task: str
    classes: tuple[str, ...]
    names: tuple[str, ...]
    groups: torch.Tensor
    split: str
    size: int
    dropped: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def name(self) -> str:
        return "+".join(self.names)

    def subset(self, index) -> "ImageSet":
        index = torch.as_tensor(index, dtype=torch.long)
        return replace(self, images=self.images[index], labels=self.labels[index], groups=self.groups[index])

    def class_counts(self) -> list[int]:
        if self.labels.ndim == 2:
            return self.labels.sum(0).tolist()
        return torch.bincount(self.labels, minlength=self.n_classes).tolist()


@lru_cache(maxsize=32)
def _load(flag: str, split: str, size: int, root: str) -> ImageSet:
    path = ensure_file(flag, size, Path(root))
    try:
        with np.load(path) as npz:
            images, labels = npz[f"{split}_images"], npz[f"{split}_labels"]
    except Exception as e:
        raise DataError(f"{path} could not be read ({type(e).__name__}: {e}); delete it and fetch it again") from None
    images = torch.from_numpy(images)
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
    info = INFO[flag]
    labels = torch.from_numpy(labels.astype(np.int64))
    labels = labels if info["task"] not in SINGLE_LABEL_TASKS else labels[:, 0]
    classes = tuple(info["label"][str(i)] for i in range(len(info["label"])))
    return ImageSet(images.contiguous(), labels, info["task"], classes, (flag,),
                    torch.zeros(len(labels), dtype=torch.long), split, size)


def load(flag: str, split: str = "train", size: int = 28, root: Path | None = None) -> ImageSet:
    """One split of one MedMNIST 2D dataset (cached in memory)."""
    check_choice("split", split, SPLITS)
    return _load(flag, split, size, str(Path(root) if root is not None else data_root()))


def image_hashes(images: torch.Tensor) -> list[str]:
    return [hashlib.sha1(img.numpy().tobytes()).hexdigest() for img in images]


def rgb(images: torch.Tensor) -> torch.Tensor:
    """The channel policy: grey ``N x 1 x H x W`` is replicated to 3 channels; colour passes through."""
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def source_pool(sources, size: int = 28, targets=(), split: str = "train", max_images: int | None = None,
                seed: int = 0, root: Path | None = None) -> ImageSet:
    """The union of the ``split`` splits of ``sources`` with a union label space ``"flag: class"``.

    Leakage guard: an image byte-identical to any val/test image of a target is dropped (counted in
    ``dropped``), and the result is asserted to share no image with them. ``max_images`` keeps a seeded
    random subset. Every arm pre-trains on exactly the images this returns.
    """
    sources, targets = check_sources(sources, targets)
    parts = [load(flag, split, size, root) for flag in sources]
    forbidden = eval_hashes(targets, size, root)
    images, labels, groups, classes, dropped, offset = [], [], [], [], {}, 0
    for g, (flag, part) in enumerate(zip(sources, parts)):
        keep = torch.tensor([h not in forbidden for h in image_hashes(rgb(part.images))], dtype=torch.bool)
        dropped[flag] = int((~keep).sum())
        images.append(rgb(part.images[keep]))
        labels.append(part.labels[keep] + offset)
        groups.append(torch.full((int(keep.sum()),), g, dtype=torch.long))
        classes += [f"{flag}: {c}" for c in part.classes]
        offset += part.n_classes
    pool = ImageSet(torch.cat(images).contiguous(), torch.cat(labels), "multi-class", tuple(classes),
                    tuple(sources), torch.cat(groups), split, size, dropped)
    if max_images is not None and max_images < len(pool):
        g = torch.Generator().manual_seed(seed)
        pool = pool.subset(torch.randperm(len(pool), generator=g)[:max_images].sort().values)
    check_no_leakage(pool, forbidden)
    return pool


def check_sources(sources, targets=()) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Validate a source pool before any file is read: known single-label flags, each once. (A target may be among
    them here, its val and test images dropped; a pre-training refuses that: :func:`check_source_pool`.)"""
    sources = check_choices("sources", sources, FLAGS)
    targets = check_choices("targets", targets, FLAGS, allow_empty=True)
    multi = [f"{flag} is {INFO[flag]['task']}" for flag in sources if INFO[flag]["task"] not in SINGLE_LABEL_TASKS]
    if multi:
        raise ParameterError(f"sources={list(sources)!r}: {', '.join(multi)}; a source pool needs single-label "
                             "datasets")
    return sources, targets


def same_patients(flag: str) -> tuple[str, ...]:
    """The datasets cut from the same patients as ``flag``, itself included: OrganA/C/SMNIST are the axial,
    coronal and sagittal slices of one set of abdominal CT scans (MedMNIST v2), so one of them in another's source
    pool pre-trains on the target's own patients."""
    return next((group for group in SAME_PATIENTS if flag in group), (flag,))


def check_source_pool(sources, targets) -> None:
    """A source pool holds no target nor a dataset cut from a target's patients (:func:`same_patients`): the
    target's own labelled images, or its patients' other views, would pre-train its encoder."""
    inside = [f"the target {t!r}" if flag == t else f"{flag!r} (cut from the patients of the target {t!r})"
              for t in targets for flag in same_patients(t) if flag in sources]
    if inside:
        raise ParameterError(f"sources={list(sources)!r} contains {', '.join(inside)}; a source pool must leave "
                             "out the target it pre-trains for and every dataset cut from its patients")


def eval_hashes(targets, size: int = 28, root: Path | None = None) -> set[str]:
    """Hashes of every val and test image of the targets, under the channel policy (:func:`rgb`), so that a grey
    picture and its colour copy (three equal channels) are one picture to the leakage guard."""
    return {h for t in targets for s in ("val", "test") for h in image_hashes(rgb(load(t, s, size, root).images))}


def check_no_leakage(pool: ImageSet, forbidden: set[str]) -> None:
    """Assert that no pooled image equals a forbidden one, whether that one is stored grey or colour."""
    pooled = set(image_hashes(pool.images))
    assert pooled.isdisjoint(forbidden), "a target val/test image entered the source pool"
