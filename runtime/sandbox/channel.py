"""The server's end of the agent channel: framed JSON over a container's attached stdin/stdout.

Everything read here was written inside the sandbox, so it is untrusted: Docker's stream
headers and our frames are size-checked, frames must be JSON objects answering a request we
sent, and anything else breaks the channel (the episode's tools then fail clearly) rather than
the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import socket
import struct
from importlib import resources
from typing import Any

from runtime.errors import SandboxError

log = logging.getLogger(__name__)

BOOTSTRAP = (
    "import sys;b=sys.stdin.buffer;n=int(b.readline());"
    "exec(compile(b.read(n),'runtime-agent','exec'),{'__name__':'__main__'})"
)
"""The container's command: reads the agent's source from stdin and runs it."""

MAX_FRAME_BYTES = 16 * 1024 * 1024
"""Largest frame accepted from a sandbox; replies are capped well below this by the agent."""
_STDERR_TAIL = 4096
_DOCKER_HEADER = struct.Struct(">BxxxI")
_FRAME_HEADER = struct.Struct(">I")


def agent_source() -> bytes:
    """The in-sandbox agent program, read from this package (never imported by the server)."""
    return resources.files("runtime.sandbox").joinpath("agent.py").read_bytes()


class AgentChannel:
    """Request/response multiplexing over one attached container socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._stdout = bytearray()
        self._stderr_tail = bytearray()
        self._ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._broken: str | None = None
        self._reader_task = asyncio.create_task(self._read_loop(), name="agent-channel-reader")

    @classmethod
    async def open(cls, sock: socket.socket, *, ready_timeout_s: float = 20.0) -> AgentChannel:
        """Send the agent's source over ``sock`` and wait for its ready frame."""
        reader, writer = await asyncio.open_connection(sock=sock)
        channel = cls(reader, writer)
        source = agent_source()
        writer.write(b"%d\n" % len(source) + source)
        try:
            await writer.drain()
            await asyncio.wait_for(asyncio.shield(channel._ready), ready_timeout_s)
        except (TimeoutError, OSError, SandboxError) as exc:
            await channel.close()
            raise SandboxError(
                f"the sandbox agent did not start: {exc or 'no answer'}{channel._stderr_hint()}"
            ) from exc
        return channel

    @property
    def broken(self) -> str | None:
        """Why the channel can no longer be used, or None while it works."""
        return self._broken

    async def request(self, op: str, payload: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one request and wait for its reply; cancelling the wait cancels the request."""
        if self._broken is not None:
            raise SandboxError(self._broken)
        req_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = future
        finished = False
        try:
            await self._send({"id": req_id, "op": op, **payload})
            reply = await asyncio.wait_for(future, timeout_s)
            finished = True
            return reply
        except TimeoutError as exc:
            raise SandboxError(
                f"the sandbox agent did not answer within {timeout_s:.0f} s"
            ) from exc
        finally:
            self._pending.pop(req_id, None)
            if not finished and op == "exec" and self._broken is None:
                with contextlib.suppress(Exception):
                    await self._send({"id": next(self._ids), "op": "cancel", "target": req_id})

    async def close(self) -> None:
        """Close the socket; the agent sees end of input and exits."""
        self._fail(self._broken or "the sandbox was closed")
        self._reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader_task
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

    async def _send(self, obj: dict[str, Any]) -> None:
        # "replace": a lone surrogate the model wrote must not make the request unsendable.
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8", "replace")
        self._writer.write(_FRAME_HEADER.pack(len(data)) + data)
        try:
            await self._writer.drain()
        except (OSError, RuntimeError) as exc:
            self._fail(f"the sandbox agent's input is closed ({exc})")
            raise SandboxError(self._broken or "sandbox closed") from exc

    async def _read_loop(self) -> None:
        try:
            while True:
                header = await self._reader.readexactly(_DOCKER_HEADER.size)
                stream, size = _DOCKER_HEADER.unpack(header)
                if stream not in (1, 2) or size > MAX_FRAME_BYTES:
                    self._fail("the sandbox sent a malformed stream header")
                    return
                chunk = await self._reader.readexactly(size)
                if stream == 2:
                    self._stderr_tail = (self._stderr_tail + chunk)[-_STDERR_TAIL:]
                    continue
                self._stdout += chunk
                if not self._drain_frames():
                    return
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            self._fail(f"the sandbox agent exited{self._stderr_hint()}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never let sandbox bytes take the reader down silently
            log.exception("agent channel reader failed")
            self._fail(f"the sandbox channel failed: {type(exc).__name__}")

    def _drain_frames(self) -> bool:
        """Parse every complete frame in the buffer; False once the channel is broken."""
        while len(self._stdout) >= _FRAME_HEADER.size:
            (size,) = _FRAME_HEADER.unpack_from(self._stdout)
            if size > MAX_FRAME_BYTES:
                self._fail(f"the sandbox sent an oversized frame ({size} bytes)")
                return False
            if len(self._stdout) < _FRAME_HEADER.size + size:
                return True
            body = bytes(self._stdout[_FRAME_HEADER.size : _FRAME_HEADER.size + size])
            del self._stdout[: _FRAME_HEADER.size + size]
            try:
                message = json.loads(body)
            except ValueError:
                self._fail("the sandbox sent a frame that is not JSON")
                return False
            if not isinstance(message, dict) or not isinstance(message.get("id"), int):
                self._fail("the sandbox sent a frame without a request id")
                return False
            self._dispatch(message)
        return True

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("op") == "ready" and not self._ready.done():
            self._ready.set_result(message)
            return
        future = self._pending.get(message["id"])
        if future is not None and not future.done():
            future.set_result(message)

    def _fail(self, reason: str) -> None:
        if self._broken is None:
            self._broken = reason
        error = SandboxError(self._broken)
        if not self._ready.done():
            self._ready.set_exception(error)
            self._ready.exception()  # mark retrieved: nobody may be waiting any more
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()

    def _stderr_hint(self) -> str:
        tail = self._stderr_tail.decode("utf-8", "replace").strip()
        return f" (agent stderr: {tail[-500:]})" if tail else ""
