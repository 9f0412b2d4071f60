"""A sandbox-free environment with a host tool, so fuzzing the RPC surface starts no container."""

from __future__ import annotations

from runtime.env import Environment, tool


@tool
def echo(text: str, times: int = 1) -> str:
    """Repeat a text.

    Args:
        text: What to repeat.
        times: How often, 1 to 5.
    """
    return text * max(1, min(times, 5))


class FuzzEcho(Environment):
    """Echo tool, no sandbox."""

    tools = (echo, "submit")
    sandbox = None
    max_turns = 3
    dataset = [{"input": "say hi", "output": "hi"}, {"input": "say ho", "output": "ho"}]


def load_environment(max_turns: int = 3) -> FuzzEcho:
    env = FuzzEcho()
    env.max_turns = max_turns
    return env
