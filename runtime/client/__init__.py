"""Client library: one interface (`EpisodeClient`) over gRPC or an in-process engine."""

from runtime.client.base import EpisodeClient, EpisodeHandle
from runtime.client.grpc_client import GrpcClient
from runtime.client.in_process import InProcessClient
from runtime.client.models import (
    CallInfo,
    EnvironmentDescription,
    EpisodeLimitsRequest,
    EpisodeStart,
    Reward,
    Scored,
    StepOutput,
    ToolSpec,
    Trajectory,
    TurnRecord,
)
from runtime.client.sync import SyncClient, SyncEpisodeHandle

__all__ = [
    "CallInfo",
    "EnvironmentDescription",
    "EpisodeClient",
    "EpisodeHandle",
    "EpisodeLimitsRequest",
    "EpisodeStart",
    "GrpcClient",
    "InProcessClient",
    "Reward",
    "Scored",
    "StepOutput",
    "SyncClient",
    "SyncEpisodeHandle",
    "ToolSpec",
    "Trajectory",
    "TurnRecord",
]
