"""Every chapter template has a text twin, ``notebooks/text/NN_name.md`` (a MyST Markdown notebook, jupytext's
``md:myst``), so that a change to a chapter is reviewed as text: the twin must be exactly the template's inputs.
``jupytext --sync notebooks/*.ipynb`` writes whichever side is older from the newer one."""

from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
TEMPLATES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.stem)
def test_the_text_twin_is_the_templates_inputs(template):
    nb = nbformat.read(template, as_version=4)
    assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,text//md:myst", \
        f"{template.name} is not paired with its text twin"
    twin = NOTEBOOKS / "text" / f"{template.stem}.md"
    assert twin.exists(), f"{twin} is missing: jupytext --sync {template}"
    assert twin.read_text() == jupytext.writes(nb, fmt="md:myst"), \
        f"{twin.name} and {template.name} differ: jupytext --sync {template} (the newer side wins)"


def test_the_twins_are_the_templates_and_no_more():
    assert sorted(p.stem for p in (NOTEBOOKS / "text").glob("*.md")) == [p.stem for p in TEMPLATES]
