"""The benchmark's environment: the sandbox tools, one record, turns enough for any run."""

from __future__ import annotations

from typing import Any

from runtime.env import Environment, SandboxSpec


class BenchEnv(Environment):
    """Trivial tool-use environment driven by `benchmarks/bench.py`."""

    id = "bench_env"
    description = "Benchmark environment: bash, python and submit in the default sandbox."
    tools = ("bash", "python", "submit")
    dataset = [{"input": "Run commands until told to stop.", "output": "done"}]
    max_turns = 100_000
    sandbox = SandboxSpec()


def load_environment(**_: Any) -> BenchEnv:
    """The environment; it takes no parameters."""
    return BenchEnv()
