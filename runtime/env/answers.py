"""Exact comparison of numeric answers, for rewards: ``"1,234"``, ``"1234.0"``, ``"2468/2"`` are
one number; ``"0.5"`` and ``"1/2"`` are another. Linear-time and cheap on hostile input."""

from __future__ import annotations

import re
from fractions import Fraction

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
"""A plain decimal number; no exponent (``1e999999999`` must not become a huge int)."""
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")
"""A number with thousands separators, e.g. ``1,234,567.5``."""


def parse_number(text: str, *, max_chars: int = 1000) -> Fraction | None:
    """The exact value of ``42``, ``-3.50``, ``1,234`` or ``3/6``; None for anything else
    (including text longer than ``max_chars`` and a zero denominator)."""
    if len(text) > max_chars:
        return None
    parts = text.split("/")
    if len(parts) > 2:
        return None
    values: list[Fraction] = []
    for part in parts:
        part = part.strip()
        if _GROUPED.fullmatch(part):
            part = part.replace(",", "")
        if not _NUMBER.fullmatch(part):
            return None
        values.append(Fraction(part))
    if len(values) == 2:
        if values[1] == 0:
            return None
        return values[0] / values[1]
    return values[0]


def canonical_number(value: Fraction) -> str:
    """``n`` for a whole number, ``n/d`` in lowest terms otherwise."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{value.numerator}/{value.denominator}"
