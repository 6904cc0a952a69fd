"""Every benchmark script runs the way its docstring tells a reader to: ``python -m benchmarks.<name>`` from the
repository root, with nothing on PYTHONPATH."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_runs_as_its_docstring_says(name):
    doc = ast.get_docstring(ast.parse((ROOT / "benchmarks" / f"{name}.py").read_text()))
    assert f"python -m benchmarks.{name}" in doc, f"benchmarks/{name}.py's docstring does not say how to run it"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--help"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage:")


DOCS = ["README.md", "RELIABILITY.md", "benchmarks/README.md", "benchmarks/medmnist_baseline.md",
        *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "book").glob("*.md")))]


@pytest.mark.parametrize("doc", DOCS)
def test_every_benchmark_file_a_document_cites_exists(doc):
    """A path in backticks (`benchmarks/...`, or `results/...` in benchmarks/README.md) names a file or folder
    that is in the repository; ``<date>``-style placeholders and wildcards are left alone."""
    text = (ROOT / doc).read_text()
    cited = re.findall(r"`(benchmarks/[^`\s]+)`", text)
    if doc.startswith("benchmarks/"):
        cited += [f"benchmarks/{p}" for p in re.findall(r"`(results/[^`\s]+)`", text)]
    cited = [p for p in cited if not re.search(r"[<*{]", p)]
    assert [p for p in cited if not (ROOT / p).exists()] == []


def test_raw_results_sit_in_dated_folders():
    """Besides scripts and their notes, benchmarks/ holds raw results only under results/<YYYY-MM-DD>/."""
    loose = [p.name for p in (ROOT / "benchmarks").iterdir()
             if p.suffix not in (".py", ".sh", ".md") and p.name not in ("results", "__pycache__")]
    assert loose == []
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.name) for p in (ROOT / "benchmarks" / "results").iterdir())
