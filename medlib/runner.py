"""The book runner: execute the chapter templates with papermill, then render them with Jupyter Book.

Each template ``notebooks/NN_name.ipynb`` is executed with a profile and parameters into
``book/results/NN_name.ipynb``; ``jupyter-book build . -W`` then renders those executed notebooks
(the book itself never re-executes). Relative default paths are taken from the repository root.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import papermill
from papermill.exceptions import PapermillExecutionError

from medlib.validation import ParameterError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
RESULTS = ROOT / "book" / "results"
PROFILES = ("smoke", "quick", "full")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class ChapterFailed(RuntimeError):
    """A chapter's notebook raised; carries the chapter name and the failing cell's error."""

    def __init__(self, chapter: str, ename: str, evalue: str, traceback: str, output: Path):
        self.chapter, self.ename, self.evalue, self.traceback, self.output = chapter, ename, evalue, traceback, output
        super().__init__(f"chapter {chapter} failed: {ename}: {evalue}\n{traceback}\n(executed notebook: {output})")


def chapters(notebooks_dir: Path = NOTEBOOKS) -> list[str]:
    """Names of the chapter templates ``NN_*.ipynb`` in book order, without the suffix."""
    return sorted(p.stem for p in Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))


def _check_profile(profile: str) -> None:
    if profile not in PROFILES:
        raise ParameterError(f"profile={profile!r} is not allowed; choose one of: {', '.join(PROFILES)}")


@contextlib.contextmanager
def _environ(**values: str):
    """Set environment variables (inherited by the papermill kernel) for the duration of the block."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_chapter(name: str, profile: str, parameters: dict | None = None, output_dir: Path = RESULTS,
                notebooks_dir: Path = NOTEBOOKS) -> Path:
    """Execute ``notebooks_dir/<name>.ipynb`` with ``profile`` and ``parameters`` into ``output_dir``.

    Parameter names the template's ``parameters`` cell does not declare are refused before any
    execution (:class:`ParameterError`); a failing cell raises :class:`ChapterFailed`. The kernel runs
    from the repository root with ``MEDLIB_PROFILE`` set. Returns the executed notebook's path.
    """
    _check_profile(profile)
    template = Path(notebooks_dir) / f"{name}.ipynb"
    declared = papermill.inspect_notebook(str(template))
    unknown = sorted(set(parameters or {}) - set(declared))
    if unknown:
        raise ParameterError(f"{name} has no parameter {', '.join(unknown)}; "
                             f"allowed: {', '.join(declared) or '(none declared)'}")
    output = Path(output_dir) / template.name
    output.parent.mkdir(parents=True, exist_ok=True)
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    try:
        with _environ(MEDLIB_PROFILE=profile, PYTHONPATH=pythonpath):
            papermill.execute_notebook(str(template), str(output), parameters={**(parameters or {}), "profile": profile},
                                       kernel_name="python3", cwd=str(ROOT), progress_bar=False,
                                       log_output=False, execution_timeout=None,
                                       extra_arguments=["--IPKernelApp.log_level=CRITICAL"])  # no kernel start-up chatter
    except PapermillExecutionError as err:
        tail = "\n".join(_ANSI.sub("", "\n".join(err.traceback)).splitlines()[-8:])
        raise ChapterFailed(name, err.ename, err.evalue, tail, output) from None
    fold_injected_parameters(output)
    return output


def fold_injected_parameters(path: Path) -> None:
    """Fold papermill's injected-parameters cell behind a "show" toggle in the book (tag ``hide-input``): the
    chapter shows its resolved parameters in a table of its own, and the cell stays one click away."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "injected-parameters" in tags and "hide-input" not in tags:
            cell.metadata["tags"] = [*tags, "hide-input"]
    nbformat.write(nb, path)


def run_book(profile: str, only: list[str] | None = None, build: bool = True, output_dir: Path = RESULTS,
             notebooks_dir: Path = NOTEBOOKS) -> Path:
    """Execute every chapter (or those in ``only``) in book order, then ``jupyter-book build . -W``.

    Prints one line per chapter with its wall time and stops at the first failing chapter
    (:class:`ChapterFailed`). Returns the HTML index, or ``output_dir`` when ``build`` is false.
    """
    _check_profile(profile)
    names = chapters(notebooks_dir)
    if only:
        unknown = [n for n in only if n not in names]
        if unknown:
            raise ParameterError(f"unknown chapter {', '.join(unknown)}; choose from: {', '.join(names)}")
        names = [n for n in names if n in only]
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name} ({profile}) ...", end=" ", flush=True)
        start = time.time()
        try:
            run_chapter(name, profile, output_dir=output_dir, notebooks_dir=notebooks_dir)
        except ChapterFailed:
            print(f"FAILED after {time.time() - start:.1f} s", flush=True)
            raise
        print(f"done in {time.time() - start:.1f} s", flush=True)
    if not build:
        return Path(output_dir)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")  # the one beside this Python, if any
    subprocess.run([str(jupyter_book) if jupyter_book.exists() else "jupyter-book", "build", ".", "-W"],
                   cwd=ROOT, check=True)
    index = ROOT / "_build" / "html" / "index.html"
    print(f"book: {index}")
    return index
