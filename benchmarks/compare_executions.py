"""How far executions of the book agree: chapter 3's mean test AUC per condition in executed notebooks, side by side.

``compare_stores`` needs both run stores; once a store is gone, only the executed chapters remain, and git keeps
every execution of them. This reads chapter 3's results table (means to two decimals, as the book shows them)
from each execution, given as a git revision (its ``book/results/03_head_to_head.ipynb``) or a notebook's path,
and prints each execution's code, device and precision (from the chapter's provenance), the mean test AUC per
(target, protocol, arm) in each, the spread (largest minus smallest), and the median and largest spread per arm
kind and protocol. Scratch's random encoder is the same in every execution, so its spread is what float rounding
alone does to adaptation; a pre-trained arm's adds how differently its pre-training turned out.

    python -m benchmarks.compare_executions 7ba9489 f468de6 HEAD
"""

from __future__ import annotations

import argparse
import html
import json
import re
import subprocess
from pathlib import Path

import pandas as pd

CHAPTER = "book/results/03_head_to_head.ipynb"
LEVELS = ("target", "arm", "protocol")


def read_notebook(execution: str, chapter: str = CHAPTER) -> dict:
    """The executed chapter: ``execution`` is a notebook's path, or a git revision whose ``chapter`` is read."""
    if Path(execution).is_file():
        return json.loads(Path(execution).read_text())
    shown = subprocess.run(["git", "show", f"{execution}:{chapter}"], capture_output=True, text=True)
    if shown.returncode:
        raise SystemExit(f"{execution!r} is neither a notebook file nor a git revision holding {chapter}: "
                         f"{shown.stderr.strip()}")
    return json.loads(shown.stdout)


def _html_tables(nb: dict) -> list[str]:
    return ["".join(o["data"]["text/html"]) for c in nb["cells"] if c["cell_type"] == "code"
            for o in c.get("outputs", []) if "text/html" in o.get("data", {})]


def _cells(row: str, tag: str) -> list[str]:
    """The text of each ``<tag>`` element (th or td) in ``row``."""
    found = re.findall(rf"<{tag}(?:\s[^>]*)?>(.*?)</{tag}>", row, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", t)).strip() for t in found]


def auc_table(nb: dict) -> dict[tuple[str, str, str], float]:
    """Mean test AUC per (target, arm, protocol) from the chapter's results table (pandas' HTML, whose repeated
    index values are left out of the rows after the first); the majority-class rows are left out."""
    for table in _html_tables(nb):
        head, _, body = table.partition("<tbody>")
        columns = [c for c in _cells(head.split("</tr>")[0], "th") if c]
        if "AUC" not in columns:
            continue
        auc, index, means = columns.index("AUC"), [""] * len(LEVELS), {}
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
            keys = _cells(row, "th")
            index = index[:len(LEVELS) - len(keys)] + keys
            if index[-1] != "—":  # the majority class has no protocol
                means[tuple(index)] = float(_cells(row, "td")[auc].split("±")[0])
        return means
    raise SystemExit("no results table with an AUC column in this notebook (is it chapter 3?)")


def provenance_items(nb: dict) -> dict[str, str]:
    """The chapter's provenance table (item -> value), e.g. "git commit", "device"."""
    for table in reversed(_html_tables(nb)):
        rows = {r[0]: r[1] for r in (_cells(row, "td") for row in re.findall(r"<tr>(.*?)</tr>", table, re.S))
                if len(r) == 2}
        if "git commit" in rows:
            return rows
    return {}


def compare(executions: list[str], chapter: str = CHAPTER) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(each execution's code and device, one row per condition found in all of them, the spread summary)."""
    notebooks = {e: read_notebook(e, chapter) for e in executions}
    items = {e: provenance_items(nb) for e, nb in notebooks.items()}
    about = pd.DataFrame({e: {k: items[e].get(k, "?") for k in ("git commit", "device", "run store")}
                          for e in executions}).T
    tables = {e: auc_table(nb) for e, nb in notebooks.items()}
    shared = sorted(set.intersection(*(set(t) for t in tables.values())))
    if not shared:
        raise SystemExit(f"no (target, arm, protocol) is in every one of {executions}")
    df = pd.DataFrame([dict(zip(LEVELS, k), **{e: tables[e][k] for e in executions}) for k in shared])
    df["spread"] = df[executions].max(axis=1) - df[executions].min(axis=1)
    kind = df["arm"].where(df["arm"].str.startswith("Scratch"), "pre-trained")
    summary = df.assign(kind=kind).groupby(["kind", "protocol"])["spread"].agg(
        conditions="count", median_spread="median", largest_spread="max")
    return about, df.set_index(["target", "protocol", "arm"]).sort_index(), summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("executions", nargs="+", help="git revisions or executed notebooks, two or more")
    parser.add_argument("--chapter", default=CHAPTER, help=f"the notebook read at each revision (default {CHAPTER})")
    args = parser.parse_args(argv)
    if len(args.executions) < 2:
        parser.error("give two or more executions to compare")
    about, df, summary = compare(args.executions, args.chapter)
    with pd.option_context("display.max_colwidth", None, "display.width", 200):
        print(about.to_string())
        print()
        print(df.round(2).to_string())
        print()
        print(summary.round(3).to_string())


if __name__ == "__main__":
    main()
