"""Typed results of the client API: pydantic models, never raw protobuf."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from runtime.tools.messages import Message


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToolSpec(_Model):
    """One tool the model may call."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    """JSON schema of the arguments object."""

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI `tools` item."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


class EnvironmentDescription(_Model):
    """What a server says about one environment."""

    id: str
    description: str = ""
    tools: list[ToolSpec] = Field(default_factory=list)
    system_prompt: str | None = None
    max_episode_turns: int
    dataset_size: int


class EpisodeLimitsRequest(_Model):
    """Per-episode limits to ask for; each must lie within the server's caps."""

    call_timeout_s: float | None = None
    max_turns: int | None = None
    output_cap_bytes: int | None = None


class EpisodeStart(_Model):
    """A started episode: its id, opening messages and tools."""

    episode_id: str
    messages: list[Message]
    tools: list[ToolSpec]
    max_episode_turns: int
    example_index: int | None = None


class CallInfo(_Model):
    """Metadata of one executed tool call."""

    tool_call_id: str
    name: str
    exit_code: int | None = None
    duration_s: float = 0.0
    timed_out: bool = False
    output_truncated: bool = False
    error: str | None = None


class StepOutput(_Model):
    """One turn's result."""

    observations: list[Message]
    done: bool
    truncated: bool
    turn: int
    calls: list[CallInfo] = Field(default_factory=list)
    replayed: bool = False
    """The turn had been played before; this is its recorded result."""


class Reward(_Model):
    """An episode's reward."""

    score: float
    threshold: float
    success: bool
    reason: str = ""
    components: dict[str, float] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class TurnRecord(_Model):
    """One played turn as the trajectory keeps it."""

    number: int
    message: Message | None = None
    """The assistant message (parsed, for raw-text actions)."""
    raw_text: str | None = None
    token_ids: list[int] = Field(default_factory=list)
    logprobs: list[float] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    observations: list[Message] = Field(default_factory=list)
    calls: list[CallInfo] = Field(default_factory=list)
    done: bool = False
    truncated: bool = False
    duration_s: float = 0.0
    text_replaced: bool = False
    """Some text of this turn held lone surrogates and is kept with U+FFFD in their place."""


class Trajectory(_Model):
    """An episode's full record (a gRPC client gathers every page of it)."""

    episode_id: str
    environment_id: str
    example_index: int | None = None
    messages: list[Message]
    turns: list[TurnRecord]
    status: str
    done: bool
    truncated: bool
    max_episode_turns: int
    error: str | None = None
    reward: Reward | None = None
    submission: Any = None
    submitted: bool = False
    final_response_text: str | None = None
    text_replaced: bool = False
    """Some text of the record held lone surrogates and is kept with U+FFFD in their place."""


class Scored(_Model):
    """`ScoreEpisode`'s answer: the reward and the trajectory it was computed on."""

    reward: Reward
    trajectory: Trajectory
