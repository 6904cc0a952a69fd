"""What every chapter opens and closes with: its parameters resolved and checked, with a note on how much weight
its numbers bear; at its end, the parameters it was given as resolved, and the provenance of its outputs."""

from __future__ import annotations

import types

import pandas as pd
from IPython.display import Markdown, display

from . import provenance as _provenance
from .profiles import parameters
from .prose import profile_note


def start(namespace: dict) -> types.SimpleNamespace:
    """The chapter's parameters: the knobs of its parameters cell in ``namespace`` (a notebook's ``globals()``),
    each ``None`` taking the profile's value and a bad value stopped here in one line
    (:func:`medlib.profiles.parameters`). Tables then show every row and cell in full, and the profile's note
    (:func:`medlib.prose.profile_note`) is shown."""
    P = parameters(namespace)
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.max_rows", None)
    display(Markdown(profile_note(P.profile)))
    return P


def resolved(P: types.SimpleNamespace) -> pd.DataFrame:
    """The parameters the chapter was given, as the profile resolved them: one row each."""
    return pd.DataFrame({"value": {k: getattr(P, k) for k in P.given}})


def provenance(P: types.SimpleNamespace) -> pd.DataFrame:
    """What produced the chapter's outputs (:func:`medlib.provenance.provenance`): its profile and every resolved
    parameter, the code, the device, the wall time since :func:`start` and the run store's results."""
    return _provenance.provenance({k: v for k, v in vars(P).items() if k not in ("started", "given")}, P.started)
