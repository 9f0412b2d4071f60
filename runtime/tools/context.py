"""What a tool call sees besides its arguments, and what it hands back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.sandbox.backend import Sandbox


@dataclass
class ToolContext:
    """Per-call view of the episode: its sandbox, scratch state and effective limits.

    A tool that declares a parameter annotated `ToolContext` receives it; that parameter is
    never part of the tool's JSON schema.
    """

    sandbox: Sandbox | None
    scratch: dict[str, Any]
    """The episode's scratch dict, shared with the environment's hooks."""
    timeout_s: float
    """Effective per-call timeout: the sandbox's, the episode's and the caller's deadline."""
    output_cap_bytes: int
    submission: Any = None
    """Set by the `submit` tool: the model's final answer."""
    submitted: bool = False

    def require_sandbox(self) -> Sandbox:
        """The episode's sandbox; a tool that needs one fails clearly when there is none."""
        if self.sandbox is None:
            raise ToolError("this environment has no sandbox, so this tool cannot run")
        return self.sandbox


@dataclass
class ToolOutput:
    """A tool's result as the model will read it, plus metadata for the trajectory."""

    content: str
    exit_code: int | None = None
    duration_s: float = 0.0
    timed_out: bool = False
    output_truncated: bool = False
    error: str | None = None
    """Machine-readable failure kind (`unknown_tool`, `invalid_arguments`, `timeout`,
    `out_of_memory`, `process_limit`, `nonzero_exit`, `tool_error`, `sandbox_error`), None on
    success."""
    ends_episode: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


class ToolError(Exception):
    """Raised by a tool to tell the model something went wrong; its text becomes the message."""
