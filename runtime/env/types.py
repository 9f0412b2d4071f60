"""The environment SDK's data: examples, actions, step and reward results, the episode record."""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from runtime.sandbox.backend import Sandbox
from runtime.sandbox.spec import SandboxSpec
from runtime.tools.executor import CallRecord
from runtime.tools.messages import Message


@dataclass(frozen=True)
class TaskExample:
    """One dataset record: what the model is given (`input`) and the reference (`output`)."""

    input: Any
    output: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    index: int | None = None
    """Position in the environment's dataset; None for an inline example."""
    raw: dict[str, Any] = field(default_factory=dict)
    """The record as stored."""


@dataclass
class Action:
    """The model's move for one turn: an assistant message, plus what a trainer keeps with it."""

    message: Message
    raw_text: str | None = None
    """The raw completion text when the action came through the action parser."""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepResult:
    """What `step_episode` returns: the new environment messages only, and whether it is over."""

    done: bool
    messages: list[Message] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)
    final_response_text: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class RewardResult(BaseModel):
    """An episode's reward: the score, whether it passes, and the parts it is made of."""

    model_config = ConfigDict(extra="forbid")

    score: float
    threshold: float = 1.0
    """The score at or above which the episode counts as a success."""
    success: bool | None = None
    """Defaults to ``score >= threshold``."""
    reason: str = ""
    components: dict[str, float] = Field(default_factory=dict)
    """Named parts of the score (rubric functions, metrics)."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Free-form; ``per_turn_rewards`` holds one number per assistant turn for dense credit."""

    @model_validator(mode="after")
    def _fill_success(self) -> RewardResult:
        if not math.isfinite(self.score):
            raise ValueError(f"score must be a finite number, got {self.score}")
        if self.success is None:
            self.success = self.score >= self.threshold
        return self


@dataclass
class Turn:
    """One played turn: the action, the environment's reply, and each tool call's metadata."""

    number: int
    action: Action
    observations: list[Message]
    calls: list[CallRecord]
    done: bool
    truncated: bool
    duration_s: float
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Episode:
    """The record of one episode, as `score_episode` sees it and a trajectory returns it."""

    id: str
    environment_id: str
    example: TaskExample
    max_turns: int
    messages: list[Message] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    done: bool = False
    truncated: bool = False
    status: str = "running"
    """`running`, `done`, `truncated`, `errored` or `closed`."""
    error: str | None = None
    final_response_text: str | None = None
    submission: Any = None
    """What the model passed to `submit`, if it did."""
    submitted: bool = False
    reward: RewardResult | None = None
    seed: int | None = None

    @property
    def turn_count(self) -> int:
        """Turns played so far."""
        return len(self.turns)


SandboxFactory = Callable[[SandboxSpec, str], Awaitable[Sandbox]]
"""Creates a sandbox of a spec for an episode id (the engine's backend)."""


@dataclass
class EpisodeContext:
    """Per-episode state the engine owns and destroys: the sandbox and a scratch dict.

    Environments keep no per-episode state on themselves (a GRPO group runs many episodes of
    one example at once); whatever they need between hooks goes in `scratch`.
    """

    episode_id: str
    sandbox: Sandbox | None
    seed: int | None
    timeout_s: float
    """Per-call timeout in force for this episode."""
    output_cap_bytes: int
    scratch: dict[str, Any] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    submission: Any = None
    submitted: bool = False
    deadline: float | None = None
    """`time.monotonic()` by which the current step must finish (the caller's RPC deadline)."""
    sandbox_factory: SandboxFactory | None = None
    """Set by the engine: creates extra sandboxes that it removes with the episode."""
    spec: SandboxSpec | None = None
    """The spec of the episode's sandbox (None for an environment without one)."""
    max_turns: int | None = None
    """The episode's turn limit, after the client's and the server's caps (set before
    `start_episode`, so the opening messages can state it)."""

    @contextlib.asynccontextmanager
    async def fresh_sandbox(self, spec: SandboxSpec | None = None) -> AsyncIterator[Sandbox]:
        """A new, untouched sandbox for work the model must not reach (e.g. running hidden
        tests on a submitted solution); removed when the block ends."""
        if self.sandbox_factory is None:
            raise RuntimeError("this context has no sandbox factory (not run by the engine)")
        chosen = spec or self.spec or SandboxSpec()
        sandbox = await self.sandbox_factory(chosen, f"{self.episode_id}-fresh")
        try:
            yield sandbox
        finally:
            await sandbox.close()

    def call_timeout(self) -> float:
        """The timeout for the next tool call: the episode's, shortened by the step's deadline."""
        if self.deadline is None:
            return self.timeout_s
        return max(0.05, min(self.timeout_s, self.deadline - time.monotonic() - 0.05))
