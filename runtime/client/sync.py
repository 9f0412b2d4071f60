"""`SyncClient`: the client API as blocking calls, for notebooks and plain scripts.

It runs an event loop of its own in a background thread and submits each call to it, so it
works whether or not the calling thread has a loop running (a notebook's does)::

    with SyncClient.connect("127.0.0.1:50051") as client:
        with client.episode("python_math", example_index=0) as episode:
            result = episode.step(message)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from typing import Any, Self, TypeVar

from runtime.client.base import EpisodeClient, EpisodeHandle
from runtime.client.models import (
    EnvironmentDescription,
    EpisodeStart,
    Reward,
    Scored,
    StepOutput,
    Trajectory,
)
from runtime.errors import FailedPreconditionError
from runtime.tools.messages import Message

T = TypeVar("T")


class SyncClient:
    """Blocking wrapper around any `EpisodeClient`, created by ``factory`` on its own loop."""

    def __init__(self, factory: Callable[[], EpisodeClient]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="episode-client-loop", daemon=True
        )
        self._thread.start()
        self._closed = False

        async def make() -> EpisodeClient:
            return factory()

        try:
            self.client = self._run(make())
        except BaseException:
            self._stop_loop()
            raise

    @classmethod
    def connect(cls, address: str = "127.0.0.1:50051", **options: Any) -> SyncClient:
        """A `GrpcClient` to ``address``; ``options`` are its keyword arguments."""
        from runtime.client.grpc_client import GrpcClient

        return cls(lambda: GrpcClient(address, **options))

    @classmethod
    def in_process(cls, refs: Sequence[str], **options: Any) -> SyncClient:
        """An `InProcessClient` offering ``refs`` (see `InProcessClient.for_environments`)."""
        from runtime.client.in_process import InProcessClient

        return cls(lambda: InProcessClient.for_environments(refs, **options))

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the background loop and wait; an interrupt cancels it there."""
        if self._closed:
            coro.close()
            raise FailedPreconditionError("the SyncClient is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    # --- the API, blocking --------------------------------------------------------------------

    def list_environments(self) -> list[EnvironmentDescription]:
        """Every environment offered."""
        return self._run(self.client.list_environments())

    def describe_environment(
        self, environment_id: str, params: Mapping[str, Any] | None = None
    ) -> EnvironmentDescription:
        """One environment, loaded with ``params``."""
        return self._run(self.client.describe_environment(environment_id, params))

    def start_episode(self, environment_id: str, **start: Any) -> EpisodeStart:
        """Start an episode; ``start`` as for `EpisodeClient.start_episode`."""
        return self._run(self.client.start_episode(environment_id, **start))

    def step_episode(self, episode_id: str, *, turn: int, **action: Any) -> StepOutput:
        """Play turn ``turn``; ``action`` as for `EpisodeClient.step_episode`."""
        return self._run(self.client.step_episode(episode_id, turn=turn, **action))

    def score_episode(self, episode_id: str) -> Scored:
        """Score the episode."""
        return self._run(self.client.score_episode(episode_id))

    def score_episodes(self, episode_ids: Sequence[str]) -> list[Reward]:
        """Score a GRPO group together."""
        return self._run(self.client.score_episodes(episode_ids))

    def get_trajectory(self, episode_id: str) -> Trajectory:
        """The episode's record."""
        return self._run(self.client.get_trajectory(episode_id))

    def close_episode(self, episode_id: str) -> bool:
        """Close the episode; False if it was already closed."""
        return self._run(self.client.close_episode(episode_id))

    @contextlib.contextmanager
    def episode(self, environment_id: str, **start: Any) -> Iterator[SyncEpisodeHandle]:
        """Start an episode and close it on exit, even when the body raises."""
        started = self.start_episode(environment_id, **start)
        handle = SyncEpisodeHandle(self, EpisodeHandle(self.client, started))
        try:
            yield handle
        finally:
            handle.close()

    def close(self) -> None:
        """Close the wrapped client, then stop the background loop (idempotent)."""
        if self._closed:
            return
        try:
            self._run(self.client.close())
        finally:
            self._closed = True
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SyncEpisodeHandle:
    """One live episode, blocking: `EpisodeHandle` run on the `SyncClient`'s loop."""

    def __init__(self, client: SyncClient, handle: EpisodeHandle) -> None:
        self._client = client
        self.handle = handle

    @property
    def id(self) -> str:
        """The episode id."""
        return self.handle.id

    @property
    def start(self) -> EpisodeStart:
        """What StartEpisode returned."""
        return self.handle.start

    @property
    def turn(self) -> int:
        """Turns played so far."""
        return self.handle.turn

    @property
    def done(self) -> bool:
        """Whether the last turn ended the episode."""
        return self.handle.done

    def step(self, message: Message | None = None, **action: Any) -> StepOutput:
        """Play the next turn; ``action`` as for `EpisodeHandle.step`."""
        return self._client._run(self.handle.step(message, **action))

    def score(self) -> Scored:
        """Score the episode."""
        return self._client._run(self.handle.score())

    def trajectory(self) -> Trajectory:
        """The episode's record."""
        return self._client._run(self.handle.trajectory())

    def close(self) -> None:
        """Close the episode (once; errors are not raised)."""
        self._client._run(self.handle.close())


__all__ = ["SyncClient", "SyncEpisodeHandle"]
