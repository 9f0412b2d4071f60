"""Replaying dataset rows' gold outputs through real episodes, and judging the result.

Each row runs as a real episode on an in-process engine: a real sandbox, the environment's own
hooks, its own reward. A row passes when its gold output is played without a broken call, every
hook succeeds, no reward function fails, and the reward counts as a success (by default
``score >= threshold``). A hook that raises, a non-finite reward (the engine rejects it as a
hook error), or a gold answer that falls short of the threshold fails the row.

The gold is the row's ``output`` (see `runtime.authoring.gold`), unless the environment has a
method ``gold_actions(example) -> list[Message] | None`` (sync or async): a list it returns is
played as a trajectory instead, for data whose ``output`` is no playable answer (a task id, a
reference the reward needs in another format). None falls back to ``output``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.authoring.gold import Gold, GoldError, parse_gold
from runtime.client.base import EpisodeHandle
from runtime.client.in_process import InProcessClient
from runtime.client.models import Reward, StepOutput
from runtime.env.environment import Environment
from runtime.env.types import TaskExample
from runtime.errors import EnvironmentHookError, RuntimeServiceError
from runtime.tools.messages import Message

BROKEN_CALLS = frozenset(
    {"invalid_call", "unknown_tool", "invalid_arguments", "sandbox_error", "skipped", "timeout"}
)
"""Tool-call error kinds that mean the gold does not fit the environment (a failing command or
a tool error the gold means to show is the reward's business, not a failure here)."""


@dataclass
class RowResult:
    """How one row's gold replay went."""

    index: int
    passed: bool
    reason: str
    gold: str = ""
    """``scalar`` or ``trajectory``; empty when the gold could not be read."""
    turns: int = 0
    score: float | None = None
    threshold: float | None = None
    status: str = ""
    """The episode's status (``done``, ``truncated``, ``errored``...); empty if it never ran."""
    messages: list[Message] = field(default_factory=list)
    """The whole episode: opening messages, gold turns, the environment's real replies."""
    tools: list[dict[str, Any]] = field(default_factory=list)
    """The tool schemas the episode offered (OpenAI format)."""

    def summary(self) -> dict[str, Any]:
        """The row as plain JSON data (messages and tools left out)."""
        return {
            "index": self.index,
            "passed": self.passed,
            "gold": self.gold,
            "turns": self.turns,
            "score": self.score,
            "threshold": self.threshold,
            "status": self.status,
            "reason": self.reason,
        }


GOLD_HOOK = "gold_actions"
"""The optional environment method that supplies a row's gold turns."""


async def gold_output(env: Environment, example: TaskExample) -> tuple[Any, bool]:
    """The row's gold as `parse_gold` takes it, and whether it came from `GOLD_HOOK`."""
    hook = getattr(env, GOLD_HOOK, None)
    if not callable(hook):
        return example.output, False
    value = hook(example)
    if inspect.isawaitable(value):
        value = await value
    if value is None:
        return example.output, False
    if not isinstance(value, list | tuple) or not all(
        isinstance(m, Message | Mapping) for m in value
    ):
        raise GoldError(f"{GOLD_HOOK} must return a list of messages or None, got {value!r:.80}")
    return [m.to_openai() if isinstance(m, Message) else m for m in value], True


def _broken_calls(step: StepOutput) -> list[str]:
    return [
        f"gold tool call {call.tool_call_id} ({call.name}) failed: {call.error}"
        for call in step.calls
        if call.error in BROKEN_CALLS
    ]


async def _play(handle: EpisodeHandle, gold: Gold) -> list[str]:
    """Play the gold turns; returns the problems met (empty when the gold fit)."""
    problems: list[str] = []
    if gold.kind == "trajectory":
        for k, message in enumerate(gold.turns):
            if handle.done:
                left = len(gold.turns) - k
                problems.append(
                    f"the episode ended after turn {handle.turn} with {left} gold turn(s) unplayed"
                )
                break
            problems += _broken_calls(await handle.step(message))
        return problems
    names = [tool.name for tool in handle.start.tools]
    while not handle.done and handle.turn < handle.start.max_episode_turns:
        problems += _broken_calls(await handle.step(gold.scalar_turn(handle.turn + 1, names)))
    return problems


def _reward_problems(reward: Reward) -> list[str]:
    problems: list[str] = []
    errors = reward.metadata.get("errors")
    if isinstance(errors, Mapping) and errors:
        problems += [f"reward function {name!r} failed: {text}" for name, text in errors.items()]
    if reward.metadata.get("score_error"):
        problems.append(str(reward.metadata["score_error"]))
    if not reward.success:
        problems.append(
            f"score {reward.score:g} is below the threshold {reward.threshold:g}: {reward.reason}"
            if reward.score < reward.threshold
            else f"not a success (score {reward.score:g}): {reward.reason}"
        )
    return problems


async def replay_row(
    client: InProcessClient,
    env_id: str,
    index: int,
    output: Any,
    params: Mapping[str, Any],
    *,
    label: str = "",
) -> RowResult:
    """Play row ``index``'s gold ``output`` in a real episode, score it, judge it."""
    try:
        gold = parse_gold(output)
    except GoldError as exc:
        return RowResult(index=index, passed=False, reason=str(exc))
    result = RowResult(index=index, passed=False, reason="", gold=label or gold.kind)
    try:
        async with client.episode(env_id, params=dict(params), example_index=index) as handle:
            result.tools = [tool.to_openai() for tool in handle.start.tools]
            result.messages = list(handle.start.messages)
            problems = await _play(handle, gold)
            result.turns = handle.turn
            scored = await handle.score()
    except EnvironmentHookError as exc:
        result.reason = f"hook error: {exc}"
        return result
    except RuntimeServiceError as exc:
        result.reason = f"{type(exc).__name__}: {exc}"
        return result
    reward, trajectory = scored.reward, scored.trajectory
    result.messages = list(trajectory.messages)
    result.status = trajectory.status
    result.score, result.threshold = reward.score, reward.threshold
    if trajectory.error:
        problems.append(f"the episode errored: {trajectory.error}")
    problems += _reward_problems(reward)
    result.passed = not problems
    result.reason = "; ".join(problems) if problems else reward.reason
    return result


async def replay_rows(
    client: InProcessClient,
    env_id: str,
    indices: Sequence[int],
    *,
    params: Mapping[str, Any] | None = None,
    concurrency: int = 4,
) -> list[RowResult]:
    """Replay the rows ``indices`` of ``env_id`` (``concurrency`` at once), in index order.

    The gold outputs are read from the environment the client's engine loaded with ``params``,
    so they are the very rows the episodes start from.
    """
    env = client.engine.registry.get(env_id, params)
    try:
        examples = env.examples
    except (OSError, ValueError) as exc:
        raise EnvironmentHookError(
            f"environment {env_id!r}: dataset failed to load: {exc}"
        ) from exc
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(index: int) -> RowResult:
        async with gate:
            try:
                output, hooked = await gold_output(env, examples[index])
            except GoldError as exc:
                return RowResult(index=index, passed=False, reason=str(exc))
            except Exception as exc:
                reason = f"hook error: {GOLD_HOOK} raised {type(exc).__name__}: {exc}"
                return RowResult(index=index, passed=False, reason=reason)
            label = GOLD_HOOK if hooked else ""
            return await replay_row(client, env_id, index, output, params or {}, label=label)

    return list(await asyncio.gather(*(one(i) for i in indices)))
