"""Reading what the prose quotes, for the tests that hold its numbers: Markdown sections and tables, benchmark rows,
logs and executed notebooks, and the number formats the prose uses."""

import json
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def flat(text: str) -> str:
    """``text`` with every run of whitespace one space: prose wraps its lines anywhere."""
    return " ".join(text.split())


def section(text: str, heading: str) -> str:
    """The Markdown section whose heading line starts with ``heading`` (e.g. ``"### CPU: 28 px"``), up to the next
    heading of the same or a higher level."""
    level = heading.split()[0]
    start = next(m.start() for m in re.finditer(rf"^{re.escape(heading)}", text, re.M))
    end = re.compile(rf"^#{{1,{len(level)}}} ", re.M).search(text, start + len(heading))
    return text[start:end.start() if end else len(text)]


def table(text: str, head: str) -> tuple[list[str], list[list[str]]]:
    """The header cells and body rows of the first Markdown table of ``text`` whose header line starts with
    ``head``."""
    lines = text[text.index(head):].splitlines()
    body = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        body.append(cells(line))
    return cells(lines[0]), body


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rounded(x, decimals: int = 0, thousands: bool = False) -> str:
    """``x`` (a number, or a number as a log prints it) to ``decimals`` places, halves rounded up as the prose
    rounds them by hand (814.5 s is "815 s"), with thousands separators if asked."""
    q = Decimal(str(x)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return f"{q:,}" if thousands else f"{q}"


def span(values, decimals: int = 2, sep: str = "-") -> str:
    """The smallest and largest of ``values`` as the prose gives a range ("1.27-1.40"), or the one value if they
    round alike."""
    low, high = rounded(min(values), decimals), rounded(max(values), decimals)
    return low if low == high else f"{low}{sep}{high}"


def decimals(cell: str) -> int:
    """How many decimals a quoted number has."""
    return len(cell.split(".")[1]) if "." in cell else 0


def graph_check(path: str) -> dict:
    """``{arm: (graphed, eager, ratio)}``: the last epoch's images/s of a graph check's log under
    benchmarks/results/ (``python -m benchmarks.graph_check``)."""
    return {arm: (int(g), int(e), float(x)) for arm, g, e, x in re.findall(
        r"^(\S+)\s.*last-epoch images/s (\d+) / (\d+) = ([\d.]+)x", (RESULTS / path).read_text(), re.M)}


def wall_clock(log: str) -> tuple[str, str]:
    """(minutes, seconds) of the ``/usr/bin/time -v`` wall clock in a log."""
    return re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\d+):([\d.]+)", log).groups()


def notebook_outputs(path: Path) -> list[str]:
    """The text of every output of an executed notebook (streams and text/plain), in order."""
    out = []
    for cell in json.loads(path.read_text())["cells"]:
        for o in cell.get("outputs", []):
            text = o.get("text") or o.get("data", {}).get("text/plain") or ""
            out.append("".join(text))
    return out


def missing(text: str, said: list[str]) -> list[str]:
    """The fragments of ``said`` that the whitespace-normalised ``text`` does not hold."""
    text = flat(text)
    return [s for s in said if flat(s) not in text]
