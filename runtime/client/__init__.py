"""Client library: one interface (`EpisodeClient`) over gRPC or an in-process engine."""

from runtime.client.base import EpisodeClient, EpisodeHandle
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

__all__ = [
    "CallInfo",
    "EnvironmentDescription",
    "EpisodeClient",
    "EpisodeHandle",
    "EpisodeLimitsRequest",
    "EpisodeStart",
    "InProcessClient",
    "Reward",
    "Scored",
    "StepOutput",
    "ToolSpec",
    "Trajectory",
    "TurnRecord",
]
