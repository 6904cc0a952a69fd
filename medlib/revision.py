"""Which code is running: the git commit of the checkout medlib is imported from."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from pathlib import Path

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


@lru_cache(maxsize=1)
def code_commit() -> str:
    """:func:`git_commit` asked once per process: the modules it has imported do not change (what a run store
    records as the code that computed a run)."""
    return git_commit()
