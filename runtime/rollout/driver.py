"""`RolloutDriver`: plays whole episodes between an episode runtime and a model endpoint.

start → send the messages and tools to the model → step with its reply → repeat until the
episode is done → score. The episode is always closed (its sandbox removed), even when the
rollout fails or is cancelled. A reply without tool calls is stepped like any other: the
environment decides what it means (by default the episode ends and is scored).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from runtime.client.base import EpisodeClient, EpisodeHandle
from runtime.client.models import EpisodeLimitsRequest, Reward, StepOutput, Trajectory
from runtime.errors import RuntimeServiceError
from runtime.rollout.endpoint import EndpointError, ModelClient, ModelEndpoint, ModelReply, Usage

NOT_TOOL_ERRORS = frozenset({"nonzero_exit", "output_truncated", "skipped"})
"""Call outcomes not counted as tool errors: a program's own non-zero exit, output over the
cap, and calls left unrun because the episode had already ended. Everything else (unknown tool,
invalid arguments, timeout, out of memory, tool or sandbox failure) counts."""


class TurnStats(BaseModel):
    """One turn's figures."""

    turn: int
    model_s: float
    """Model call time, retries included."""
    tool_s: float
    """Step call time: running the tool calls, plus the transport."""
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    attempts: int = 1
    tool_calls: int = 0
    tool_errors: int = 0


class Timings(BaseModel):
    """Wall-clock seconds of one rollout."""

    total_s: float = 0.0
    start_s: float = 0.0
    model_s: float = 0.0
    tool_s: float = 0.0
    score_s: float = 0.0


class RolloutResult(BaseModel):
    """One finished (or failed) rollout, as the results file stores it."""

    environment: str
    example_index: int
    rollout_index: int
    seed: int | None = None
    model: str = ""
    reward: Reward | None = None
    turns: int = 0
    done: bool = False
    truncated: bool = False
    status: str = ""
    tool_calls: int = 0
    tool_errors: int = 0
    tool_error_kinds: dict[str, int] = Field(default_factory=dict)
    finish_reasons: dict[str, int] = Field(default_factory=dict)
    timings: Timings = Field(default_factory=Timings)
    usage: Usage = Field(default_factory=Usage)
    turn_stats: list[TurnStats] = Field(default_factory=list)
    error: str | None = None
    """Why the rollout failed (endpoint error after retries, runtime error); None if it ran."""
    error_kind: str | None = None
    trajectory: dict[str, Any] | None = None
    """`runtime.client.models.Trajectory` as JSON."""

    @property
    def key(self) -> tuple[int, int]:
        """(example_index, rollout_index)."""
        return (self.example_index, self.rollout_index)


def _keep(result: RolloutResult, trajectory: Trajectory) -> None:
    result.trajectory = trajectory.model_dump(mode="json")
    result.status = trajectory.status
    result.done = trajectory.done
    result.truncated = trajectory.truncated


def _turn_metadata(reply: ModelReply) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "finish_reason": reply.finish_reason,
        "usage": reply.usage.model_dump(),
        "model_s": round(reply.model_s, 6),
        "attempts": reply.attempts,
    }
    if reply.prompt_token_ids:
        metadata["prompt_token_ids"] = reply.prompt_token_ids
    if reply.reasoning_content is not None:
        metadata["reasoning_content"] = reply.reasoning_content
    return metadata


class RolloutDriver:
    """Runs rollouts of any environment a client offers against one model endpoint."""

    def __init__(
        self,
        client: EpisodeClient,
        endpoint: ModelEndpoint,
        *,
        limits: EpisodeLimitsRequest | None = None,
    ) -> None:
        self.client = client
        self.endpoint = endpoint
        self.model = ModelClient(endpoint)
        self.limits = limits

    async def close(self) -> None:
        """Close the model client (the episode client belongs to the caller)."""
        await self.model.close()

    async def __aenter__(self) -> RolloutDriver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def run(
        self,
        environment_id: str,
        *,
        example_index: int,
        params: Mapping[str, Any] | None = None,
        seed: int | None = None,
        rollout_index: int = 0,
    ) -> RolloutResult:
        """Play one episode to its end and score it; failures are recorded, not raised.

        `EndpointError`s and `RuntimeServiceError`s become the result's ``error``; a
        cancellation propagates (after the episode is closed).
        """
        result = RolloutResult(
            environment=environment_id,
            example_index=example_index,
            rollout_index=rollout_index,
            seed=seed,
            model=self.endpoint.model,
        )
        began = time.monotonic()
        try:
            async with self.client.episode(
                environment_id,
                params=params,
                example_index=example_index,
                seed=seed,
                limits=self.limits,
            ) as handle:
                result.timings.start_s = time.monotonic() - began
                await self._play(handle, result)
        except EndpointError as exc:
            result.error, result.error_kind = str(exc), exc.kind
        except RuntimeServiceError as exc:
            result.error, result.error_kind = f"episode runtime: {exc}", "runtime_error"
        result.timings.total_s = time.monotonic() - began
        return result

    async def _play(self, handle: EpisodeHandle, result: RolloutResult) -> None:
        messages = [m.to_openai() for m in handle.start.messages]
        tools = [t.to_openai() for t in handle.start.tools]
        errors: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        try:
            while not handle.done:
                reply = await self.model.complete(messages, tools)
                stepped = time.monotonic()
                out = await handle.step(
                    reply.message,
                    token_ids=reply.token_ids,
                    logprobs=reply.logprobs,
                    metadata=_turn_metadata(reply),
                )
                tool_s = time.monotonic() - stepped
                sent = reply.message.to_openai()
                if sent["content"] is None and not reply.message.tool_calls:
                    sent["content"] = ""  # some servers reject a null content without calls
                messages.append(sent)
                messages.extend(o.to_openai() for o in out.observations)
                self._record_turn(result, reply, out, tool_s, errors, reasons)
            scoring = time.monotonic()
            scored = await handle.score()
            result.timings.score_s = time.monotonic() - scoring
            result.reward = scored.reward
            trajectory = scored.trajectory
        except (EndpointError, RuntimeServiceError):
            # Keep what was played, for the error record; the episode closes on the way out.
            with contextlib.suppress(RuntimeServiceError):
                _keep(result, await handle.trajectory())
            raise
        finally:
            result.tool_error_kinds = dict(errors)
            result.finish_reasons = dict(reasons)
        _keep(result, trajectory)

    @staticmethod
    def _record_turn(
        result: RolloutResult,
        reply: ModelReply,
        out: StepOutput,
        tool_s: float,
        errors: Counter[str],
        reasons: Counter[str],
    ) -> None:
        failed = [c.error for c in out.calls if c.error and c.error not in NOT_TOOL_ERRORS]
        errors.update(e for e in failed if e)
        reasons[reply.finish_reason or "unknown"] += 1
        result.turns = out.turn
        result.tool_calls += len(out.calls)
        result.tool_errors += len(failed)
        result.usage = result.usage + reply.usage
        result.timings.model_s += reply.model_s
        result.timings.tool_s += tool_s
        result.turn_stats.append(
            TurnStats(
                turn=out.turn,
                model_s=reply.model_s,
                tool_s=tool_s,
                finish_reason=reply.finish_reason,
                usage=reply.usage,
                attempts=reply.attempts,
                tool_calls=len(out.calls),
                tool_errors=len(failed),
            )
        )
