"""The client interface, implemented over gRPC and in-process, and the per-episode handle."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from runtime.client.models import (
    EnvironmentDescription,
    EpisodeLimitsRequest,
    EpisodeStart,
    Reward,
    Scored,
    StepOutput,
    Trajectory,
)
from runtime.tools.messages import Message


class EpisodeClient(ABC):
    """Talks to an episode runtime. Errors are `runtime.errors` classes, whatever the transport."""

    @abstractmethod
    async def list_environments(self) -> list[EnvironmentDescription]:
        """Every environment offered."""

    @abstractmethod
    async def describe_environment(
        self, environment_id: str, params: Mapping[str, Any] | None = None
    ) -> EnvironmentDescription:
        """One environment, loaded with ``params``."""

    @abstractmethod
    async def start_episode(
        self,
        environment_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        example_index: int | None = None,
        inline_example: Mapping[str, Any] | None = None,
        seed: int | None = None,
        limits: EpisodeLimitsRequest | None = None,
    ) -> EpisodeStart:
        """Start an episode. Not retried: a retry could start a second one."""

    @abstractmethod
    async def step_episode(
        self,
        episode_id: str,
        *,
        turn: int,
        message: Message | None = None,
        raw_text: str | None = None,
        token_ids: Sequence[int] = (),
        logprobs: Sequence[float] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> StepOutput:
        """Play turn ``turn`` (1-based) with an assistant message or raw completion text.

        Safe to retry: the server returns a turn already played from its record.
        """

    @abstractmethod
    async def score_episode(self, episode_id: str) -> Scored:
        """Score what the episode holds; the trajectory is kept."""

    @abstractmethod
    async def score_episodes(self, episode_ids: Sequence[str]) -> list[Reward]:
        """Score a GRPO group (episodes of one example) together."""

    @abstractmethod
    async def get_trajectory(self, episode_id: str) -> Trajectory:
        """The episode's record."""

    @abstractmethod
    async def close_episode(self, episode_id: str) -> bool:
        """Free the episode and its sandbox; False if it was already closed."""

    @abstractmethod
    async def close(self) -> None:
        """Release the client's resources."""

    async def __aenter__(self) -> EpisodeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def episode(self, environment_id: str, **start: Any) -> AsyncIterator[EpisodeHandle]:
        """Start an episode and close it on exit, even when the body raises or is cancelled."""
        started = await self.start_episode(environment_id, **start)
        handle = EpisodeHandle(self, started)
        try:
            yield handle
        finally:
            # Shielded: a cancelled caller must still free the sandbox.
            await asyncio.shield(handle.close())


class EpisodeHandle:
    """One live episode: keeps the turn count so retries of `step` are safe."""

    def __init__(self, client: EpisodeClient, started: EpisodeStart) -> None:
        self.client = client
        self.start = started
        self.turn = 0
        self.done = False
        self._closed = False

    @property
    def id(self) -> str:
        """The episode id."""
        return self.start.episode_id

    async def step(
        self,
        message: Message | None = None,
        *,
        raw_text: str | None = None,
        token_ids: Sequence[int] = (),
        logprobs: Sequence[float] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> StepOutput:
        """Play the next turn."""
        result = await self.client.step_episode(
            self.id,
            turn=self.turn + 1,
            message=message,
            raw_text=raw_text,
            token_ids=token_ids,
            logprobs=logprobs,
            metadata=metadata,
        )
        self.turn = result.turn
        self.done = result.done
        return result

    async def score(self) -> Scored:
        """Score the episode."""
        return await self.client.score_episode(self.id)

    async def trajectory(self) -> Trajectory:
        """The episode's record."""
        return await self.client.get_trajectory(self.id)

    async def close(self) -> None:
        """Close the episode (once; errors on close are not raised)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await self.client.close_episode(self.id)
