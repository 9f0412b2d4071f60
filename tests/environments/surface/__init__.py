"""Environment code that misbehaves on request, for the request-surface tests.

- ``exit_in`` / ``exit_kind``: raise a `BaseException` that is not an `Exception` (`SystemExit`,
  `KeyboardInterrupt`, `GeneratorExit`) from a hook, a tool or a rubric function.
- ``gate``: `load_environment` blocks (on its thread) until this file exists; after 20 s it
  fails instead: a slow load whose end the test decides.
- ``count_to``: every `load_environment` call appends a line to this file (module state does
  not survive: each load imports the module afresh).
- ``score_from_sandbox``: scoring reads ``answer.txt`` from the episode's sandbox.
"""

from __future__ import annotations

import os
import time
from typing import Any

from runtime.env import (
    Action,
    Environment,
    Episode,
    EpisodeContext,
    Message,
    RewardResult,
    Rubric,
    SandboxSpec,
    StepResult,
    TaskExample,
    ToolContext,
    tool,
)

KINDS: dict[str, type[BaseException]] = {
    "SystemExit": SystemExit,
    "KeyboardInterrupt": KeyboardInterrupt,
    "GeneratorExit": GeneratorExit,
}
PLACES = ("", "load", "start", "turns", "step", "score", "tool", "rubric")


class Surface(Environment):
    """Misbehaves where its params say."""

    tools = ("bash", "submit")
    dataset = [{"input": "Write 42 to answer.txt, then submit.", "output": "42"}]
    sandbox = SandboxSpec(image="runtime/python:latest")
    max_turns = 4
    exit_in = ""
    exit_kind: type[BaseException] = SystemExit
    score_from_sandbox = False

    def _maybe_exit(self, place: str) -> None:
        if self.exit_in == place:
            raise self.exit_kind(f"environment code raised {self.exit_kind.__name__} in {place}")

    def max_episode_turns(self, example: TaskExample) -> int:
        self._maybe_exit("turns")
        return self.max_turns

    async def start_episode(self, example: TaskExample, ctx: EpisodeContext) -> list[Message]:
        self._maybe_exit("start")
        return await super().start_episode(example, ctx)

    async def step_episode(
        self, example: TaskExample, messages: list[Message], action: Action, ctx: EpisodeContext
    ) -> StepResult:
        self._maybe_exit("step")
        return await super().step_episode(example, messages, action, ctx)

    async def score_episode(
        self, example: TaskExample, episode: Episode, ctx: EpisodeContext
    ) -> RewardResult:
        self._maybe_exit("score")
        if self.score_from_sandbox:
            assert ctx.sandbox is not None
            found = await ctx.sandbox.read_file("answer.txt", max_bytes=100)
            ok = found.content.strip() == "42"
            return RewardResult(score=1.0 if ok else 0.0, reason=f"answer.txt: {found.content!r}")
        return await super().score_episode(example, episode, ctx)


def load_environment(
    exit_in: str = "",
    exit_kind: str = "SystemExit",
    gate: str = "",
    score_from_sandbox: bool = False,
    count_to: str = "",
) -> Surface:
    if exit_in not in PLACES or exit_kind not in KINDS:
        raise ValueError(f"exit_in must be one of {PLACES}, exit_kind one of {sorted(KINDS)}")
    if count_to:
        with open(count_to, "a") as out:
            out.write(f"{exit_in}\n")
    if exit_in == "load":
        raise KINDS[exit_kind](f"environment code raised {exit_kind} in load_environment")
    if gate:
        for _ in range(200):
            if os.path.exists(gate):
                break
            time.sleep(0.1)
        else:
            # Nobody opened the gate while this load waited: the load held everything up.
            raise RuntimeError("the gate was never opened while load_environment waited")
    env = Surface()
    env.exit_in, env.exit_kind = exit_in, KINDS[exit_kind]
    env.score_from_sandbox = score_from_sandbox
    kind = env.exit_kind

    @tool
    async def explode(ctx: ToolContext) -> str:
        """A tool that raises a BaseException."""
        raise kind("environment code raised it in a tool")

    def exploding_rubric(**_: Any) -> float:
        raise kind("environment code raised it in a rubric function")

    if exit_in == "tool":
        env.tools = ("bash", "submit", explode)
    if exit_in == "rubric":
        env.rubric = Rubric([exploding_rubric])
    return env
