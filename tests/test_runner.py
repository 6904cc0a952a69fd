"""The book runner on tiny throw-away notebooks, the provenance table, and the chapter templates' markers."""

import json
import re
import time
from collections import Counter

import nbformat
import pytest

from medlib.provenance import provenance
from medlib.runner import NOTEBOOKS, ChapterFailed, chapters, run_book, run_chapter
from medlib.validation import ParameterError


def write_notebook(path, *sources):
    """A notebook whose first cell is the tagged parameters cell, followed by ``sources``."""
    params = nbformat.v4.new_code_cell('profile = "smoke"\nn = 1', metadata={"tags": ["parameters"]})
    cells = [params] + [nbformat.v4.new_code_cell(s) for s in sources]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                         "display_name": "Python 3"}})
    nbformat.write(nb, path)


def outputs_text(path):
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_run_chapter_injects_parameters_and_profile(tmp_path):
    write_notebook(tmp_path / "01_ok.ipynb", 'import os\nprint(profile, n, os.environ["MEDLIB_PROFILE"])')
    out = run_chapter("01_ok", "quick", {"n": 3}, output_dir=tmp_path / "out", notebooks_dir=tmp_path)
    assert out == tmp_path / "out" / "01_ok.ipynb"
    assert "quick 3 quick" in outputs_text(out)
    injected = [c for c in nbformat.read(out, as_version=4).cells
                if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "hide-input" in injected[0].metadata["tags"]  # folded in the book


def test_unknown_parameter_is_refused_before_execution(tmp_path):
    write_notebook(tmp_path / "01_ok.ipynb", "print(n)")
    with pytest.raises(ParameterError, match=r"no parameter bogus; allowed: profile, n$"):
        run_chapter("01_ok", "smoke", {"bogus": 1}, output_dir=tmp_path / "out", notebooks_dir=tmp_path)
    assert not (tmp_path / "out").exists()


def test_failing_cell_raises_chapter_failed_and_later_chapters_do_not_run(tmp_path, capsys):
    write_notebook(tmp_path / "01_ok.ipynb", "print(n)")
    write_notebook(tmp_path / "02_bad.ipynb", 'raise ValueError("boom")')
    write_notebook(tmp_path / "03_after.ipynb", "print(n)")
    with pytest.raises(ChapterFailed, match="chapter 02_bad failed: ValueError: boom") as err:
        run_book("smoke", build=False, output_dir=tmp_path / "out", notebooks_dir=tmp_path)
    assert (err.value.chapter, err.value.ename, err.value.evalue) == ("02_bad", "ValueError", "boom")
    assert "ValueError" in err.value.traceback
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["01_ok.ipynb"]
    assert "boom" in err.value.output.read_text()  # the failed execution is kept elsewhere, and named
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"\[1/3\] 01_ok \(smoke\) \.\.\. done in \d+\.\d s", lines[0])
    assert re.fullmatch(r"\[2/3\] 02_bad \(smoke\) \.\.\. FAILED after \d+\.\d s", lines[1])


def test_a_failing_chapter_leaves_the_last_good_one_in_place(tmp_path):
    write_notebook(tmp_path / "01_ch.ipynb", 'print("the good execution")')
    good = run_chapter("01_ch", "smoke", output_dir=tmp_path / "out", notebooks_dir=tmp_path)
    before = good.read_bytes()
    write_notebook(tmp_path / "01_ch.ipynb", 'print("half way")\nraise ValueError("boom")')
    with pytest.raises(ChapterFailed) as err:
        run_chapter("01_ch", "smoke", output_dir=tmp_path / "out", notebooks_dir=tmp_path)
    assert good.read_bytes() == before and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["01_ch.ipynb"]
    assert err.value.output != good and "half way" in outputs_text(err.value.output)


def test_a_refusal_inside_a_chapter_is_one_line(tmp_path, capsys):
    """A bad parameter reaches the chapter's parameters() as papermill's ParameterError: one line, no traceback."""
    write_notebook(tmp_path / "01_ch.ipynb", "from medlib.profiles import parameters\nparameters(seeds=[0, 0])")
    with pytest.raises(ChapterFailed) as err:
        run_book("smoke", build=False, output_dir=tmp_path / "out", notebooks_dir=tmp_path)
    assert str(err.value).startswith("chapter 01_ch failed: ParameterError: seeds=[0, 0] lists 0 more than once")
    assert "\n" not in str(err.value) and "Traceback" not in capsys.readouterr().err


