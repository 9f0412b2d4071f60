"""Raw completion text → assistant message with tool calls (`<tool_call>` JSON blocks).

Trainers that sample tokens directly send text; open chat templates render tool calls as
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``. Parsing never raises: a block
that is not valid JSON becomes a call with no name, which the executor reports to the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from runtime.tools.messages import Message, ToolCall

ActionParser = Callable[[str], Message]
"""Turns a raw completion into an assistant message."""

_BLOCK = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)
MAX_CALLS = 4096
"""Blocks beyond this many are dropped; the engine's smaller per-turn cap answers the rest of
those kept as "not executed", so the model learns its extra calls did not run."""


def _parse_block(body: str, index: int) -> ToolCall:
    call_id = f"call_{index}"
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return ToolCall(id=call_id, name="", arguments=f"not valid JSON: {body.strip()[:200]}")
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return ToolCall(
            id=call_id, name="", arguments='a tool call must be {"name": ..., "arguments": {...}}'
        )
    arguments = data.get("arguments", data.get("parameters", {}))
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return ToolCall(id=call_id, name=data["name"], arguments=arguments)


def parse_tool_call_blocks(text: str) -> Message:
    """The default action parser: `<tool_call>` blocks become calls, the rest is content."""
    calls = [
        _parse_block(match.group(1), i)
        for i, match in enumerate(_BLOCK.finditer(text))
        if i < MAX_CALLS
    ]
    content = _BLOCK.sub("", text).strip()
    return Message(role="assistant", content=content or None, tool_calls=calls)
