"""Bearer-token authentication for every RPC except the health check.

The token is compared in constant time and never logged; a missing or wrong token is
UNAUTHENTICATED before any handler runs.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc

HEALTH_PREFIX = "/grpc.health.v1.Health/"
"""Health checks stay open so orchestrators (compose, Kubernetes) can probe without a token."""


Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


def _deny(code: grpc.StatusCode, message: str) -> Handler:
    async def abort(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(abort)


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Requires ``authorization: Bearer <token>`` metadata on every non-health RPC."""

    def __init__(self, token: str) -> None:
        self._expected = token.encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        """Let the call through only with the right token."""
        method = handler_call_details.method or ""
        if method.startswith(HEALTH_PREFIX):
            return await continuation(handler_call_details)
        supplied = ""
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization" and isinstance(value, str):
                supplied = value
        scheme, _, token = supplied.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _deny(
                grpc.StatusCode.UNAUTHENTICATED,
                "this server requires a bearer token: send 'authorization: Bearer <token>'",
            )
        if not hmac.compare_digest(token.encode(), self._expected):
            return _deny(grpc.StatusCode.UNAUTHENTICATED, "the bearer token is not valid")
        return await continuation(handler_call_details)
