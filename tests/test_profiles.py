import pytest

from medlib.profiles import PROFILES, parameters
from medlib.validation import ParameterError


def test_profile_values_fill_unset_knobs():
    P = parameters({"profile": "quick", "seeds": [5], "targets": None})
    assert P.seeds == [5] and P.targets == PROFILES["quick"]["targets"]


def test_profile_defaults_to_the_environment(monkeypatch):
    monkeypatch.setenv("MEDLIB_PROFILE", "quick")
    assert parameters({}).profile == "quick"


@pytest.mark.parametrize("given, words", [
    (dict(profile="fast"), ["profile", "'fast'", "smoke, quick, full"]),
    (dict(seeds=[]), ["seeds", "empty"]),
    (dict(label_fractions=[0.5, 1.5]), ["label_fractions", "1.5", "<= 1"]),
    (dict(imbalance_ratios=[0.5]), ["imbalance_ratios", "0.5", "1 <="]),
    (dict(arms=["scratch", "moco"]), ["arms", "'moco'", "ssl-simclr"]),
    (dict(target="mnist"), ["target", "'mnist'", "breastmnist"]),
    (dict(size=32), ["size", "32", "28, 64, 128, 224"]),
    (dict(seeds=0), ["seeds", "must be a list"]),
    (dict(learning_rate=0.1), ["unknown parameter", "'learning_rate'"]),
    (dict(pretrain_per_seed=1), ["pretrain_per_seed", "1", "True, False"]),
])
def test_bad_knobs_give_one_clear_line(given, words):
    with pytest.raises(ParameterError) as e:
        parameters(given)
    assert "\n" not in str(e.value) and all(w in str(e.value) for w in words)


def test_notebook_namespace_ignores_modules_and_ipython_names():
    import os
    P = parameters({"os": os, "In": [], "_": None, "profile": "smoke", "seeds": None})
    assert P.profile == "smoke" and P.seeds == PROFILES["smoke"]["seeds"]


@pytest.mark.parametrize("per_seed", [False, True])
def test_each_seed_adapts_one_shared_or_its_own_pre_training(per_seed):
    from medlib.study import adapt_configs
    P = parameters(profile="quick", pretrain_per_seed=per_seed)
    configs = adapt_configs(P, "breastmnist", arms=["scratch", "ssl-byol"], protocols=["linear"])
    byol = [c for c in configs if c.arm == "ssl-byol"]
    assert [c.seed for c in byol] == [0, 1, 2]
    assert [c.pretrain.seed for c in byol] == ([0, 1, 2] if per_seed else [0, 0, 0])
    assert all(c.pretrain is None for c in configs if c.arm == "scratch")


def test_every_knob_has_its_help_once_and_each_chapters_parameters_cell_is_written_from_it():
    """A knob's help is written once (profiles.KNOBS); a chapter's parameters cell is exactly the cell
    ``parameters_cell`` writes for the knobs it lists, so no chapter tells a knob's meaning its own way."""
    import json
    import re
    from pathlib import Path

    from medlib import profiles

    assert all(knob.help and callable(knob.check) for knob in profiles.KNOBS.values())
    for template in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cell = next(c for c in json.loads(template.read_text())["cells"]
                    if "parameters" in c["metadata"].get("tags", []))
        source = "".join(cell["source"])
        names = re.findall(r"^(\w+) = ", source, re.M)
        assert source == profiles.parameters_cell(names), template.name


def test_no_knob_help_holds_an_equals_sign():
    """papermill reads a parameters line with two "=" as no parameter (a warning on every run)."""
    from medlib import profiles

    assert not [name for name, knob in profiles.KNOBS.items() if "=" in knob.help]
