"""Parameter checks that run before any expensive work: one clear line per bad value."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


class ParameterError(ValueError):
    """A parameter has a value that is not allowed; the message names it, the value and what is allowed."""

    def _render_traceback_(self) -> list[str]:
        """How IPython shows it in a notebook (and papermill in its error): the one line, not a traceback."""
        return [f"ParameterError: {self}"]


def _one_of(value, allowed: tuple) -> bool:
    """``value`` equals an allowed value of the same type: ``64.0`` or ``True`` is not the size ``64`` or ``1``."""
    return any(type(value) is type(a) and value == a for a in allowed)


def check_choice(name: str, value, allowed: Iterable):
    allowed = tuple(allowed)
    if not _one_of(value, allowed):
        raise ParameterError(f"{name}={value!r} is not allowed; choose one of: {', '.join(map(str, allowed))}")
    return value


def check_choices(name: str, values, allowed: Iterable, allow_empty: bool = False) -> tuple:
    values = check_sequence(name, values, allow_empty)
    allowed = tuple(allowed)
    bad = [v for v in values if not _one_of(v, allowed)]
    if bad:
        raise ParameterError(
            f"{name}={list(values)!r} contains {', '.join(map(repr, bad))}; allowed: {', '.join(map(str, allowed))}")
    return values


def check_sequence(name: str, values, allow_empty: bool = False) -> tuple:
    """A list (or tuple) with each value once: a value listed twice would be computed once but counted twice."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ParameterError(f"{name}={values!r} must be a list, e.g. [{values!r}]")
    if not values and not allow_empty:
        raise ParameterError(f"{name}=[] is empty; give at least one value")
    values = tuple(values)
    repeated = [v for i, v in enumerate(values) if v in values[:i]]  # == not hash: values may be lists
    if repeated:
        raise ParameterError(f"{name}={list(values)!r} lists {', '.join(map(repr, repeated))} more than once; "
                             "give each value once")
    return values


def check_number(name: str, value, low=None, high=None, low_open=False, integer=False, allowed_text=None,
                 high_open=False):
    """Check ``low (<|<=) value (<|<=) high`` for a finite number; ``allowed_text`` overrides the generated
    description."""
    kind = int if integer else (int, float)
    ok = isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        if allowed_text is None:
            left = "" if low is None else f"{low} {'<' if low_open else '<='} "
            right = "" if high is None else f" {'<' if high_open else '<='} {high}"
            finite = isinstance(value, float) and not math.isfinite(value)
            kind_text = "an integer" if integer else "a finite number" if finite else "a number"
            allowed_text = f"{kind_text} with {left}{name}{right}"
        raise ParameterError(f"{name}={value!r} is not allowed; expected {allowed_text}")
    return value


def check_numbers(name: str, values, **kwargs) -> tuple:
    values = check_sequence(name, values)
    for v in values:
        check_number(name, v, **kwargs)
    return values
