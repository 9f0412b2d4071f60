"""Deliberately broken gold for `env test`: wrong answers, a NaN reward, a failing rubric."""

from __future__ import annotations

import math

from runtime.env import (
    Environment,
    Episode,
    EpisodeContext,
    RewardResult,
    Rubric,
    SandboxSpec,
    TaskExample,
)

MODES = ("wrong", "nan", "rubric_nan", "ok")


def _nan_metric(completion: str | None) -> float:
    return math.nan


def _exact(completion: str | None, example: TaskExample) -> float:
    return float(completion == example.metadata["answer"])


class BadGold(Environment):
    """`mode` picks the defect; `ok` is the control that passes."""

    tools = ("submit",)
    sandbox = SandboxSpec(image="runtime/python:latest")
    max_turns = 2
    dataset = [
        {"input": "What is 2 + 2?", "output": "4", "metadata": {"answer": "4", "wrong": "5"}},
        {"input": "What is 3 + 3?", "output": "6", "metadata": {"answer": "6", "wrong": "7"}},
    ]
    mode = "ok"

    async def score_episode(
        self, example: TaskExample, episode: Episode, ctx: EpisodeContext
    ) -> RewardResult:
        if self.mode == "rubric_nan":
            rubric = Rubric([_exact, (_nan_metric, 1.0)], threshold=1.0)
            return await rubric.score(example, episode, ctx)
        key = "wrong" if self.mode == "wrong" else "answer"
        ok = str(episode.submission) == example.metadata[key]
        if self.mode == "nan":
            # Bypasses RewardResult's validation, as a careless hook might: the engine refuses it.
            return RewardResult.model_construct(
                score=math.nan, threshold=1.0, success=True, reason="", components={}, metadata={}
            )
        return RewardResult(score=float(ok), reason=f"expected {example.metadata[key]!r}")


def load_environment(mode: str = "ok") -> BadGold:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    env = BadGold()
    env.mode = mode
    return env
