"""A small tool-using environment for the server tests: every built-in tool, exact-match reward."""

from __future__ import annotations

from typing import Any

from runtime.env import Environment, SandboxSpec, ToolContext, tool

IMAGE = "runtime/python:latest"


@tool
def add(a: int, b: int) -> int:
    """Add two integers on the host (a custom tool: no sandbox involved).

    Args:
        a: First addend.
        b: Second addend.
    """
    return a + b


@tool
async def episode_note(text: str, ctx: ToolContext) -> str:
    """Remember a note in the episode's scratch space and return every note so far.

    Args:
        text: The note.
    """
    notes: list[str] = ctx.scratch.setdefault("notes", [])
    notes.append(text)
    return " | ".join(notes)


class Toy(Environment):
    """Tool-use smoke environment."""

    system_prompt = "Solve the task with the tools, then call submit."
    tools = ("bash", "python", "read_file", "write_file", "submit", add, episode_note)
    dataset = [
        {"input": "What is 6 * 7?", "output": "42"},
        {"input": "Write hello to greeting.txt and submit its content.", "output": "hello"},
        {"input": "Say anything.", "output": "anything"},
    ]


def load_environment(max_turns: int = 4, call_timeout_s: float = 10.0, **_: Any) -> Toy:
    env = Toy()
    env.max_turns = max_turns
    env.sandbox = SandboxSpec(image=IMAGE, call_timeout_s=call_timeout_s)
    return env
