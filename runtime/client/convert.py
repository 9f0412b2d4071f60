"""Client-side protobuf ↔ model conversions: the inverse of `runtime.server.convert`.

Requests are built from the client's arguments; anything that cannot be encoded (a value out
of a field's range, params that are not JSON) raises `InvalidArgumentError` before it is sent.
Responses become the pydantic models of `runtime.client.models`, equal to what the in-process
client returns for the same episode; a response that does not decode raises
`RuntimeServiceError` (the server broke the contract).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError

from runtime.client.models import (
    CallInfo,
    EnvironmentDescription,
    EpisodeLimitsRequest,
    EpisodeStart,
    Reward,
    StepOutput,
    ToolSpec,
    Trajectory,
    TurnRecord,
)
from runtime.errors import InvalidArgumentError, RuntimeServiceError
from runtime.tools.messages import Message, ToolCall
from runtime.v1 import runtime_pb2 as pb

T = TypeVar("T")


# --- requests ----------------------------------------------------------------------------------


def _dumps(value: Any, field: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidArgumentError(f"{field} cannot be sent as JSON: {exc}") from exc


def encoding(build: Callable[[], T], what: str) -> T:
    """Run ``build`` (a request constructor); out-of-range values become InvalidArgumentError."""
    try:
        return build()
    except InvalidArgumentError:
        raise
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"{what}: {exc}") from exc


def params_json(params: Mapping[str, Any] | None) -> str:
    """Environment params as the JSON object string of the wire; empty for none."""
    return _dumps(dict(params), "params") if params is not None else ""


def message_to_pb(message: Message) -> pb.Message:
    """A chat message as protobuf (content stays unset when it is None)."""
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


def limits_to_pb(limits: EpisodeLimitsRequest) -> pb.EpisodeLimits:
    """Per-episode limits; fields left None stay unset (the server's defaults apply)."""
    out = pb.EpisodeLimits()
    if limits.call_timeout_s is not None:
        out.call_timeout_seconds = limits.call_timeout_s
    if limits.max_turns is not None:
        out.max_turns = limits.max_turns
    if limits.output_cap_bytes is not None:
        out.output_cap_bytes = limits.output_cap_bytes
    return out


def inline_example_to_pb(record: Mapping[str, Any]) -> pb.InlineExample:
    """An inline ``{input, output, metadata}`` record; other keys are ignored, as in-process."""
    if "input" not in record:
        raise InvalidArgumentError(
            f"inline example: the inline example has no 'input' field (keys: {sorted(record)[:10]})"
        )
    output = record.get("output")
    metadata = record.get("metadata")
    return pb.InlineExample(
        input_json=_dumps(record["input"], "inline_example.input"),
        output_json=_dumps(output, "inline_example.output") if output is not None else "",
        metadata_json=_dumps(metadata, "inline_example.metadata") if metadata else "",
    )


def start_request(
    environment_id: str,
    *,
    params: Mapping[str, Any] | None,
    example_index: int | None,
    inline_example: Mapping[str, Any] | None,
    seed: int | None,
    limits: EpisodeLimitsRequest | None,
) -> pb.StartEpisodeRequest:
    """The StartEpisode request."""
    if example_index is not None and inline_example is not None:
        raise InvalidArgumentError("pass example_index or inline_example, not both")

    def build() -> pb.StartEpisodeRequest:
        request = pb.StartEpisodeRequest(
            environment_id=environment_id, params_json=params_json(params)
        )
        if example_index is not None:
            request.example_index = example_index
        if inline_example is not None:
            request.inline_example.CopyFrom(inline_example_to_pb(inline_example))
        if seed is not None:
            request.seed = seed
        if limits is not None:
            request.limits.CopyFrom(limits_to_pb(limits))
        return request

    return encoding(build, "StartEpisode request")


def action_to_pb(
    message: Message | None,
    raw_text: str | None,
    token_ids: Sequence[int],
    logprobs: Sequence[float],
    metadata: Mapping[str, Any] | None,
) -> pb.Action:
    """The model's move: raw text for the action parser, else the message (empty if None)."""
    if message is not None and raw_text is not None:
        raise InvalidArgumentError("an action is either a message or raw_text, not both")

    def build() -> pb.Action:
        out = pb.Action(
            token_ids=list(token_ids),
            logprobs=list(logprobs),
            metadata_json=_dumps(dict(metadata), "metadata") if metadata else "",
        )
        if raw_text is not None:
            out.raw_text = raw_text
        else:
            out.message.CopyFrom(message_to_pb(message or Message(role="assistant")))
        return out

    return encoding(build, "action")


# --- responses ---------------------------------------------------------------------------------


def decoding(build: Callable[[], T], what: str) -> T:
    """Run ``build`` (a response conversion); a malformed response becomes RuntimeServiceError."""
    try:
        return build()
    except (ValidationError, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise RuntimeServiceError(f"the server sent a malformed {what}: {exc}") from exc


def _json(text: str, default: Any = None) -> Any:
    return json.loads(text) if text else default


def _json_object(text: str, field: str) -> dict[str, Any]:
    value = _json(text, {})
    if not isinstance(value, dict):
        raise ValueError(f"{field} is not a JSON object")
    return value


def message_from_pb(message: pb.Message) -> Message:
    """A protobuf message as a chat message (unset content → None, empty ids → None)."""
    return Message(
        role=message.role,  # type: ignore[arg-type]  # validated by pydantic
        content=message.content if message.HasField("content") else None,
        tool_calls=[
            ToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in message.tool_calls
        ],
        tool_call_id=message.tool_call_id or None,
        name=message.name or None,
    )


def tool_from_pb(tool: pb.Tool) -> ToolSpec:
    """A tool with its JSON schema parsed."""
    return ToolSpec(
        name=tool.name,
        description=tool.description,
        parameters=_json_object(tool.parameters_json, "parameters_json"),
    )


def environment_from_pb(info: pb.EnvironmentInfo) -> EnvironmentDescription:
    """An environment description."""
    return EnvironmentDescription(
        id=info.id,
        description=info.description,
        tools=[tool_from_pb(t) for t in info.tools],
        system_prompt=info.system_prompt if info.HasField("system_prompt") else None,
        max_episode_turns=info.max_episode_turns,
        dataset_size=info.dataset_size,
    )


def start_from_pb(response: pb.StartEpisodeResponse) -> EpisodeStart:
    """A started episode."""
    return EpisodeStart(
        episode_id=response.episode_id,
        messages=[message_from_pb(m) for m in response.messages],
        tools=[tool_from_pb(t) for t in response.tools],
        max_episode_turns=response.max_episode_turns,
        example_index=response.example_index if response.HasField("example_index") else None,
    )


def call_from_pb(info: pb.CallInfo) -> CallInfo:
    """One tool call's metadata (unset exit code → None, empty error → None)."""
    return CallInfo(
        tool_call_id=info.tool_call_id,
        name=info.name,
        exit_code=info.exit_code if info.HasField("exit_code") else None,
        duration_s=info.duration_seconds,
        timed_out=info.timed_out,
        output_truncated=info.output_truncated,
        error=info.error or None,
    )


def step_from_pb(response: pb.StepEpisodeResponse) -> StepOutput:
    """One turn's result."""
    return StepOutput(
        observations=[message_from_pb(m) for m in response.observations],
        done=response.done,
        truncated=response.truncated,
        turn=response.turn,
        calls=[call_from_pb(c) for c in response.calls],
        replayed=response.replayed,
    )


def reward_from_pb(reward: pb.RewardResult) -> Reward:
    """A reward (metadata parsed from JSON)."""
    return Reward(
        score=reward.score,
        threshold=reward.threshold,
        success=reward.success,
        reason=reward.reason,
        components=dict(reward.components),
        metadata=_json_object(reward.metadata_json, "reward.metadata_json"),
    )


def turn_from_pb(turn: pb.Turn) -> TurnRecord:
    """One recorded turn: the parsed message, and the raw text it came from, if any."""
    action = turn.action
    kind = action.WhichOneof("kind")
    message: Message | None = None
    raw: str | None = turn.raw_text if turn.HasField("raw_text") else None
    if kind == "message":
        message = message_from_pb(action.message)
    elif kind == "raw_text":
        message, raw = Message(role="assistant"), action.raw_text
    return TurnRecord(
        number=turn.number,
        message=message,
        raw_text=raw,
        token_ids=list(action.token_ids),
        logprobs=list(action.logprobs),
        metadata=_json_object(action.metadata_json, "action.metadata_json"),
        observations=[message_from_pb(m) for m in turn.observations],
        calls=[call_from_pb(c) for c in turn.calls],
        done=turn.done,
        truncated=turn.truncated,
        duration_s=turn.duration_seconds,
        text_replaced=turn.text_replaced,
    )


def trajectory_from_pb(*pages: pb.Trajectory) -> Trajectory:
    """An episode's record from its pages, in order: the state is the last page's, the turns
    are every page's, and the message list is rebuilt whole (the opening messages, then each
    turn's action message and observations), as the in-process client gives it."""
    first, last = pages[0], pages[-1]
    submitted = last.HasField("submission_json")
    turns = [turn_from_pb(t) for page in pages for t in page.turns]
    messages = [message_from_pb(m) for m in first.messages]
    for turn in turns:
        if turn.message is not None:
            messages.append(turn.message)
        messages.extend(turn.observations)
    return Trajectory(
        episode_id=last.episode_id,
        environment_id=last.environment_id,
        example_index=(last.example_index if last.HasField("example_index") else None),
        messages=messages,
        turns=turns,
        status=last.status,
        done=last.done,
        truncated=last.truncated,
        max_episode_turns=last.max_episode_turns,
        error=last.error or None,
        reward=reward_from_pb(last.reward) if last.HasField("reward") else None,
        submission=_json(last.submission_json) if submitted else None,
        submitted=submitted,
        final_response_text=(
            last.final_response_text if last.HasField("final_response_text") else None
        ),
        text_replaced=any(page.text_replaced for page in pages),
    )
