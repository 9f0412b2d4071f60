from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ToolCall(_message.Message):
    __slots__ = ("id", "name", "arguments")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    arguments: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., arguments: _Optional[str] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("role", "content", "tool_calls", "tool_call_id", "name")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    role: str
    content: str
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolCall]
    tool_call_id: str
    name: str
    def __init__(self, role: _Optional[str] = ..., content: _Optional[str] = ..., tool_calls: _Optional[_Iterable[_Union[ToolCall, _Mapping]]] = ..., tool_call_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class Tool(_message.Message):
    __slots__ = ("name", "description", "parameters_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    parameters_json: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., parameters_json: _Optional[str] = ...) -> None: ...

class EnvironmentInfo(_message.Message):
    __slots__ = ("id", "description", "tools", "system_prompt", "max_episode_turns", "dataset_size")
    ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_EPISODE_TURNS_FIELD_NUMBER: _ClassVar[int]
    DATASET_SIZE_FIELD_NUMBER: _ClassVar[int]
    id: str
    description: str
    tools: _containers.RepeatedCompositeFieldContainer[Tool]
    system_prompt: str
    max_episode_turns: int
    dataset_size: int
    def __init__(self, id: _Optional[str] = ..., description: _Optional[str] = ..., tools: _Optional[_Iterable[_Union[Tool, _Mapping]]] = ..., system_prompt: _Optional[str] = ..., max_episode_turns: _Optional[int] = ..., dataset_size: _Optional[int] = ...) -> None: ...

class ListEnvironmentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListEnvironmentsResponse(_message.Message):
    __slots__ = ("environments",)
    ENVIRONMENTS_FIELD_NUMBER: _ClassVar[int]
    environments: _containers.RepeatedCompositeFieldContainer[EnvironmentInfo]
    def __init__(self, environments: _Optional[_Iterable[_Union[EnvironmentInfo, _Mapping]]] = ...) -> None: ...

class DescribeEnvironmentRequest(_message.Message):
    __slots__ = ("environment_id", "params_json")
    ENVIRONMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    environment_id: str
    params_json: str
    def __init__(self, environment_id: _Optional[str] = ..., params_json: _Optional[str] = ...) -> None: ...

class DescribeEnvironmentResponse(_message.Message):
    __slots__ = ("environment",)
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    environment: EnvironmentInfo
    def __init__(self, environment: _Optional[_Union[EnvironmentInfo, _Mapping]] = ...) -> None: ...

class InlineExample(_message.Message):
    __slots__ = ("input_json", "output_json", "metadata_json")
    INPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    input_json: str
    output_json: str
    metadata_json: str
    def __init__(self, input_json: _Optional[str] = ..., output_json: _Optional[str] = ..., metadata_json: _Optional[str] = ...) -> None: ...

class EpisodeLimits(_message.Message):
    __slots__ = ("call_timeout_seconds", "max_turns", "output_cap_bytes")
    CALL_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_TURNS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_CAP_BYTES_FIELD_NUMBER: _ClassVar[int]
    call_timeout_seconds: float
    max_turns: int
    output_cap_bytes: int
    def __init__(self, call_timeout_seconds: _Optional[float] = ..., max_turns: _Optional[int] = ..., output_cap_bytes: _Optional[int] = ...) -> None: ...

class StartEpisodeRequest(_message.Message):
    __slots__ = ("environment_id", "params_json", "example_index", "inline_example", "seed", "limits")
    ENVIRONMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_INDEX_FIELD_NUMBER: _ClassVar[int]
    INLINE_EXAMPLE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    environment_id: str
    params_json: str
    example_index: int
    inline_example: InlineExample
    seed: int
    limits: EpisodeLimits
    def __init__(self, environment_id: _Optional[str] = ..., params_json: _Optional[str] = ..., example_index: _Optional[int] = ..., inline_example: _Optional[_Union[InlineExample, _Mapping]] = ..., seed: _Optional[int] = ..., limits: _Optional[_Union[EpisodeLimits, _Mapping]] = ...) -> None: ...

class StartEpisodeResponse(_message.Message):
    __slots__ = ("episode_id", "messages", "tools", "max_episode_turns", "example_index")
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    MAX_EPISODE_TURNS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_INDEX_FIELD_NUMBER: _ClassVar[int]
    episode_id: str
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    tools: _containers.RepeatedCompositeFieldContainer[Tool]
    max_episode_turns: int
    example_index: int
    def __init__(self, episode_id: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., tools: _Optional[_Iterable[_Union[Tool, _Mapping]]] = ..., max_episode_turns: _Optional[int] = ..., example_index: _Optional[int] = ...) -> None: ...

class Action(_message.Message):
    __slots__ = ("message", "raw_text", "token_ids", "logprobs", "metadata_json")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RAW_TEXT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    message: Message
    raw_text: str
    token_ids: _containers.RepeatedScalarFieldContainer[int]
    logprobs: _containers.RepeatedScalarFieldContainer[float]
    metadata_json: str
    def __init__(self, message: _Optional[_Union[Message, _Mapping]] = ..., raw_text: _Optional[str] = ..., token_ids: _Optional[_Iterable[int]] = ..., logprobs: _Optional[_Iterable[float]] = ..., metadata_json: _Optional[str] = ...) -> None: ...

class StepEpisodeRequest(_message.Message):
    __slots__ = ("episode_id", "action", "turn")
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TURN_FIELD_NUMBER: _ClassVar[int]
    episode_id: str
    action: Action
    turn: int
    def __init__(self, episode_id: _Optional[str] = ..., action: _Optional[_Union[Action, _Mapping]] = ..., turn: _Optional[int] = ...) -> None: ...

class CallInfo(_message.Message):
    __slots__ = ("tool_call_id", "name", "exit_code", "duration_seconds", "timed_out", "output_truncated", "error")
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TIMED_OUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    tool_call_id: str
    name: str
    exit_code: int
    duration_seconds: float
    timed_out: bool
    output_truncated: bool
    error: str
    def __init__(self, tool_call_id: _Optional[str] = ..., name: _Optional[str] = ..., exit_code: _Optional[int] = ..., duration_seconds: _Optional[float] = ..., timed_out: _Optional[bool] = ..., output_truncated: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class StepEpisodeResponse(_message.Message):
    __slots__ = ("observations", "done", "truncated", "turn", "calls", "replayed")
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    TURN_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    observations: _containers.RepeatedCompositeFieldContainer[Message]
    done: bool
    truncated: bool
    turn: int
    calls: _containers.RepeatedCompositeFieldContainer[CallInfo]
    replayed: bool
    def __init__(self, observations: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., done: _Optional[bool] = ..., truncated: _Optional[bool] = ..., turn: _Optional[int] = ..., calls: _Optional[_Iterable[_Union[CallInfo, _Mapping]]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class RewardResult(_message.Message):
    __slots__ = ("score", "threshold", "success", "reason", "components", "metadata_json")
    class ComponentsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    SCORE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    score: float
    threshold: float
    success: bool
    reason: str
    components: _containers.ScalarMap[str, float]
    metadata_json: str
    def __init__(self, score: _Optional[float] = ..., threshold: _Optional[float] = ..., success: _Optional[bool] = ..., reason: _Optional[str] = ..., components: _Optional[_Mapping[str, float]] = ..., metadata_json: _Optional[str] = ...) -> None: ...

class Turn(_message.Message):
    __slots__ = ("number", "action", "observations", "calls", "done", "truncated", "duration_seconds", "raw_text", "text_replaced")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RAW_TEXT_FIELD_NUMBER: _ClassVar[int]
    TEXT_REPLACED_FIELD_NUMBER: _ClassVar[int]
    number: int
    action: Action
    observations: _containers.RepeatedCompositeFieldContainer[Message]
    calls: _containers.RepeatedCompositeFieldContainer[CallInfo]
    done: bool
    truncated: bool
    duration_seconds: float
    raw_text: str
    text_replaced: bool
    def __init__(self, number: _Optional[int] = ..., action: _Optional[_Union[Action, _Mapping]] = ..., observations: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., calls: _Optional[_Iterable[_Union[CallInfo, _Mapping]]] = ..., done: _Optional[bool] = ..., truncated: _Optional[bool] = ..., duration_seconds: _Optional[float] = ..., raw_text: _Optional[str] = ..., text_replaced: _Optional[bool] = ...) -> None: ...

class Trajectory(_message.Message):
    __slots__ = ("episode_id", "environment_id", "example_index", "messages", "turns", "status", "done", "truncated", "max_episode_turns", "error", "reward", "submission_json", "final_response_text", "text_replaced", "next_page_token", "turn_count")
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_ID_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_INDEX_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    TURNS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    MAX_EPISODE_TURNS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    SUBMISSION_JSON_FIELD_NUMBER: _ClassVar[int]
    FINAL_RESPONSE_TEXT_FIELD_NUMBER: _ClassVar[int]
    TEXT_REPLACED_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TURN_COUNT_FIELD_NUMBER: _ClassVar[int]
    episode_id: str
    environment_id: str
    example_index: int
    messages: _containers.RepeatedCompositeFieldContainer[Message]
    turns: _containers.RepeatedCompositeFieldContainer[Turn]
    status: str
    done: bool
    truncated: bool
    max_episode_turns: int
    error: str
    reward: RewardResult
    submission_json: str
    final_response_text: str
    text_replaced: bool
    next_page_token: str
    turn_count: int
    def __init__(self, episode_id: _Optional[str] = ..., environment_id: _Optional[str] = ..., example_index: _Optional[int] = ..., messages: _Optional[_Iterable[_Union[Message, _Mapping]]] = ..., turns: _Optional[_Iterable[_Union[Turn, _Mapping]]] = ..., status: _Optional[str] = ..., done: _Optional[bool] = ..., truncated: _Optional[bool] = ..., max_episode_turns: _Optional[int] = ..., error: _Optional[str] = ..., reward: _Optional[_Union[RewardResult, _Mapping]] = ..., submission_json: _Optional[str] = ..., final_response_text: _Optional[str] = ..., text_replaced: _Optional[bool] = ..., next_page_token: _Optional[str] = ..., turn_count: _Optional[int] = ...) -> None: ...

class ScoreEpisodeRequest(_message.Message):
    __slots__ = ("episode_id", "include_trajectory", "max_page_bytes")
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TRAJECTORY_FIELD_NUMBER: _ClassVar[int]
    MAX_PAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    episode_id: str
    include_trajectory: bool
    max_page_bytes: int
    def __init__(self, episode_id: _Optional[str] = ..., include_trajectory: _Optional[bool] = ..., max_page_bytes: _Optional[int] = ...) -> None: ...

class ScoreEpisodeResponse(_message.Message):
    __slots__ = ("reward", "trajectory")
    REWARD_FIELD_NUMBER: _ClassVar[int]
    TRAJECTORY_FIELD_NUMBER: _ClassVar[int]
    reward: RewardResult
    trajectory: Trajectory
    def __init__(self, reward: _Optional[_Union[RewardResult, _Mapping]] = ..., trajectory: _Optional[_Union[Trajectory, _Mapping]] = ...) -> None: ...

class ScoreEpisodesRequest(_message.Message):
    __slots__ = ("episode_ids",)
    EPISODE_IDS_FIELD_NUMBER: _ClassVar[int]
    episode_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, episode_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ScoreEpisodesResponse(_message.Message):
    __slots__ = ("rewards",)
    REWARDS_FIELD_NUMBER: _ClassVar[int]
    rewards: _containers.RepeatedCompositeFieldContainer[RewardResult]
    def __init__(self, rewards: _Optional[_Iterable[_Union[RewardResult, _Mapping]]] = ...) -> None: ...

class GetTrajectoryRequest(_message.Message):
    __slots__ = ("episode_id", "page_token", "max_page_bytes")
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MAX_PAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    episode_id: str
    page_token: str
    max_page_bytes: int
    def __init__(self, episode_id: _Optional[str] = ..., page_token: _Optional[str] = ..., max_page_bytes: _Optional[int] = ...) -> None: ...

class GetTrajectoryResponse(_message.Message):
    __slots__ = ("trajectory",)
    TRAJECTORY_FIELD_NUMBER: _ClassVar[int]
    trajectory: Trajectory
    def __init__(self, trajectory: _Optional[_Union[Trajectory, _Mapping]] = ...) -> None: ...

class CloseEpisodeRequest(_message.Message):
    __slots__ = ("episode_id",)
    EPISODE_ID_FIELD_NUMBER: _ClassVar[int]
    episode_id: str
    def __init__(self, episode_id: _Optional[str] = ...) -> None: ...

class CloseEpisodeResponse(_message.Message):
    __slots__ = ("closed",)
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    closed: bool
    def __init__(self, closed: _Optional[bool] = ...) -> None: ...
