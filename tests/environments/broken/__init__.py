"""An environment whose hooks raise on request, to show hook bugs become INTERNAL, not crashes."""

from __future__ import annotations

from runtime.env import (
    Action,
    Environment,
    Episode,
    EpisodeContext,
    Message,
    RewardResult,
    SandboxSpec,
    StepResult,
    TaskExample,
)


class Broken(Environment):
    """Raises in the hook named by `fail_in`."""

    tools = ("bash", "submit")
    dataset = [{"input": "anything", "output": "x"}]
    sandbox = SandboxSpec(image="runtime/python:latest")
    fail_in = ""

    async def start_episode(self, example: TaskExample, ctx: EpisodeContext) -> list[Message]:
        if self.fail_in == "start":
            raise RuntimeError("start hook exploded")
        return await super().start_episode(example, ctx)

    async def step_episode(
        self, example: TaskExample, messages: list[Message], action: Action, ctx: EpisodeContext
    ) -> StepResult:
        if self.fail_in == "step":
            raise RuntimeError("step hook exploded")
        return await super().step_episode(example, messages, action, ctx)

    async def score_episode(
        self, example: TaskExample, episode: Episode, ctx: EpisodeContext
    ) -> RewardResult:
        if self.fail_in == "score":
            raise RuntimeError("score hook exploded")
        return await super().score_episode(example, episode, ctx)


def load_environment(fail_in: str = "") -> Broken:
    if fail_in not in ("", "start", "step", "score"):
        raise ValueError(f"fail_in must be start, step or score, got {fail_in!r}")
    env = Broken()
    env.fail_in = fail_in
    return env
