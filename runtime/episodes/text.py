"""Safe text: what clients and models write may hold lone surrogates; the record never does.

A Python `str` can hold a lone UTF-16 surrogate (U+D800..U+DFFF), from a JSON ``"\\ud800"``
escape or straight from an in-process caller, but such a string cannot be encoded as UTF-8:
protobuf refuses it, and so does the sandbox channel. Every piece of text that enters an
episode's record passes through a `Scrubber` first, which puts U+FFFD in place of each lone
surrogate (a well-formed pair is joined into its character) and remembers that it did, so the
record can say so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from runtime.tools.messages import Message, ToolCall

REPLACEMENT = "\ufffd"
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
"""A JSON ``\\uD800``..``\\uDFFF`` escape: JSON text that may decode to a lone surrogate."""
T = TypeVar("T")


def scrub_text(text: str) -> tuple[str, bool]:
    """``text`` with every lone surrogate replaced by U+FFFD, and whether any was."""
    if text.isascii():
        return text, False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # UTF-16 with surrogatepass joins well-formed pairs; what is left alone is replaced.
        fixed = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return fixed, True
    return text, False


@dataclass
class Scrubber:
    """Scrubs text, JSON values and messages; `replaced` is True once anything was replaced."""

    replaced: bool = False

    def text(self, text: str) -> str:
        """One string, scrubbed."""
        fixed, changed = scrub_text(text)
        self.replaced |= changed
        return fixed

    def optional(self, text: str | None) -> str | None:
        """A string or None, scrubbed."""
        return None if text is None else self.text(text)

    def value(self, value: T) -> T:
        """A JSON-like value (dicts, lists, tuples, strings), scrubbed throughout, keys too."""
        return self._value(value, 0)  # type: ignore[no-any-return]

    def _value(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if depth > 200:
            return value  # deeper than any JSON the server parses; nothing is decoded there
        if isinstance(value, Mapping):
            return {
                (self.text(k) if isinstance(k, str) else k): self._value(v, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            items = [self._value(v, depth + 1) for v in value]
            return items if isinstance(value, list) else tuple(items)
        return value

    def json_text(self, text: str) -> str:
        """JSON text (tool arguments) whose escapes decode to lone surrogates is re-written with
        U+FFFD in their place; other text (valid or not JSON) is kept exactly as written."""
        text = self.text(text)
        if not _ESCAPED_SURROGATE.search(text):
            return text
        try:
            decoded = json.loads(text)
        except (ValueError, RecursionError):
            return text
        inner = Scrubber()
        fixed = inner.value(decoded)
        if not inner.replaced:
            return text
        self.replaced = True
        return json.dumps(fixed, ensure_ascii=False)

    def message(self, message: Message) -> Message:
        """A chat message with every text field scrubbed (the same object when clean)."""
        before = self.replaced
        self.replaced = False
        content = self.optional(message.content)
        calls = [
            ToolCall(
                id=self.text(c.id), name=self.text(c.name), arguments=self.json_text(c.arguments)
            )
            for c in message.tool_calls
        ]
        tool_call_id = self.optional(message.tool_call_id)
        name = self.optional(message.name)
        changed = self.replaced
        self.replaced = before or changed
        if not changed:
            return message
        return message.model_copy(
            update={
                "content": content,
                "tool_calls": calls,
                "tool_call_id": tool_call_id,
                "name": name,
            }
        )

    def messages(self, messages: list[Message]) -> list[Message]:
        """Each message scrubbed."""
        return [self.message(m) for m in messages]
