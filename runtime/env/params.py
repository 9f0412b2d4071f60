"""Checks for `load_environment(**params)` arguments, with messages a client can act on.

The loader turns the `ValueError` / `TypeError` these raise into INVALID_ARGUMENT.
"""

from __future__ import annotations

from typing import Any


class ParamTypeError(TypeError, ValueError):
    """A parameter of the wrong type; also a `ValueError`, so callers may catch either."""


def integer(name: str, value: Any, *, minimum: int | None = 1, maximum: int | None = None) -> int:
    """``value`` as an int within the bounds (booleans are not integers here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamTypeError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer of at least {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer of at most {maximum}, got {value!r}")
    return value


def optional_integer(name: str, value: Any, *, minimum: int = 1) -> int | None:
    """Like `integer`, with None allowed (meaning: no limit)."""
    return None if value is None else integer(name, value, minimum=minimum)


def seconds(name: str, value: Any, maximum: float = 3600.0) -> float:
    """A duration in (0, maximum] seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= maximum:
        raise ValueError(f"{name} must be in (0, {maximum:g}] seconds, got {value!r}")
    return float(value)
