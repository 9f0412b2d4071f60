"""The warm pool: sandboxes started ahead per distinct spec, each handed out at most once.

`SandboxPool` is itself a `SandboxBackend`, so the engine does not know whether a sandbox
came warm or cold. It also enforces the cap on live sandboxes, pooled ones included.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging

from runtime.errors import ResourceExhaustedError
from runtime.sandbox.backend import Sandbox, SandboxBackend
from runtime.sandbox.docker_backend import DockerBackend, DockerSandbox
from runtime.sandbox.spec import SandboxSpec

log = logging.getLogger(__name__)

POOLED_EPISODE = "pool"
"""The episode label of a container started ahead, before any episode owns it."""
_RETRY_S = 2.0


def pool_key(spec: SandboxSpec) -> SandboxSpec:
    """The part of a spec that shapes the container; per-call limits are set at hand-out."""
    default = SandboxSpec()
    return spec.model_copy(
        update={
            "call_timeout_s": default.call_timeout_s,
            "output_cap_bytes": default.output_cap_bytes,
        }
    )


class SandboxPool(SandboxBackend):
    """Keeps `size` started sandboxes ready per warmed spec, within `max_live` in all."""

    def __init__(self, backend: DockerBackend, *, size: int, max_live: int) -> None:
        self.backend = backend
        self.size = size
        self.max_live = max_live
        self._ready: dict[SandboxSpec, collections.deque[DockerSandbox]] = {}
        self._fillers: dict[SandboxSpec, asyncio.Task[None]] = {}
        self._creating = 0
        self._closed = False

    @property
    def live_count(self) -> int:
        """Containers that exist or are being created, pooled ones included."""
        return self.backend.live_count + self._creating

    def ready_count(self, spec: SandboxSpec) -> int:
        """Started sandboxes waiting for an episode of this spec."""
        return len(self._ready.get(pool_key(spec), ()))

    def warm(self, spec: SandboxSpec) -> None:
        """Keep sandboxes of this spec ready from now on (no-op when the pool size is 0)."""
        key = pool_key(spec)
        self._ready.setdefault(key, collections.deque())
        self._refill(key)

    async def create(self, spec: SandboxSpec, *, episode_id: str) -> Sandbox:
        """A warm sandbox when one is ready, else a cold one; never one handed out before."""
        if self._closed:
            raise ResourceExhaustedError("the sandbox pool is shut down")
        key = pool_key(spec)
        ready = self._ready.get(key)
        while ready:
            sandbox = ready.popleft()
            if sandbox.healthy:
                sandbox.assign(spec, episode_id)
                self._refill(key)
                return sandbox
            await sandbox.close()
        if self.live_count >= self.max_live:
            raise ResourceExhaustedError(
                f"the server holds its maximum of {self.max_live} live sandboxes; "
                "close finished episodes or retry later"
            )
        self._creating += 1
        try:
            sandbox = await self.backend.create(spec, episode_id=episode_id)
        finally:
            self._creating -= 1
        if key in self._ready:
            self._refill(key)
        return sandbox

    async def close(self) -> None:
        """Stop refilling and remove every pooled sandbox, then every other one."""
        self._closed = True
        for task in self._fillers.values():
            task.cancel()
        for task in self._fillers.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        pooled = [sandbox for ready in self._ready.values() for sandbox in ready]
        self._ready.clear()
        await asyncio.gather(*(s.close() for s in pooled), return_exceptions=True)
        await self.backend.close()

    def _refill(self, key: SandboxSpec) -> None:
        task = self._fillers.get(key)
        if self.size <= 0 or self._closed or (task is not None and not task.done()):
            return
        self._fillers[key] = asyncio.create_task(self._fill(key), name="sandbox-pool-refill")

    async def _fill(self, key: SandboxSpec) -> None:
        ready = self._ready[key]
        while not self._closed and len(ready) < self.size and self.live_count < self.max_live:
            self._creating += 1
            try:
                sandbox = await self.backend.create(key, episode_id=POOLED_EPISODE)
            except Exception as exc:
                log.warning("warm pool could not start a sandbox (%s); retrying", exc)
                await asyncio.sleep(_RETRY_S)
                continue
            finally:
                self._creating -= 1
            if self._closed:
                await sandbox.close()
                return
            assert isinstance(sandbox, DockerSandbox)
            ready.append(sandbox)
