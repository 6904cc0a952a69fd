"""The numbers of Methods (book/methods.md) that come from a benchmark are held to that benchmark's record."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = (ROOT / "book" / "methods.md").read_text()


def _rows(table_head: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header line starts with ``table_head``."""
    lines = METHODS[METHODS.index(table_head):].splitlines()
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:] if line.startswith("|")][
        :next((i for i, line in enumerate(lines[2:]) if not line.startswith("|")), None)]


PROBE_CHECK = ROOT / "benchmarks" / "results" / "2026-11-28" / "cpu_probe_check.log"


def _probe_check() -> dict:
    """``{(encoder, "old" | "new"): {column: text}}`` from the probe check's log."""
    out = {}
    for m in re.finditer(r"^\s*(scratch|tl|ssl-simclr)\s+(old|new): \S+ \S+\s+(.*)$", PROBE_CHECK.read_text(), re.M):
        columns = ("val_auc", "test_auc", "balanced", "majority", "loss", "epoch", "C", "iterations", "converged",
                   "knn_auc")
        out[m.group(1), m.group(2)] = dict(zip(columns, m.group(3).split()))
    return out


def test_the_old_and_new_probe_table_is_the_logged_probe_check():
    names = {"scratch": "random", "tl": "TL", "ssl-simclr": "SimCLR"}
    logged = [[names[encoder], probe, r["val_auc"], r["test_auc"], r["balanced"], f"{100 * float(r['majority']):.1f} %",
               r["loss"], "" if r["C"] == "NaN" else f"{float(r['C']):g}"] for (encoder, probe), r in _probe_check().items()]
    assert len(logged) == 6
    assert _rows("| encoder | probe |") == logged


def test_the_sentences_on_the_probe_check_are_its_numbers():
    runs, encoders = _probe_check(), ("scratch", "tl", "ssl-simclr")

    def gain(column, encoder):
        return float(runs[encoder, "new"][column]) - float(runs[encoder, "old"][column])

    def span(column):
        return f"by {min(gain(column, e) for e in encoders):.2f} to {max(gain(column, e) for e in encoders):.2f}"

    old = {e: float(runs[e, "old"]["test_auc"]) for e in encoders}
    new = {e: float(runs[e, "new"]["test_auc"]) for e in encoders}
    said = [f"raises balanced accuracy {span('balanced')} and validation AUC {span('val_auc')}",
            "({} iterations)".format(", ".join(str(int(float(runs[e, "new"]["iterations"]))) for e in encoders[:2])
                                     + f" and {int(float(runs[encoders[2], 'new']['iterations']))}"),
            "Test AUC moved by {:+.3f} (random), {:+.3f} (TL) and {:+.3f} (SimCLR)".format(
                *(gain("test_auc", e) for e in encoders)).replace("-", "\u2212"),
            f"the old probe ranked TL first by {old['tl'] - max(old['scratch'], old['ssl-simclr']):.3f}",
            f"puts the three encoders within {max(new.values()) - min(new.values()):.3f} of each other",
            "kNN test AUCs are {} (random), {} (TL) and {} (SimCLR)".format(
                *(runs[e, "new"]["knn_auc"] for e in encoders))]
    text = " ".join(METHODS.split())
    assert [s for s in said if s not in text] == []


def test_the_pretraining_rate_sweep_in_methods_is_the_committed_one():
    import json

    from benchmarks.pretrain_lr import table

    folder = ROOT / "benchmarks" / "results" / "2026-11-29" / "cpu_pretrain_lr_quick"
    rows = [json.loads(line) for line in (folder / "pretrain_lr.jsonl").read_text().splitlines()]
    assert table(rows, 0.005) in METHODS
    run = {(r["arm"], r["scale"]): r for r in rows}
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    gains = [run[a, 0.5]["val_auc"] - run[a, 1.0]["val_auc"] for a in arms]
    bumpy = [f"`{a}`" for a in arms if run[a, 1.0]["val_auc"] < min(run[a, 0.5]["val_auc"], run[a, 2.0]["val_auc"])]
    said = [f"ahead of the method's own by {min(gains):.2f} to {max(gains):.2f}",
            f"not monotone in the rate for {', '.join(bumpy[:-1])} and {bumpy[-1]}",
            f"moves by at most {max(abs(run[a, 0.5]['knn_acc'] - run[a, 1.0]['knn_acc']) for a in arms):.3f}"]
    assert all(max((run[a, s]["val_auc"], s) for s in (0.5, 1.0, 2.0))[1] == 0.5 for a in arms)
    assert "Half the rate has the highest validation AUC for every arm" in METHODS
    text = " ".join(METHODS.split())
    assert [s for s in said if s not in text] == []
