"""An environment whose sandbox asks for more memory than a cautious server allows."""

from __future__ import annotations

from runtime.env import Environment, SandboxSpec


class BigSandbox(Environment):
    """Asks for 2 GiB."""

    tools = ("bash", "submit")
    dataset = [{"input": "anything", "output": "x"}]
    sandbox = SandboxSpec(image="runtime/python:latest", memory="2g")


def load_environment() -> BigSandbox:
    return BigSandbox()
