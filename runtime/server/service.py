"""`EpisodeService`: maps each RPC to the episode engine. No domain logic lives here."""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc

from runtime.episodes.engine import EpisodeEngine
from runtime.errors import InvalidArgumentError, NotFoundError, ResourceExhaustedError
from runtime.server import convert
from runtime.server.status import Context, lenient, mapped
from runtime.v1 import runtime_pb2 as pb
from runtime.v1 import runtime_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)
SERVICE = pb.DESCRIPTOR.services_by_name["EpisodeService"]


def _require_id(value: str, field: str = "episode_id") -> str:
    if not value:
        raise InvalidArgumentError(f"{field} is required")
    if len(value) > 256:
        raise InvalidArgumentError(f"{field} is too long")
    return value


class EpisodeService(pb_grpc.EpisodeServiceServicer):
    """The gRPC face of one `EpisodeEngine`."""

    def __init__(self, engine: EpisodeEngine, *, max_message_bytes: int = 16 * 1024 * 1024) -> None:
        self.engine = engine
        self.max_message_bytes = max_message_bytes

    def add_to_server(self, server: grpc.aio.Server) -> None:
        """Register every method, with request decoding that never raises (see `lenient`)."""
        handlers: dict[str, Any] = {}
        for method in SERVICE.methods:
            request_type = getattr(pb, method.input_type.name)
            response_type = getattr(pb, method.output_type.name)
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                getattr(self, method.name),
                request_deserializer=lenient(request_type),
                response_serializer=response_type.SerializeToString,
            )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),)
        )

    def _page_bytes(self, asked: int, reserved: int = 0) -> int:
        """The largest trajectory page: what the client asked for, within our message limit."""
        limit = self.max_message_bytes - reserved - convert.ENVELOPE_BYTES
        return min(asked, limit) if asked else limit

    @mapped
    async def ListEnvironments(
        self, request: pb.ListEnvironmentsRequest, context: Context
    ) -> pb.ListEnvironmentsResponse:
        infos = await self.engine.list_environments()
        return pb.ListEnvironmentsResponse(
            environments=[convert.environment_to_pb(info) for info in infos]
        )

    @mapped
    async def DescribeEnvironment(
        self, request: pb.DescribeEnvironmentRequest, context: Context
    ) -> pb.DescribeEnvironmentResponse:
        env_id = _require_id(request.environment_id, "environment_id")
        params = convert.json_object(request.params_json, "params_json")
        info = await self.engine.describe_environment(env_id, params)
        return pb.DescribeEnvironmentResponse(environment=convert.environment_to_pb(info))

    @mapped
    async def StartEpisode(
        self, request: pb.StartEpisodeRequest, context: Context
    ) -> pb.StartEpisodeResponse:
        env_id = _require_id(request.environment_id, "environment_id")
        started = await self.engine.start_episode(
            env_id,
            params=convert.json_object(request.params_json, "params_json"),
            example=convert.example_from_pb(request),
            seed=request.seed if request.HasField("seed") else None,
            limits=convert.limits_from_pb(request.limits),
        )
        try:
            response = pb.StartEpisodeResponse(
                episode_id=started.episode_id,
                messages=[convert.message_to_pb(m) for m in started.messages],
                tools=[convert.tool_to_pb(t) for t in started.tools],
                max_episode_turns=started.max_turns,
            )
        except BaseException:
            await self._discard(started.episode_id)
            raise
        try:
            if started.example_index is not None:
                response.example_index = started.example_index
            size = response.ByteSize()
            if size > self.max_message_bytes:
                raise ResourceExhaustedError(
                    f"the episode's opening answer would be {size} bytes, over this server's "
                    f"message limit of {self.max_message_bytes}; the episode was not kept"
                )
        except BaseException:
            # The client never learns this episode's id: nothing of it may stay.
            await self._discard(started.episode_id)
            raise
        return response

    async def _discard(self, episode_id: str) -> None:
        try:
            await self.engine.close_episode(episode_id, reason="closed: its StartEpisode failed")
        except NotFoundError:
            pass
        except Exception:
            log.warning("could not remove episode %s after a failed start", episode_id)

    @mapped
    async def StepEpisode(
        self, request: pb.StepEpisodeRequest, context: Context
    ) -> pb.StepEpisodeResponse:
        episode_id = _require_id(request.episode_id)
        if not request.HasField("action"):
            raise InvalidArgumentError("action is required")
        action = convert.action_from_pb(request.action)
        remaining = context.time_remaining()
        deadline = time.monotonic() + remaining if remaining is not None else None
        outcome = await self.engine.step_episode(
            episode_id, action, expected_turn=request.turn or None, deadline=deadline
        )
        return convert.step_to_pb(outcome.turn, replayed=outcome.replayed)

    @mapped
    async def ScoreEpisode(
        self, request: pb.ScoreEpisodeRequest, context: Context
    ) -> pb.ScoreEpisodeResponse:
        episode_id = _require_id(request.episode_id)
        reward, _ = await self.engine.score_episode(episode_id)
        response = pb.ScoreEpisodeResponse(reward=convert.reward_to_pb(reward))
        if request.include_trajectory:
            record = self.engine.record(episode_id)
            limit = self._page_bytes(request.max_page_bytes, reserved=response.ByteSize())
            response.trajectory.CopyFrom(convert.trajectory_page(record, 0, limit))
        return response

    @mapped
    async def ScoreEpisodes(
        self, request: pb.ScoreEpisodesRequest, context: Context
    ) -> pb.ScoreEpisodesResponse:
        ids = [_require_id(i, "episode_ids[]") for i in request.episode_ids]
        rewards = await self.engine.score_episodes(ids)
        return pb.ScoreEpisodesResponse(rewards=[convert.reward_to_pb(r) for r in rewards])

    @mapped
    async def GetTrajectory(
        self, request: pb.GetTrajectoryRequest, context: Context
    ) -> pb.GetTrajectoryResponse:
        start = convert.page_start(request.page_token)
        record = self.engine.record(_require_id(request.episode_id))
        page = convert.trajectory_page(record, start, self._page_bytes(request.max_page_bytes))
        return pb.GetTrajectoryResponse(trajectory=page)

    @mapped
    async def CloseEpisode(
        self, request: pb.CloseEpisodeRequest, context: Context
    ) -> pb.CloseEpisodeResponse:
        closed = await self.engine.close_episode(_require_id(request.episode_id))
        return pb.CloseEpisodeResponse(closed=closed)
