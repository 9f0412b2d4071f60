"""Protobuf ↔ domain conversions; the only module besides the service that sees `runtime_pb2`.

Inbound conversions validate: anything malformed raises `InvalidArgumentError` with the field
named, which the service maps to INVALID_ARGUMENT.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic import ValidationError

from runtime.env.types import Action, Episode, RewardResult, Turn
from runtime.episodes.engine import ExampleRef
from runtime.episodes.limits import EpisodeLimits
from runtime.episodes.record import EpisodeRecord
from runtime.episodes.registry import EnvironmentInfo
from runtime.errors import InvalidArgumentError
from runtime.tools.executor import CallRecord
from runtime.tools.messages import Message, ToolCall
from runtime.v1 import runtime_pb2 as pb

_ROLES = ("system", "user", "assistant", "tool")
_PAGE_TOKEN = re.compile(r"^t([0-9]{1,9})$")
ENVELOPE_BYTES = 64
"""Room a page leaves for the response around it (field tags and lengths)."""


def json_value(text: str, field: str, *, default: Any = None) -> Any:
    """Parse a JSON string field; empty means ``default``."""
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidArgumentError(f"{field} is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidArgumentError(f"{field} is nested too deeply") from exc


def json_object(text: str, field: str) -> dict[str, Any]:
    """Parse a JSON object field; empty means ``{}``."""
    value = json_value(text, field, default={})
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{field} must be a JSON object, got {type(value).__name__}")
    return value


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def message_to_pb(message: Message) -> pb.Message:
    """A domain message as protobuf."""
    out = pb.Message(
        role=message.role,
        tool_calls=[
            pb.ToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in message.tool_calls
        ],
        tool_call_id=message.tool_call_id or "",
        name=message.name or "",
    )
    if message.content is not None:
        out.content = message.content
    return out


def message_from_pb(message: pb.Message, field: str) -> Message:
    """A protobuf message as a validated domain message."""
    if message.role not in _ROLES:
        raise InvalidArgumentError(f"{field}.role must be one of {_ROLES}, got {message.role!r}")
    try:
        return Message(
            role=message.role,  # type: ignore[arg-type]
            content=message.content if message.HasField("content") else None,
            tool_calls=[
                ToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in message.tool_calls
            ],
            tool_call_id=message.tool_call_id or None,
            name=message.name or None,
        )
    except ValidationError as exc:
        raise InvalidArgumentError(f"{field} is invalid: {exc.errors()[0]['msg']}") from exc


def tool_to_pb(schema: dict[str, Any]) -> pb.Tool:
    """An OpenAI-format tool schema as protobuf."""
    function = schema.get("function", {})
    return pb.Tool(
        name=function.get("name", ""),
        description=function.get("description", ""),
        parameters_json=_dumps(function.get("parameters", {})),
    )


def environment_to_pb(info: EnvironmentInfo) -> pb.EnvironmentInfo:
    """An environment description as protobuf."""
    out = pb.EnvironmentInfo(
        id=info.id,
        description=info.description,
        tools=[tool_to_pb(t) for t in info.tools],
        max_episode_turns=info.max_turns,
        dataset_size=info.dataset_size,
    )
    if info.system_prompt is not None:
        out.system_prompt = info.system_prompt
    return out


def example_from_pb(request: pb.StartEpisodeRequest) -> ExampleRef:
    """Which example a StartEpisode asks for."""
    which = request.WhichOneof("example")
    if which == "example_index":
        return ExampleRef(index=request.example_index)
    if which == "inline_example":
        inline = request.inline_example
        if not inline.input_json:
            raise InvalidArgumentError("inline_example.input_json is required")
        record = {
            "input": json_value(inline.input_json, "inline_example.input_json"),
            "output": json_value(inline.output_json, "inline_example.output_json"),
            "metadata": json_object(inline.metadata_json, "inline_example.metadata_json"),
        }
        return ExampleRef(inline=record)
    return ExampleRef()


def limits_from_pb(limits: pb.EpisodeLimits) -> EpisodeLimits:
    """Per-episode limits; unset fields keep the defaults."""
    timeout = limits.call_timeout_seconds if limits.HasField("call_timeout_seconds") else None
    if timeout is not None and not math.isfinite(timeout):
        raise InvalidArgumentError("limits.call_timeout_seconds must be finite")
    return EpisodeLimits(
        call_timeout_s=timeout,
        max_turns=limits.max_turns if limits.HasField("max_turns") else None,
        output_cap_bytes=limits.output_cap_bytes if limits.HasField("output_cap_bytes") else None,
    )


def action_from_pb(action: pb.Action) -> Action:
    """The model's move; exactly one of message and raw_text must be set."""
    which = action.WhichOneof("kind")
    if which is None:
        raise InvalidArgumentError("action must set either message or raw_text")
    if len(action.logprobs) not in (0, len(action.token_ids)):
        raise InvalidArgumentError(
            f"action has {len(action.token_ids)} token_ids but {len(action.logprobs)} logprobs"
        )
    metadata = json_object(action.metadata_json, "action.metadata_json")
    if which == "message":
        message = message_from_pb(action.message, "action.message")
        raw = None
    else:
        message = Message(role="assistant")
        raw = action.raw_text
    return Action(
        message=message,
        raw_text=raw,
        token_ids=list(action.token_ids),
        logprobs=list(action.logprobs),
        metadata=metadata,
    )


