"""`EpisodeService`: maps each RPC to the episode engine. No domain logic lives here."""

from __future__ import annotations

import time

from runtime.episodes.engine import EpisodeEngine
from runtime.errors import InvalidArgumentError
from runtime.server import convert
from runtime.server.status import Context, mapped
from runtime.v1 import runtime_pb2 as pb
from runtime.v1 import runtime_pb2_grpc as pb_grpc


def _require_id(value: str, field: str = "episode_id") -> str:
    if not value:
        raise InvalidArgumentError(f"{field} is required")
    if len(value) > 256:
        raise InvalidArgumentError(f"{field} is too long")
    return value


class EpisodeService(pb_grpc.EpisodeServiceServicer):
    """The gRPC face of one `EpisodeEngine`."""

    def __init__(self, engine: EpisodeEngine) -> None:
        self.engine = engine

    @mapped
    async def ListEnvironments(
        self, request: pb.ListEnvironmentsRequest, context: Context
    ) -> pb.ListEnvironmentsResponse:
        infos = self.engine.list_environments()
        return pb.ListEnvironmentsResponse(
            environments=[convert.environment_to_pb(info) for info in infos]
        )

    @mapped
    async def DescribeEnvironment(
        self, request: pb.DescribeEnvironmentRequest, context: Context
    ) -> pb.DescribeEnvironmentResponse:
        env_id = _require_id(request.environment_id, "environment_id")
        params = convert.json_object(request.params_json, "params_json")
        info = self.engine.describe_environment(env_id, params)
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
        response = pb.StartEpisodeResponse(
            episode_id=started.episode_id,
            messages=[convert.message_to_pb(m) for m in started.messages],
            tools=[convert.tool_to_pb(t) for t in started.tools],
            max_episode_turns=started.max_turns,
        )
        if started.example_index is not None:
            response.example_index = started.example_index
        return response

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
        reward, episode = await self.engine.score_episode(_require_id(request.episode_id))
        return pb.ScoreEpisodeResponse(
            reward=convert.reward_to_pb(reward), trajectory=convert.trajectory_to_pb(episode)
        )

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
        episode = self.engine.get_trajectory(_require_id(request.episode_id))
        return pb.GetTrajectoryResponse(trajectory=convert.trajectory_to_pb(episode))

    @mapped
    async def CloseEpisode(
        self, request: pb.CloseEpisodeRequest, context: Context
    ) -> pb.CloseEpisodeResponse:
        closed = await self.engine.close_episode(_require_id(request.episode_id))
        return pb.CloseEpisodeResponse(closed=closed)
