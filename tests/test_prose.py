"""Numbers in the book's prose are held to the results they quote.

README's "Results at a glance" quotes the answer that the executed head-to-head chapter glues for the landing page
(``prose.answer`` and ``tables.answer_table``): its sentences word for word and its table cell for cell.
"""

import ast
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "book" / "results" / "03_head_to_head.ipynb"
PREFIX = "application/papermill.record/"


def glued(path: Path, name: str) -> dict:
    """The mime bundle ``myst_nb.glue`` stored under ``name`` in an executed notebook."""
    for cell in json.loads(path.read_text())["cells"]:
        for out in cell.get("outputs", []):
            if out.get("metadata", {}).get("scrapbook", {}).get("name") == name:
                return {k.removeprefix(PREFIX): v for k, v in out["data"].items()}
    raise AssertionError(f"{path.name} glues no {name!r}: execute it again with the current template")


class _Cells(HTMLParser):
    """The text of every <td> of an HTML table, in order, and how many row labels (<th>) the body's first row
    has: the columns before the cells in a Markdown copy of the table."""

    def __init__(self):
        super().__init__()
        self.cells, self._in, self.labels, self._body, self._rows = [], False, 0, False, 0

    def handle_starttag(self, tag, attrs):
        self._in = self._in or tag == "td"
        self._body = self._body or tag == "tbody"
        self._rows += self._body and tag == "tr"
        self.labels += self._body and self._rows == 1 and tag == "th"
        if tag == "td":
            self.cells.append("")

    def handle_endtag(self, tag):
        self._in = self._in and tag != "td"

    def handle_data(self, data):
        if self._in:
            self.cells[-1] += data.strip()


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_results_at_a_glance_are_chapter_3s_answer():
    cells = json.loads(CHAPTER.read_text())["cells"]
    if not any(c.get("id") == "answer-glue" for c in cells):
        pytest.skip("the committed chapter 3 predates the template that glues the answer: execute it again "
                    "(python -m medlib book --profile quick --only 03_head_to_head), then quote it in README")
    sentences = ast.literal_eval(glued(CHAPTER, "answer_text")["text/plain"])
    parser = _Cells()
    parser.feed(glued(CHAPTER, "answer_table")["text/html"])
    section = readme_section("Results at a glance")
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]  # below the header
    quoted = [cell.strip() for row in rows for cell in row.strip().strip("|").split("|")[parser.labels:]]
    assert sentences in " ".join(section.split()), f"README should say: {sentences}"
    assert quoted == parser.cells, f"README's table should hold, row by row: {parser.cells}"


def test_the_readme_quotes_the_per_seed_pages_answer_and_the_landing_page_glues_it():
    """The page with one pre-training per seed answers with the pre-training as the unit: README quotes its
    sentences word for word, and the landing page glues them from the page itself."""
    page = ROOT / "book" / "variance" / "03_head_to_head_per_seed.ipynb"
    sentences = ast.literal_eval(glued(page, "answer_text")["text/plain"])
    assert sentences.endswith("with one pre-training per seed in every interval.")
    assert sentences in " ".join(readme_section("Results at a glance").split())
    assert "{glue:text}`variance/03_head_to_head_per_seed.ipynb::answer_text:s`" in (ROOT / "book" / "intro.md").read_text()
