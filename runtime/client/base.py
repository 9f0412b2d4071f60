"""The client interface, implemented over gRPC and in-process, and the per-episode handle."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import Any, TypeVar

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

T = TypeVar("T")


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
        """Start an episode and close it on exit, even when the body raises or is cancelled.

        The start and the close always run to their end: a cancellation that lands meanwhile
        is raised afterwards, so an episode the server already created is never orphaned and a
        caller that closes its client right after cannot cut the close off.
        """
        future, cancelled = await _run_to_end(self.start_episode(environment_id, **start))
        if cancelled:
            if not future.cancelled() and future.exception() is None:
                await _close_to_end(EpisodeHandle(self, future.result()))
            raise asyncio.CancelledError
        handle = EpisodeHandle(self, future.result())
        try:
            yield handle
        finally:
            await _close_to_end(handle)


async def _run_to_end(call: Awaitable[T]) -> tuple[asyncio.Future[T], bool]:
    """Run ``call`` to its end even if we are cancelled; (its future, whether we were)."""
    future = asyncio.ensure_future(call)
    cancelled = False
    while not future.done():
        try:
            await asyncio.wait({future})
        except asyncio.CancelledError:
            cancelled = True
    return future, cancelled


async def _close_to_end(handle: EpisodeHandle) -> None:
    """Close the episode; a cancellation during the close is raised once it is done."""
    _, cancelled = await _run_to_end(handle.close())
    if cancelled:
        raise asyncio.CancelledError


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
