"""`GrpcClient`: the client interface over the episode server's gRPC API.

One `grpc.aio` channel, opened on first use in the running event loop (use a client from one
loop only). Every call has a deadline. Errors arrive as `runtime.errors` classes, never as
`grpc.aio.AioRpcError`:

==========================================  ================================================
gRPC status                                  raised
==========================================  ================================================
NOT_FOUND                                    `NotFoundError`
INVALID_ARGUMENT, OUT_OF_RANGE               `InvalidArgumentError`
FAILED_PRECONDITION, ABORTED, ALREADY_EXISTS `FailedPreconditionError`
RESOURCE_EXHAUSTED                           `ResourceExhaustedError`
UNAVAILABLE, CANCELLED                       `UnavailableError` (with the address when the
                                             server cannot be reached)
DEADLINE_EXCEEDED                            `SandboxTimeoutError` (a `TimeoutError`)
UNAUTHENTICATED, PERMISSION_DENIED           `InvalidArgumentError`: the credentials the
                                             caller passed are wrong; retrying cannot help
INTERNAL                                     `EnvironmentHookError` (the server's only
                                             deliberate INTERNAL), or `RuntimeServiceError`
                                             for the server's own unexpected failures
anything else (UNKNOWN, UNIMPLEMENTED, ...)  `RuntimeServiceError`
==========================================  ================================================

Only calls that are safe to repeat are retried, on UNAVAILABLE, with exponential backoff and
jitter: the reads (ListEnvironments, DescribeEnvironment, GetTrajectory, also on
DEADLINE_EXCEEDED), ScoreEpisode(s), CloseEpisode, and StepEpisode (it always carries the turn
number, and the server answers a turn already played from its record; ``turn=0``, "the next
turn", is not retried). StartEpisode is never retried: a retry could start a second episode.
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections.abc import Mapping, Sequence
from typing import Any, Self, TypeVar

import grpc
from google.protobuf.message import Message as ProtoMessage

from runtime.client import convert
from runtime.client.base import EpisodeClient
from runtime.client.models import (
    EnvironmentDescription,
    EpisodeLimitsRequest,
    EpisodeStart,
    Reward,
    Scored,
    StepOutput,
    Trajectory,
)
from runtime.errors import (
    EnvironmentHookError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    RuntimeServiceError,
    SandboxTimeoutError,
    UnavailableError,
)
from runtime.tools.messages import Message
from runtime.v1 import runtime_pb2 as pb

R = TypeVar("R", bound=ProtoMessage)

DEFAULT_ADDRESS = "127.0.0.1:50051"
MAX_BACKOFF_S = 10.0
"""Longest pause between two attempts, before jitter."""
_SERVICE = pb.DESCRIPTOR.services_by_name["EpisodeService"].full_name
_S = grpc.StatusCode
_ERRORS: dict[grpc.StatusCode, type[RuntimeServiceError]] = {
    _S.NOT_FOUND: NotFoundError,
    _S.INVALID_ARGUMENT: InvalidArgumentError,
    _S.OUT_OF_RANGE: InvalidArgumentError,
    _S.FAILED_PRECONDITION: FailedPreconditionError,
    _S.ABORTED: FailedPreconditionError,
    _S.ALREADY_EXISTS: FailedPreconditionError,
    _S.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    _S.UNAVAILABLE: UnavailableError,
    _S.CANCELLED: UnavailableError,
    _S.DEADLINE_EXCEEDED: SandboxTimeoutError,
    _S.UNAUTHENTICATED: InvalidArgumentError,
    _S.PERMISSION_DENIED: InvalidArgumentError,
    _S.INTERNAL: EnvironmentHookError,
}
_SERVER_BUG_PREFIX = "internal error ("
"""How the server words INTERNAL for its own unexpected exceptions (`runtime.server.status`)."""


class Retry(enum.Enum):
    """Which failures a call may be repeated after."""

    NEVER = "never"
    UNAVAILABLE = "unavailable"
    """Idempotent calls: repeated when the server could not be reached or answered UNAVAILABLE."""
    READ = "read"
    """Reads: also repeated after a missed deadline."""


def _serialize(message: ProtoMessage) -> bytes:
    return message.SerializeToString()


class GrpcClient(EpisodeClient):
    """The episode server over gRPC; ``async with GrpcClient(address) as client: ...``."""

    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        timeout_s: float = 60.0,
        step_timeout_s: float | None = None,
        retries: int = 3,
        backoff_s: float = 0.2,
        token: str | None = None,
        max_message_bytes: int = 16 * 1024 * 1024,
        channel_options: Sequence[tuple[str, Any]] = (),
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        """Configure the client; the channel opens on the first call.

        Args:
            address: host:port of the server.
            timeout_s: Deadline of every call.
            step_timeout_s: Deadline of StartEpisode, StepEpisode and scoring (``timeout_s`` if
                None); each of those also takes ``timeout_s=`` per call.
            retries: Extra attempts of a retryable call.
            backoff_s: Pause before the first retry; doubled for each further one, jittered.
            token: Sent as ``authorization: Bearer <token>`` metadata.
            max_message_bytes: Largest message sent or received.
            channel_options: Extra gRPC channel options (they win over the defaults).
            credentials: TLS credentials; an insecure channel when None.
        """
        if timeout_s <= 0 or (step_timeout_s is not None and step_timeout_s <= 0):
            raise ValueError("timeouts must be positive")
        if retries < 0 or backoff_s < 0:
            raise ValueError("retries and backoff_s must not be negative")
        self.address = address
        self.timeout_s = timeout_s
        self.step_timeout_s = step_timeout_s if step_timeout_s is not None else timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        # Trajectory pages are asked for a little under what this client can receive.
        self._max_message_bytes = max(1024, max_message_bytes - 1024)
        options: dict[str, Any] = {
            "grpc.max_send_message_length": max_message_bytes,
            "grpc.max_receive_message_length": max_message_bytes,
        }
        options.update(dict(channel_options))
        self._options = list(options.items())
        self._credentials = credentials
        self._channel: grpc.aio.Channel | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    # --- the API ----------------------------------------------------------------------------------

    async def list_environments(self) -> list[EnvironmentDescription]:
        """Every environment offered."""
        response = await self._call(
            "ListEnvironments",
            pb.ListEnvironmentsRequest(),
            pb.ListEnvironmentsResponse,
            Retry.READ,
        )
        return convert.decoding(
            lambda: [convert.environment_from_pb(e) for e in response.environments],
            "ListEnvironments response",
        )

    async def describe_environment(
        self, environment_id: str, params: Mapping[str, Any] | None = None
    ) -> EnvironmentDescription:
        """One environment, loaded with ``params``."""
        request = convert.encoding(
            lambda: pb.DescribeEnvironmentRequest(
                environment_id=environment_id, params_json=convert.params_json(params)
            ),
            "DescribeEnvironment request",
        )
        response = await self._call(
            "DescribeEnvironment", request, pb.DescribeEnvironmentResponse, Retry.READ
        )
        return convert.decoding(
            lambda: convert.environment_from_pb(response.environment),
            "DescribeEnvironment response",
        )

    async def start_episode(
        self,
        environment_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        example_index: int | None = None,
        inline_example: Mapping[str, Any] | None = None,
        seed: int | None = None,
        limits: EpisodeLimitsRequest | None = None,
        timeout_s: float | None = None,
    ) -> EpisodeStart:
        """Start an episode (never retried). ``timeout_s`` overrides the step timeout."""
        request = convert.start_request(
            environment_id,
            params=params,
            example_index=example_index,
            inline_example=inline_example,
            seed=seed,
            limits=limits,
        )
        response = await self._call(
            "StartEpisode",
            request,
            pb.StartEpisodeResponse,
            Retry.NEVER,
            timeout_s or self.step_timeout_s,
        )
        return convert.decoding(lambda: convert.start_from_pb(response), "StartEpisode response")

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
        timeout_s: float | None = None,
    ) -> StepOutput:
        """Play turn ``turn``; retried on UNAVAILABLE (a turn already played is replayed).

        ``turn=0`` asks for "the next turn", which is not safe to repeat, so it is not retried.
        ``timeout_s`` overrides the step timeout; the server shortens tool calls to fit it.
        """
        action = convert.action_to_pb(message, raw_text, token_ids, logprobs, metadata)
        request = convert.encoding(
            lambda: pb.StepEpisodeRequest(episode_id=episode_id, action=action, turn=turn),
            "StepEpisode request",
        )
        response = await self._call(
            "StepEpisode",
            request,
            pb.StepEpisodeResponse,
            Retry.UNAVAILABLE if turn > 0 else Retry.NEVER,
            timeout_s or self.step_timeout_s,
        )
        return convert.decoding(lambda: convert.step_from_pb(response), "StepEpisode response")

    async def score_episode(self, episode_id: str, *, timeout_s: float | None = None) -> Scored:
        """Score what the episode holds; the trajectory is kept and returned whole (the first
        page comes with the reward, the rest through GetTrajectory pages)."""
        response = await self._call(
            "ScoreEpisode",
            pb.ScoreEpisodeRequest(
                episode_id=episode_id,
                include_trajectory=True,
                max_page_bytes=self._max_message_bytes,
            ),
            pb.ScoreEpisodeResponse,
            Retry.UNAVAILABLE,
            timeout_s or self.step_timeout_s,
        )
        pages = await self._rest_of_trajectory(episode_id, response.trajectory)
        return convert.decoding(
            lambda: Scored(
                reward=convert.reward_from_pb(response.reward),
                trajectory=convert.trajectory_from_pb(*pages),
            ),
            "ScoreEpisode response",
        )

    async def score_episodes(
        self, episode_ids: Sequence[str], *, timeout_s: float | None = None
    ) -> list[Reward]:
        """Score a GRPO group (episodes of one example) together."""
        response = await self._call(
            "ScoreEpisodes",
            pb.ScoreEpisodesRequest(episode_ids=list(episode_ids)),
            pb.ScoreEpisodesResponse,
            Retry.UNAVAILABLE,
            timeout_s or self.step_timeout_s,
        )
        return convert.decoding(
            lambda: [convert.reward_from_pb(r) for r in response.rewards],
            "ScoreEpisodes response",
        )

    async def get_trajectory(self, episode_id: str) -> Trajectory:
        """The episode's whole record, gathered page by page."""
        first = await self._trajectory_page(episode_id, "")
        pages = await self._rest_of_trajectory(episode_id, first)
        return convert.decoding(
            lambda: convert.trajectory_from_pb(*pages), "GetTrajectory response"
        )

    async def _trajectory_page(self, episode_id: str, token: str) -> pb.Trajectory:
        response = await self._call(
            "GetTrajectory",
            pb.GetTrajectoryRequest(
                episode_id=episode_id, page_token=token, max_page_bytes=self._max_message_bytes
            ),
            pb.GetTrajectoryResponse,
            Retry.READ,
        )
        return response.trajectory

    async def _rest_of_trajectory(
        self, episode_id: str, first: pb.Trajectory
    ) -> list[pb.Trajectory]:
        """``first`` and every page after it."""
        pages = [first]
        seen: set[str] = set()
        while pages[-1].next_page_token:
            token = pages[-1].next_page_token
            if token in seen:
                raise RuntimeServiceError(f"the server repeated the trajectory page {token!r}")
            seen.add(token)
            pages.append(await self._trajectory_page(episode_id, token))
        return pages

    async def close_episode(self, episode_id: str) -> bool:
        """Free the episode and its sandbox; False if it was already closed.

        A retry after a lost answer may report False for the episode this call closed.
        """
        response = await self._call(
            "CloseEpisode",
            pb.CloseEpisodeRequest(episode_id=episode_id),
            pb.CloseEpisodeResponse,
            Retry.UNAVAILABLE,
        )
        return response.closed

    async def close(self) -> None:
        """Close the channel (idempotent); calls made afterwards fail."""
        self._closed = True
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    # --- transport --------------------------------------------------------------------------------

    def _open(self) -> grpc.aio.Channel:
        if self._closed:
            raise FailedPreconditionError(f"the client of {self.address} is closed")
        if self._channel is None:
            if self._credentials is not None:
                self._channel = grpc.aio.secure_channel(
                    self.address, self._credentials, options=self._options
                )
            else:
                self._channel = grpc.aio.insecure_channel(self.address, options=self._options)
        return self._channel

    async def _call(
        self,
        method: str,
        request: ProtoMessage,
        response_type: type[R],
        retry: Retry,
        timeout_s: float | None = None,
    ) -> R:
        """One RPC with its deadline, retried as ``retry`` allows; errors mapped."""
        timeout = timeout_s or self.timeout_s
        channel = self._open()
        rpc: grpc.aio.UnaryUnaryMultiCallable[ProtoMessage, R] = channel.unary_unary(
            f"/{_SERVICE}/{method}",
            request_serializer=_serialize,
            response_deserializer=response_type.FromString,
        )
        attempt = 0
        while True:
            try:
                return await rpc(request, timeout=timeout, metadata=self._metadata)
            except grpc.aio.AioRpcError as exc:
                if attempt < self.retries and _retryable(exc.code(), retry):
                    await asyncio.sleep(self._backoff(attempt))
                    attempt += 1
                    continue
                error = self._error(exc, method, timeout, attempt + 1)
            raise error

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_s * 2.0**attempt, MAX_BACKOFF_S) * random.uniform(0.5, 1.5)

    def _error(
        self, exc: grpc.aio.AioRpcError, method: str, timeout: float, attempts: int
    ) -> RuntimeServiceError:
        """The `runtime.errors` exception for a failed RPC."""
        code = exc.code()
        details = exc.details() or code.name
        tried = f" ({attempts} attempts)" if attempts > 1 else ""
        cls = _ERRORS.get(code, RuntimeServiceError)
        if code in (_S.UNAVAILABLE, _S.CANCELLED) and not self._connected():
            message = f"cannot reach the episode server at {self.address}: {details}{tried}"
        elif code == _S.DEADLINE_EXCEEDED and details == "Deadline Exceeded":
            message = (
                f"{method} got no answer from the episode server at {self.address} "
                f"within {timeout:g}s{tried}"
            )
        elif code in (_S.UNAUTHENTICATED, _S.PERMISSION_DENIED):
            message = f"the episode server at {self.address} refused the call: {details}"
        elif code == _S.INTERNAL and details.startswith(_SERVER_BUG_PREFIX):
            cls, message = RuntimeServiceError, details
        elif code in _ERRORS:
            message = f"{details}{tried}"
        else:
            message = f"{method} failed with {code.name}: {details}"
        return cls(message)

    def _connected(self) -> bool:
        channel = self._channel
        if channel is None:
            return False
        return channel.get_state(try_to_connect=False) == grpc.ChannelConnectivity.READY


def _retryable(code: grpc.StatusCode, retry: Retry) -> bool:
    if retry is Retry.NEVER:
        return False
    if code == _S.UNAVAILABLE:
        return True
    return retry is Retry.READ and code == _S.DEADLINE_EXCEEDED


__all__ = ["DEFAULT_ADDRESS", "GrpcClient", "Retry"]
