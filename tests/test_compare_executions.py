"""benchmarks/compare_executions.py on chapter-3 tables rendered by medlib itself from made-up runs (no training)."""

import json
import time

import nbformat
import numpy as np
import pandas as pd
import pytest

from benchmarks import compare_executions
from medlib import plots, tables
from medlib.experiment import summarize
from medlib.metrics import METRICS
from medlib.provenance import provenance

CONDITIONS = [(t, a, p) for t in ("breastmnist", "retinamnist") for a in ("scratch", "tl", "ssl-simclr")
              for p in ("linear", "finetune")]


def executed_chapter(path, shift: float) -> dict[tuple, float]:
    """A notebook holding chapter 3's results table (as the chapter renders it) and a provenance table; returns
    the mean test AUC per (target, arm label, protocol label) that the table must show."""
    rng = np.random.default_rng(0)
    rows = [dict(target=t, arm=a, protocol=p, seed=s, skipped=None, **{m: rng.uniform(0.5, 0.9) for m in METRICS},
                 **{f"majority_{m}": 0.5 for m in METRICS}) for t, a, p in CONDITIONS for s in range(3)]
    runs = pd.DataFrame(rows)
    runs.loc[runs["arm"] != "scratch", "auc"] += shift
    summary = summarize(runs, ["target", "arm", "protocol"])
    shown = tables.table(summary, decimals=2, baseline=tables.majority(runs, ["target"]))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
        nbformat.v4.new_output("display_data", {"text/html": frame._repr_html_()})])
        for frame in (shown, provenance({"profile": "quick"}, time.time()))])
    path.write_text(json.dumps(nb))
    return {(t, plots.arm_label(a), plots.PROTOCOL_LABELS[p]): round(v, 2)
            for (t, a, p), v in summary.set_index(["target", "arm", "protocol"])["auc_mean"].items()}


def test_the_results_table_is_read_back_with_its_sparse_index(tmp_path):
    expected = executed_chapter(tmp_path / "a.ipynb", 0.0)
    nb = compare_executions.read_notebook(str(tmp_path / "a.ipynb"))
    assert compare_executions.auc_table(nb) == pytest.approx(expected)  # every condition, no majority-class row
    assert "device" in compare_executions.provenance_items(nb)


def test_spreads_are_summarised_per_arm_kind_and_protocol(tmp_path):
    executed_chapter(tmp_path / "a.ipynb", 0.0)
    executed_chapter(tmp_path / "b.ipynb", 0.05)  # pre-trained arms 0.05 higher, scratch unchanged
    about, df, summary = compare_executions.compare([str(tmp_path / "a.ipynb"), str(tmp_path / "b.ipynb")])
    assert len(about) == 2 and len(df) == len(CONDITIONS)
    assert summary.loc[("Scratch (random init)", "Linear probe"), "largest_spread"] == pytest.approx(0.0)
    assert summary.loc[("pre-trained", "Fine-tuning"), "median_spread"] == pytest.approx(0.05, abs=0.011)


def test_an_unknown_execution_is_named_in_the_error(tmp_path):
    with pytest.raises(SystemExit, match="'no-such-rev' is neither a notebook file nor a git revision"):
        compare_executions.read_notebook("no-such-rev")