def action_to_pb(action: Action) -> pb.Action:
    """A recorded action as protobuf: always the (parsed) message; the raw text goes in
    `Turn.raw_text`."""
    out = pb.Action(
        token_ids=action.token_ids,
        logprobs=action.logprobs,
        metadata_json=_dumps(action.metadata) if action.metadata else "",
    )
    out.message.CopyFrom(message_to_pb(action.message))
    return out


def call_to_pb(record: CallRecord) -> pb.CallInfo:
    """One tool call's metadata as protobuf."""
    out = pb.CallInfo(
        tool_call_id=record.tool_call_id,
        name=record.name,
        duration_seconds=record.duration_s,
        timed_out=record.timed_out,
        output_truncated=record.output_truncated,
        error=record.error or "",
    )
    if record.exit_code is not None:
        out.exit_code = record.exit_code
    return out


def step_to_pb(turn: Turn, *, replayed: bool) -> pb.StepEpisodeResponse:
    """A played turn as the StepEpisode response."""
    return pb.StepEpisodeResponse(
        observations=[message_to_pb(m) for m in turn.observations],
        done=turn.done,
        truncated=turn.truncated,
        turn=turn.number,
        calls=[call_to_pb(c) for c in turn.calls],
        replayed=replayed,
    )


def reward_to_pb(reward: RewardResult) -> pb.RewardResult:
    """A reward as protobuf."""
    return pb.RewardResult(
        score=reward.score,
        threshold=reward.threshold,
        success=bool(reward.success),
        reason=reward.reason,
        components=reward.components,
        metadata_json=_dumps(reward.metadata) if reward.metadata else "",
    )


def turn_to_pb(turn: Turn, *, text_replaced: bool = False) -> pb.Turn:
    """One recorded turn as protobuf."""
    return pb.Turn(
        number=turn.number,
        action=action_to_pb(turn.action),
        observations=[message_to_pb(m) for m in turn.observations],
        calls=[call_to_pb(c) for c in turn.calls],
        done=turn.done,
        truncated=turn.truncated,
        duration_seconds=turn.duration_s,
        raw_text=turn.action.raw_text,
        text_replaced=text_replaced,
    )


def _trajectory_header(record: EpisodeRecord) -> pb.Trajectory:
    """Everything of a trajectory page but its turns and opening messages."""
    episode = record.episode
    out = pb.Trajectory(
        episode_id=episode.id,
        environment_id=episode.environment_id,
        status=episode.status,
        done=episode.done,
        truncated=episode.truncated,
        max_episode_turns=episode.max_turns,
        error=episode.error or "",
        text_replaced=record.text_replaced,
        turn_count=len(episode.turns),
    )
    if episode.example.index is not None:
        out.example_index = episode.example.index
    if episode.reward is not None:
        out.reward.CopyFrom(reward_to_pb(episode.reward))
    if episode.submitted:
        out.submission_json = _dumps(episode.submission)
    if episode.final_response_text is not None:
        out.final_response_text = episode.final_response_text
    return out


def page_start(token: str) -> int:
    """The index of the first turn a page token names ("" is the first page)."""
    if not token:
        return 0
    match = _PAGE_TOKEN.match(token)
    if match is None:
        raise InvalidArgumentError(
            "page_token is not a token this server gave (pass a trajectory's next_page_token)"
        )
    return int(match.group(1))


def trajectory_page(record: EpisodeRecord, start: int, max_bytes: int) -> pb.Trajectory:
    """The page of the record that begins at turn index ``start``: as many whole turns as fit
    in ``max_bytes`` (at least one), and the token of the next page if turns are left."""
    turns = record.episode.turns
    if start > len(turns):
        raise InvalidArgumentError(
            f"page_token points past the {len(turns)} turns of episode {record.episode.id}"
        )
    out = _trajectory_header(record)
    if start == 0:
        out.messages.extend(message_to_pb(m) for m in _opening(record.episode))
    size = out.ByteSize() + ENVELOPE_BYTES
    for index in range(start, len(turns)):
        turn = turns[index]
        item = turn_to_pb(turn, text_replaced=turn.number in record.replaced_turns)
        item_size = item.ByteSize() + 6  # its tag and length
        if index > start and size + item_size > max_bytes:
            out.next_page_token = f"t{index}"
            break
        out.turns.append(item)
        size += item_size
    return out


def _opening(episode: Episode) -> list[Any]:
    """The opening messages: what the message list holds before the first turn's action."""
    played = sum(1 + len(t.observations) for t in episode.turns)
    return episode.messages[: len(episode.messages) - played]
