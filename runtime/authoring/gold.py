"""Gold outputs: what a dataset row's ``output`` says the model should do, as assistant turns.

An ``output`` is either

- a **trajectory**: a non-empty list of OpenAI chat messages (each a JSON object with a
  ``role``). Its assistant messages are played as turns, in order; its ``tool``, ``user`` and
  ``system`` messages are ignored, because the environment and its sandbox produce those.
  Tool calls take the OpenAI shape (``{"id", "type": "function", "function": {"name",
  "arguments"}}``, ``arguments`` a JSON string or an object) or the flat one (``{"id", "name",
  "arguments"}``); a call without an id gets ``gold_<turn>_<n>``.
- a **scalar** answer: anything else (a string is used as it is, other values as JSON). It is
  played as one assistant turn per turn until the episode ends: a call of ``submit`` with
  ``{"answer": <answer>}`` when the environment has a ``submit`` tool, else a message whose
  content is the answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from runtime.tools.messages import Message, ToolCall

SUBMIT = "submit"


class GoldError(ValueError):
    """A row's ``output`` cannot be played (missing, or a malformed trajectory)."""


@dataclass(frozen=True)
class Gold:
    """A row's gold output, ready to play."""

    kind: Literal["scalar", "trajectory"]
    answer: str = ""
    """The scalar answer as text (``kind == "scalar"``)."""
    turns: list[Message] = field(default_factory=list)
    """The assistant messages to play, in order (``kind == "trajectory"``)."""

    def scalar_turn(self, turn: int, tool_names: Sequence[str]) -> Message:
        """The assistant message that plays the scalar answer on turn ``turn`` (1-based)."""
        if SUBMIT in tool_names:
            arguments = json.dumps({"answer": self.answer}, ensure_ascii=False)
            call = ToolCall(id=f"gold_{turn}", name=SUBMIT, arguments=arguments)
            return Message(role="assistant", tool_calls=[call])
        return Message(role="assistant", content=self.answer)


def is_trajectory(output: Any) -> bool:
    """Whether ``output`` is a message list (every item an object with a ``role``)."""
    return (
        isinstance(output, list)
        and bool(output)
        and all(isinstance(item, Mapping) and "role" in item for item in output)
    )


def _call(item: Any, turn: int, n: int) -> ToolCall:
    if not isinstance(item, Mapping):
        raise GoldError(f"a tool call is not an object: {item!r:.80}")
    function = item.get("function", item)
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise GoldError(f"a tool call has no function name: {dict(item)!r:.120}")
    arguments = function.get("arguments", "")
    if arguments is None:
        arguments = ""
    elif not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    call_id = item.get("id") or f"gold_{turn}_{n}"
    return ToolCall(id=str(call_id), name=function["name"], arguments=arguments)


def _assistant(item: Mapping[str, Any], turn: int) -> Message:
    content = item.get("content")
    if content is not None and not isinstance(content, str):
        raise GoldError(f"assistant message {turn}: content must be a string or null")
    calls = item.get("tool_calls") or []
    if not isinstance(calls, list):
        raise GoldError(f"assistant message {turn}: tool_calls must be a list")
    return Message(
        role="assistant",
        content=content,
        tool_calls=[_call(call, turn, n) for n, call in enumerate(calls, 1)],
    )


def parse_gold(output: Any) -> Gold:
    """The gold of a row's ``output``; `GoldError` when there is none or it is malformed."""
    if output is None:
        raise GoldError("the row has no gold 'output'")
    if not is_trajectory(output):
        answer = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
        return Gold(kind="scalar", answer=answer)
    turns: list[Message] = []
    for item in output:
        role = item["role"]
        if role not in ("system", "user", "assistant", "tool"):
            raise GoldError(f"output message has an unknown role {role!r:.40}")
        if role == "assistant":
            turns.append(_assistant(item, len(turns) + 1))
    if not turns:
        raise GoldError("the gold trajectory has no assistant message to play")
    return Gold(kind="trajectory", turns=turns)
