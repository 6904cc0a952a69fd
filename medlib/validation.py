"""Parameter checks that run before any expensive work: one clear line per bad value."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class ParameterError(ValueError):
    """A parameter has a value that is not allowed; the message names it, the value and what is allowed."""


def check_choice(name: str, value, allowed: Iterable):
    allowed = tuple(allowed)
    if value not in allowed:
        raise ParameterError(f"{name}={value!r} is not allowed; choose one of: {', '.join(map(str, allowed))}")
    return value


def check_choices(name: str, values, allowed: Iterable, allow_empty: bool = False) -> tuple:
    values = check_sequence(name, values, allow_empty)
    allowed = tuple(allowed)
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ParameterError(
            f"{name}={list(values)!r} contains {', '.join(map(repr, bad))}; allowed: {', '.join(map(str, allowed))}")
    return values


def check_sequence(name: str, values, allow_empty: bool = False) -> tuple:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ParameterError(f"{name}={values!r} must be a list, e.g. [{values!r}]")
    if not values and not allow_empty:
        raise ParameterError(f"{name}=[] is empty; give at least one value")
    return tuple(values)


def check_number(name: str, value, low=None, high=None, low_open=False, integer=False, allowed_text=None):
    """Check ``low (<|<=) value <= high``; ``allowed_text`` overrides the generated description."""
    kind = int if integer else (int, float)
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        if allowed_text is None:
            left = "" if low is None else f"{low} {'<' if low_open else '<='} "
            right = "" if high is None else f" <= {high}"
            allowed_text = f"{'an integer' if integer else 'a number'} with {left}{name}{right}"
        raise ParameterError(f"{name}={value!r} is not allowed; expected {allowed_text}")
    return value


def check_numbers(name: str, values, **kwargs) -> tuple:
    values = check_sequence(name, values)
    for v in values:
        check_number(name, v, **kwargs)
    return values