def test_relative_run_store_and_data_paths_mean_the_same_to_the_cli_and_the_book(tmp_path, monkeypatch):
    """The kernels run from the repository root; a relative MEDLIB_RUNS / MEDLIB_DATA is taken from the working
    directory the user typed it in, as the CLI takes it."""
    from medlib.data import data_root
    from medlib.store import RunStore

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEDLIB_RUNS", "my-runs")
    monkeypatch.setenv("MEDLIB_DATA", "my-data")
    write_notebook(tmp_path / "01_ch.ipynb", "from medlib.data import data_root\nfrom medlib.store import RunStore\n"
                                             "print(*RunStore().root.resolve().parts, '|',\n"
                                             "      *data_root().resolve().parts)")
    out = run_chapter("01_ch", "smoke", output_dir=tmp_path / "out", notebooks_dir=tmp_path)
    # as parts: the runner names the whole folders $MEDLIB_RUNS / $MEDLIB_DATA in outputs (no machine path shown)
    assert outputs_text(out).split() == [*(tmp_path / "my-runs").parts, "|", *(tmp_path / "my-data").parts]
    assert (RunStore().root.resolve(), data_root().resolve()) == (tmp_path / "my-runs", tmp_path / "my-data")


def test_only_and_profile_are_checked(tmp_path):
    for name in ("01_a", "02_b"):
        write_notebook(tmp_path / f"{name}.ipynb")
    assert chapters(tmp_path) == ["01_a", "02_b"]
    with pytest.raises(ParameterError, match="unknown chapter 03_c; choose from: 01_a, 02_b"):
        run_book("smoke", only=["03_c"], build=False, notebooks_dir=tmp_path)
    with pytest.raises(ParameterError, match="profile='huge' is not allowed; choose one of: smoke, quick, full"):
        run_book("huge", build=False, notebooks_dir=tmp_path)


def test_provenance_lists_its_items():
    table = provenance({"profile": "smoke", "seeds": [0, 1]}, time.time() - 2)
    assert list(table.columns) == ["item", "value"]
    values = dict(zip(table["item"], table["value"]))
    assert list(values) == ["profile", "parameters", "medlib version", "git commit", "device", "torch version",
                            "wall time", "run store"]
    assert values["profile"] == "smoke" and values["parameters"] == "seeds=[0, 1]"
    assert re.fullmatch(r"[0-9a-f]{7,}(-dirty)?|unknown", values["git commit"])
    assert re.fullmatch(r"\d+\.\d s", values["wall time"]) and float(values["wall time"][:-2]) >= 2
    assert re.match(r"\d+ results computed in this execution, \d+ read from the store .*; results by the commit "
                    r"that computed them: ", values["run store"])


def test_the_store_counts_what_it_reads_and_computes(tmp_path):
    from medlib.store import USAGE, RunStore

    store, before = RunStore(tmp_path), dict(USAGE)
    store.cached("adapt", {"a": 1}, lambda run_dir: {"x": 1})
    store.cached("adapt", {"a": 1}, lambda run_dir: {"x": 2})
    assert USAGE["computed"] - before["computed"] == 1 and USAGE["read"] - before["read"] == 1


