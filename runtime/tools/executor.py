"""Executes one model-written tool call and turns every outcome into a tool message.

Model mistakes (unknown tool, bad arguments, failing commands) are observations, never
exceptions: the model reads what went wrong and may try again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.errors import CommandNotRunError, SandboxError
from runtime.tools.context import ToolContext, ToolError, ToolOutput
from runtime.tools.messages import Message, ToolCall
from runtime.tools.schema import Tool, ToolArgumentError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallRecord:
    """Metadata of one executed tool call, kept in the trajectory."""

    tool_call_id: str
    name: str
    exit_code: int | None
    duration_s: float
    timed_out: bool
    output_truncated: bool
    error: str | None
    """Failure kind, None on success (see `ToolOutput.error`)."""
    ends_episode: bool = False


def _to_output(value: Any) -> ToolOutput:
    if isinstance(value, ToolOutput):
        return value
    if value is None:
        return ToolOutput(content="(no output)")
    if isinstance(value, str):
        return ToolOutput(content=value)
    try:
        return ToolOutput(content=json.dumps(value, ensure_ascii=False, default=str))
    except (TypeError, ValueError):
        return ToolOutput(content=str(value))


def _cap(output: ToolOutput, cap: int) -> ToolOutput:
    data = output.content.encode("utf-8", "replace")
    if len(data) <= cap:
        return output
    output.content = data[:cap].decode("utf-8", "ignore") + (
        f"\n[output truncated: the result was {len(data)} bytes; only the first {cap} are shown]"
    )
    output.output_truncated = True
    return output


async def _invoke(call: ToolCall, tools: Mapping[str, Tool], ctx: ToolContext) -> ToolOutput:
    if not call.name:
        return ToolOutput(
            content=f"invalid tool call: {call.arguments[:300] or 'no tool name given'}",
            error="invalid_call",
        )
    selected = tools.get(call.name)
    if selected is None:
        names = ", ".join(sorted(tools)) or "none"
        return ToolOutput(
            content=f"unknown tool {call.name[:100]!r}; the available tools are: {names}",
            error="unknown_tool",
        )
    try:
        arguments = selected.parse_arguments(call.arguments)
    except ToolArgumentError as exc:
        return ToolOutput(
            content=f"invalid arguments for tool {call.name!r}: {exc}", error="invalid_arguments"
        )
    try:
        return _to_output(await selected.invoke(arguments, ctx))
    except ToolError as exc:
        return ToolOutput(content=f"error: {exc}", error="tool_error")
    except CommandNotRunError as exc:
        return ToolOutput(
            content=f"error: the sandbox could not run this command ({exc}); it may be out of "
            "processes or memory: stop what you started, then try again",
            error="tool_error",
        )
    except SandboxError as exc:
        return ToolOutput(
            content=f"sandbox error: {exc}. The sandbox cannot run further tool calls.",
            error="sandbox_error",
            ends_episode=True,
        )
    except Exception as exc:
        log.exception("tool %r raised", call.name)
        return ToolOutput(
            content=f"the tool failed: {type(exc).__name__}: {str(exc)[:500]}", error="tool_error"
        )


async def execute_call(
    call: ToolCall, tools: Mapping[str, Tool], ctx: ToolContext
) -> tuple[Message, CallRecord]:
    """Run one call; the result is its tool message and its trajectory record."""
    started = time.monotonic()
    output = _cap(await _invoke(call, tools, ctx), max(ctx.output_cap_bytes, 1024) * 2 + 1024)
    duration = output.duration_s or (time.monotonic() - started)
    message = Message(role="tool", content=output.content, tool_call_id=call.id, name=call.name)
    record = CallRecord(
        tool_call_id=call.id,
        name=call.name,
        exit_code=output.exit_code,
        duration_s=duration,
        timed_out=output.timed_out,
        output_truncated=output.output_truncated,
        error=output.error,
        ends_episode=output.ends_episode,
    )
    return message, record
