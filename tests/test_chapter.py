"""Every chapter opens with one call (chapter.start) and closes with one call each (chapter.resolved,
chapter.provenance)."""

import json
from pathlib import Path

import pytest

from medlib import chapter, prose
from medlib.validation import ParameterError

TEMPLATES = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_start_resolves_the_parameters_cell_shows_the_profiles_note_and_refuses_a_bad_value(monkeypatch):
    shown = []
    monkeypatch.setattr(chapter, "display", shown.append)
    P = chapter.start({"profile": "smoke", "seeds": None, "size": 28})
    assert P.seeds == [0] and P.size == 28 and P.given == ["profile", "seeds", "size"]
    assert [m.data for m in shown] == [prose.profile_note("smoke")]  # the note, shown as the cell's output
    assert list(chapter.resolved(P).index) == ["profile", "seeds", "size"]
    table = chapter.provenance(P).set_index("item")["value"]
    assert table["profile"] == "smoke" and "seeds=[0]" in table["parameters"]
    with pytest.raises(ParameterError, match="size=27 is not allowed"):
        chapter.start({"profile": "smoke", "size": 27})


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.stem)
def test_each_template_opens_and_closes_with_one_call(template):
    sources = ["".join(c["source"]) for c in json.loads(template.read_text())["cells"] if c["cell_type"] == "code"]
    assert sources[1].endswith("P = chapter.start(globals())  # None -> the profile's value; a bad value stops here "
                               "with the allowed values")
    assert sources[-2:] == ["chapter.resolved(P)", "chapter.provenance(P)"]