def test_a_run_records_the_commit_that_computed_it_and_chapters_count_them(tmp_path):
    from medlib.provenance import commits
    from medlib.revision import git_commit
    from medlib.store import NOT_RECORDED, USAGE, RunStore, write_result

    store, before = RunStore(tmp_path), USAGE["commits"].copy()
    store.cached("adapt", {"a": 1}, lambda run_dir: {"x": 1})
    store.cached("adapt", {"a": 1}, lambda run_dir: {"x": 2})
    assert json.loads((store.path("adapt", {"a": 1}) / "config.json").read_text())["commit"] == git_commit()
    older = store.path("adapt", {"a": 2})  # a run stored before runs recorded their commit
    older.mkdir(parents=True)
    (older / "config.json").write_text(json.dumps({"kind": "adapt", "config": {"a": 2}}))
    write_result(older / "result.json", {"x": 3})
    assert store.cached("adapt", {"a": 2}, lambda run_dir: {"x": 4}) == {"x": 3}
    assert {row["key"]: row["commit"] for row in store.runs("adapt")} == \
        {store.path("adapt", {"a": 1}).name: git_commit(), older.name: NOT_RECORDED}
    damaged = store.path("adapt", {"a": 3})  # a result whose config.json cannot be read still counts
    damaged.mkdir(parents=True)
    (damaged / "config.json").write_text('{"half": ')
    write_result(damaged / "result.json", {"x": 5})
    assert store.cached("adapt", {"a": 3}, lambda run_dir: {"x": 6}) == {"x": 5}
    assert USAGE["commits"] - before == Counter({git_commit(): 2, NOT_RECORDED: 2})
    assert commits(Counter({"2f52557": 12, "9bc0b0a": 40, NOT_RECORDED: 1})) == \
        "9bc0b0a x 40, 2f52557 x 12, not recorded x 1"


@pytest.mark.parametrize("name", chapters())
def test_every_chapter_has_nbval_checked_cells_and_a_parameters_cell(name):
    """nbval --nbval-lax checks only tagged cells: a chapter without them would pass whatever it computes."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    checked = [c for c in code if "nbval-check-output" in c.metadata.get("tags", [])]
    assert checked and all(c.outputs for c in checked), f"{name}: no checked cell with stored outputs"
    assert not any("NBVAL_CHECK_OUTPUT" in c.source for c in code), "tag the cell: a comment shows in the HTML"


EXECUTED_PAGES = [page for part in ("results", "variance", "tuning")
                  for page in sorted((NOTEBOOKS.parent / "book" / part).glob("*.ipynb"))]


@pytest.mark.parametrize("path", [NOTEBOOKS / f"{name}.ipynb" for name in chapters()] + EXECUTED_PAGES,
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_table_cell_of_a_chapter_is_cut_short(path):
    """pandas shortens a long cell to its first 50 characters and '...' unless told not to, which cut every
    chapter's parameters and run-store provenance. The templates' stored outputs (executed under smoke) and the
    book's executed quick pages show all (the GPU page was executed before the fix and needs a GPU to run again)."""
    nb = nbformat.read(path, as_version=4)
    html = [o["data"]["text/html"] for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if "text/html" in o.get("data", {})]
    assert html and not [cell for h in html for cell in re.findall(r"<td>[^<]*</td>", "".join(h)) if
                         cell.endswith("...</td>")]


MACHINE_PATH = re.compile(r"(/root/|/tmp/|/work/|/home/)")


def test_an_executed_chapter_shows_no_machine_path(real_data, tmp_path):
    """Chapter 1 names the data root, the files and the source pools: a reader sees none of this machine's paths
    (the skip note of an offline imagenet arm is held to the same by test_reliability's imagenet test)."""
    out = run_chapter("01_data", "smoke", output_dir=tmp_path)
    shown = [json.dumps(o) for c in nbformat.read(out, as_version=4).cells if c.cell_type == "code"
             for o in c.outputs]
    assert shown and not [m.group(0) for s in shown for m in [MACHINE_PATH.search(s)] if m]


def test_an_executed_chapter_names_machine_folders_by_what_sets_them(tmp_path, monkeypatch):
    """A chapter that prints the data root, the run store or torch's hub folder shows their variables instead."""
    import torch

    monkeypatch.setenv("MEDLIB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("MEDLIB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    write_notebook(tmp_path / "01_paths.ipynb", "import os, torch\n"
                   "print(os.environ['MEDLIB_DATA'], os.environ['MEDLIB_RUNS'])",
                   f"print('weights not in {tmp_path / 'hub'}/checkpoints')")
    out = run_chapter("01_paths", "smoke", output_dir=tmp_path / "out", notebooks_dir=tmp_path)
    assert outputs_text(out) == "$MEDLIB_DATA $MEDLIB_RUNS\nweights not in <torch's hub cache>/checkpoints\n"
