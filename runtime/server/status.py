"""The one mapping from our errors to gRPC status codes, applied to every RPC handler.

Nothing escapes as UNKNOWN: an unexpected exception (even a `SystemExit` that environment code
raised) is logged with its traceback and answered INTERNAL with a short message, and the server
goes on. Request bytes that do not decode reach the handler as `Undecodable` and are answered
INVALID_ARGUMENT.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message as ProtoMessage
from pydantic import ValidationError

from runtime.episodes.text import scrub_text
from runtime.errors import ErrorKind, RuntimeServiceError

log = logging.getLogger(__name__)
R = TypeVar("R")
Context = grpc.aio.ServicerContext[Any, Any]

STATUS: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
}
_MAX_DETAIL = 2000


@dataclass(frozen=True)
class Undecodable:
    """What a handler receives in place of a request whose bytes are not a valid message."""

    type_name: str
    error: str


def lenient(message_type: type[ProtoMessage]) -> Callable[[bytes], Any]:
    """A request deserializer that never raises: bad bytes become `Undecodable`, which
    `mapped` answers INVALID_ARGUMENT (grpc would answer UNKNOWN for a raising one)."""
    name = message_type.DESCRIPTOR.full_name

    def decode(data: bytes) -> Any:
        try:
            return message_type.FromString(data)
        except Exception as exc:
            return Undecodable(name, f"{type(exc).__name__}: {exc}"[:300])

    return decode


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and message a client receives for ``exc``."""
    if isinstance(exc, RuntimeServiceError):
        return STATUS[exc.kind], _detail(str(exc))
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        return grpc.StatusCode.INVALID_ARGUMENT, _detail(f"{where}: {first['msg']}")
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see the server log"


def _detail(text: str) -> str:
    # Status details travel as UTF-8 too: a lone surrogate in an error must not break them.
    return scrub_text(text[:_MAX_DETAIL])[0]


def mapped(
    handler: Callable[[Any, Any, Context], Awaitable[R]],
) -> Callable[[Any, Any, Context], Awaitable[R]]:
    """Wrap an RPC handler so every failure leaves as a deliberate status code."""

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: Context) -> R:
        if isinstance(request, Undecodable):
            message = f"the request is not a valid {request.type_name}: {request.error}"
            log.info("%s: INVALID_ARGUMENT: %s", handler.__name__, message)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, _detail(message))
        try:
            return await handler(self, request, context)
        except asyncio.CancelledError:
            raise
        except grpc.aio.AbortError:
            raise
        except BaseException as exc:  # SystemExit from environment code must not stop us
            code, message = status_for(exc)
            if code == grpc.StatusCode.INTERNAL and not isinstance(exc, RuntimeServiceError):
                log.exception("%s failed", handler.__name__)
            else:
                log.info("%s: %s: %s", handler.__name__, code.name, message)
            await context.abort(code, message)
            raise AssertionError("unreachable") from exc  # abort always raises

    return wrapper
