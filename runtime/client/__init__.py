"""Client library: one interface (`EpisodeClient`) over gRPC or an in-process engine."""

from typing import Any

from runtime.client.base import EpisodeClient, EpisodeHandle
from runtime.client.grpc_client import GrpcClient
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


def __getattr__(name: str) -> Any:
    # Lazy: the in-process client pulls in the engine and Docker; a gRPC-only user skips them.
    if name == "InProcessClient":
        from runtime.client.in_process import InProcessClient

        return InProcessClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
