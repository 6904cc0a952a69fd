"""The book runner: execute the chapter templates with papermill, then render them with Jupyter Book.

Each template ``notebooks/NN_name.ipynb`` is executed with a profile and parameters into
``book/results/NN_name.ipynb``; ``jupyter-book build . -W`` then renders those executed notebooks
(the book itself never re-executes). The kernels run from the repository root; ``MEDLIB_RUNS`` and
``MEDLIB_DATA`` reach them as absolute paths, a relative one taken from the working directory as the CLI takes it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import papermill
from papermill.exceptions import PapermillExecutionError

from medlib.data import data_root
from medlib.profiles import PROFILES
from medlib.store import RunStore, atomic_write, runs_root
from medlib.validation import ParameterError, check_choice

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
RESULTS = ROOT / "book" / "results"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


REFUSALS = ("ParameterError", "DataError", "StoreError", "NonFiniteLoss")
"""medlib's own refusals: their message says all, so a chapter that stops on one reports it in one line."""


class ChapterFailed(RuntimeError):
    """A chapter's notebook raised; carries the chapter name, the failing cell's error and the executed notebook.

    One line for one of medlib's :data:`REFUSALS`; the last lines of the traceback for anything else."""

    def __init__(self, chapter: str, ename: str, evalue: str, traceback: str, output: Path):
        self.chapter, self.ename, self.evalue, self.traceback, self.output = chapter, ename, evalue, traceback, output
        where = f"(executed notebook: {output})"
        super().__init__(f"chapter {chapter} failed: {ename}: {evalue} {where}" if ename in REFUSALS else
                         f"chapter {chapter} failed: {ename}: {evalue}\n{traceback}\n{where}")


def chapters(notebooks_dir: Path = NOTEBOOKS) -> list[str]:
    """Names of the chapter templates ``NN_*.ipynb`` in book order, without the suffix."""
    return sorted(p.stem for p in Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))


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
    execution (:class:`ParameterError`); a failing cell raises :class:`ChapterFailed` and leaves the previous
    executed chapter in ``output_dir`` as it was (papermill writes into a temporary folder, named in the error; only
    a chapter that ran to its end replaces the old one). The kernel runs from the repository root with
    ``MEDLIB_PROFILE`` set, and ``MEDLIB_RUNS`` and ``MEDLIB_DATA`` made absolute against the working directory, so
    that relative paths mean what they mean to the CLI. Returns the executed notebook's path.
    """
    check_choice("profile", profile, PROFILES)
    template = Path(notebooks_dir) / f"{name}.ipynb"
    declared = papermill.inspect_notebook(str(template))
    unknown = sorted(set(parameters or {}) - set(declared))
    if unknown:
        raise ParameterError(f"{name} has no parameter {', '.join(unknown)}; "
                             f"allowed: {', '.join(declared) or '(none declared)'}")
    output = Path(output_dir) / template.name
    executed = Path(tempfile.mkdtemp(prefix=f"medlib-{name}-")) / template.name
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    paths = dict(MEDLIB_RUNS=str(runs_root()), MEDLIB_DATA=str(data_root().absolute()))
    try:
        with _environ(MEDLIB_PROFILE=profile, PYTHONPATH=pythonpath, **paths):
            papermill.execute_notebook(str(template), str(executed),
                                       parameters={**(parameters or {}), "profile": profile},
                                       kernel_name="python3", cwd=str(ROOT), progress_bar=False,
                                       log_output=False, execution_timeout=None,
                                       # no kernel start-up chatter
                                       extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    except PapermillExecutionError as err:
        tail = "\n".join(_ANSI.sub("", "\n".join(err.traceback)).splitlines()[-8:])
        raise ChapterFailed(name, err.ename, err.evalue, tail, executed) from None
    fold_injected_parameters(executed)
    redact_machine_paths(executed)
    atomic_write(output, executed.read_bytes())
    shutil.rmtree(executed.parent)
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


def redact_machine_paths(path: Path) -> None:
    """Name this machine's folders in an executed notebook's outputs by what sets them (``MEDLIB_DATA``,
    ``MEDLIB_RUNS``, torch's hub cache), so that a rendered page shows no machine path."""
    import torch

    names = {str(data_root().absolute()): "$MEDLIB_DATA", str(runs_root()): "$MEDLIB_RUNS",
             torch.hub.get_dir(): "<torch's hub cache>"}
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            for key, value in [("text", out.get("text"))] + list(out.get("data", {}).items()):
                if isinstance(value, str) and any(folder in value for folder in names):
                    for folder, name in names.items():
                        value = value.replace(folder, name)
                    (out if key == "text" else out["data"])[key] = value
    nbformat.write(nb, path)


def run_book(profile: str, only: list[str] | None = None, build: bool = True, output_dir: Path = RESULTS,
             notebooks_dir: Path = NOTEBOOKS) -> Path:
    """Execute every chapter (or those in ``only``) in book order, then ``jupyter-book build . -W``.

    Prints one line per chapter with its wall time and stops at the first failing chapter
    (:class:`ChapterFailed`). Returns the HTML index, or ``output_dir`` when ``build`` is false.
    """
    check_choice("profile", profile, PROFILES)
    RunStore().check_writable()  # before the first chapter, not inside it
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
