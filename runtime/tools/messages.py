"""OpenAI chat shapes for messages and tool calls, the currency of every layer above."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ToolCall(BaseModel):
    """One function call as the model wrote it; `arguments` is the raw JSON string."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    arguments: str = ""

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI `tool_calls` item."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


class Message(BaseModel):
    """One chat message (system, user, assistant or tool)."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    """Assistant messages only."""
    tool_call_id: str | None = None
    """Tool messages only: the call this answers."""
    name: str | None = None
    """Tool messages: the tool's name."""

    def to_openai(self) -> dict[str, Any]:
        """The message as the OpenAI chat completions API takes it."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [call.to_openai() for call in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None and self.role == "tool":
            out["name"] = self.name
        return out
