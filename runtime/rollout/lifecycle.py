"""An episode's lifetime inside a rollout: started and closed whatever is cancelled when.

`EpisodeClient.episode()` shields the close, but a cancelled caller leaves before the close
ends (a caller that then closes its client cuts it off), and a cancellation that lands while
StartEpisode is under way loses an episode the server may already have created. Here both
calls always run to their end: a cancellation that came meanwhile is raised afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from runtime.client.base import EpisodeClient, EpisodeHandle
from runtime.client.models import EpisodeStart

T = TypeVar("T")


async def settle(call: Awaitable[T]) -> tuple[asyncio.Future[T], bool]:
    """Run ``call`` to its end even if we are cancelled; (its future, whether we were)."""
    future = asyncio.ensure_future(call)
    cancelled = False
    while not future.done():
        try:
            await asyncio.wait({future})
        except asyncio.CancelledError:
            cancelled = True
    return future, cancelled


async def close_fully(handle: EpisodeHandle) -> None:
    """Close the episode; a cancellation during the close is raised once it is done."""
    _, cancelled = await settle(handle.close())
    if cancelled:
        raise asyncio.CancelledError


async def start_fully(client: EpisodeClient, environment_id: str, **start: Any) -> EpisodeStart:
    """Start an episode; if cancelled meanwhile, close what was started, then raise."""
    future, cancelled = await settle(client.start_episode(environment_id, **start))
    if cancelled:
        if not future.cancelled() and future.exception() is None:
            await close_fully(EpisodeHandle(client, future.result()))
        raise asyncio.CancelledError
    return future.result()


@contextlib.asynccontextmanager
async def episode(
    client: EpisodeClient, environment_id: str, **start: Any
) -> AsyncIterator[EpisodeHandle]:
    """Like `EpisodeClient.episode`, with the start and the close both run to their end."""
    handle = EpisodeHandle(client, await start_fully(client, environment_id, **start))
    try:
        yield handle
    finally:
        await close_fully(handle)
