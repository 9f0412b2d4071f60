"""Argparse value types shared by the commands: errors come out as argparse's usage line."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any


def json_object(text: str) -> dict[str, Any]:
    """A JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {text!r}")
    return value


def positive(text: str) -> int:
    """An integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


INSTANCE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
"""What `serve --instance-name` accepts too: it becomes a Docker label value and a make pattern."""


def instance_name(text: str) -> str:
    """An instance name: 1 to 64 letters, digits, '_', '.' or '-'."""
    if not INSTANCE_NAME.match(text):
        raise argparse.ArgumentTypeError(
            f"must be 1 to 64 letters, digits, '_', '.' or '-', got {text!r}"
        )
    return text
