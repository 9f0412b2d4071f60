"""The one mapping from our errors to gRPC status codes, applied to every RPC handler.

Nothing escapes as UNKNOWN: an unexpected exception is logged with its traceback and answered
INTERNAL with a short message, and the server goes on.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from pydantic import ValidationError

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


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and message a client receives for ``exc``."""
    if isinstance(exc, RuntimeServiceError):
        return STATUS[exc.kind], str(exc)[:_MAX_DETAIL]
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        return grpc.StatusCode.INVALID_ARGUMENT, f"{where}: {first['msg']}"[:_MAX_DETAIL]
    return grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see the server log"


def mapped(
    handler: Callable[[Any, Any, Context], Awaitable[R]],
) -> Callable[[Any, Any, Context], Awaitable[R]]:
    """Wrap an RPC handler so every failure leaves as a deliberate status code."""

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: Context) -> R:
        try:
            return await handler(self, request, context)
        except asyncio.CancelledError:
            raise
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            code, message = status_for(exc)
            if code == grpc.StatusCode.INTERNAL and not isinstance(exc, RuntimeServiceError):
                log.exception("%s failed", handler.__name__)
            else:
                log.info("%s: %s: %s", handler.__name__, code.name, message)
            await context.abort(code, message)
            raise AssertionError("unreachable") from exc  # abort always raises

    return wrapper
