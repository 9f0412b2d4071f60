"""The client library: `GrpcClient` and `SyncClient` against real servers, `InProcessClient` alike.

Real servers on loopback ports, real Docker sandboxes. Where a test needs a server to misbehave
(UNAVAILABLE on purpose, a missed deadline), it starts a real `grpc.aio` server of its own whose
handlers count the calls and answer as scripted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import docker
import grpc
import pytest
from conftest import leftover_containers, wait_until_gone
from grpc_fixtures import ENVIRONMENTS, RPC_TIMEOUT, running_server

from runtime.client import (
    CallInfo,
    EnvironmentDescription,
    EpisodeClient,
    EpisodeLimitsRequest,
    EpisodeStart,
    GrpcClient,
    InProcessClient,
    Reward,
    Scored,
    StepOutput,
    SyncClient,
    ToolSpec,
    Trajectory,
    TurnRecord,
)
from runtime.errors import (
    EnvironmentHookError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    RuntimeServiceError,
    SandboxTimeoutError,
    UnavailableError,
)
from runtime.server.app import RuntimeServer
from runtime.tools.messages import Message, ToolCall
from runtime.v1 import runtime_pb2 as pb

TOY_SYSTEM = "Solve the task with the tools, then call submit."
TOY_TOOLS = ["bash", "python", "read_file", "write_file", "submit", "add", "episode_note"]
GREETING_TASK = "Write hello to greeting.txt and submit its content."


# --- building actions --------------------------------------------------------------------------


def call(name: str, arguments: dict[str, Any], call_id: str) -> ToolCall:
    """A tool call with JSON arguments."""
    return ToolCall(id=call_id, name=name, arguments=json.dumps(arguments))


def bash(command: str, call_id: str) -> ToolCall:
    """A `bash` tool call."""
    return call("bash", {"command": command}, call_id)


def assistant(*calls: ToolCall, content: str | None = None) -> Message:
    """An assistant message with ``calls``."""
    return Message(role="assistant", content=content, tool_calls=list(calls))


def tool_message(call_id: str, name: str, text: str) -> Message:
    """The tool message answering ``call_id``."""
    return Message(role="tool", content=text, tool_call_id=call_id, name=name)


SCRIPT: list[dict[str, Any]] = [
    {
        "message": assistant(
            bash("printf hello > greeting.txt && echo written", "t1-bash"),
            content="I will write the file first.",
        ),
        "token_ids": [11, 12, 13],
        "logprobs": [-0.5, -0.25, -0.125],
        "metadata": {"sampler": "turn-1", "temperature": 0.7},
    },
    {
        "message": assistant(
            call("python", {"code": "print(open('greeting.txt').read())"}, "t2-py"),
            call("add", {"a": 2, "b": 40}, "t2-add"),
            call("episode_note", {"text": "first"}, "t2-note"),
        ),
        "token_ids": [21],
        "logprobs": [-1.0],
    },
    {
        "message": assistant(call("submit", {"answer": "hello"}, "t3-submit")),
        "metadata": {"last": True, "nested": {"ids": [1, 2], "note": "ünïcode"}},
    },
]
"""Three turns of the toy's example 1, with the trainer's data on the first and last turn."""


async def play_script(
    client: EpisodeClient,
) -> tuple[EpisodeStart, list[StepOutput], Scored, Trajectory]:
    """Play `SCRIPT` in an `episode()` block: what start, each step, score and the record gave."""
    async with client.episode("toy", example_index=1) as episode:
        outputs = [await episode.step(**turn) for turn in SCRIPT]
        scored = await episode.score()
        record = await episode.trajectory()
    return episode.start, outputs, scored, record


def without_timings(model: Any) -> Any:
    """``model`` dumped, with episode ids and durations (which differ run to run) blanked."""
    if isinstance(model, list):
        return [without_timings(item) for item in model]
    data = model.model_dump() if hasattr(model, "model_dump") else model
    if isinstance(data, dict):
        return {
            key: (
                "-"
                if key == "episode_id"
                else 0.0
                if key == "duration_s"
                else without_timings(value)
            )
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [without_timings(item) for item in data]
    return data


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module", name="client_server")
async def client_server_fixture(owner: str) -> AsyncIterator[RuntimeServer]:
    """This module's server, with an instance name of its own (containers can be counted)."""
    async with running_server(f"{owner}-client") as server:
        yield server


@pytest.fixture(name="client")
async def client_fixture(client_server: RuntimeServer) -> AsyncIterator[GrpcClient]:
    """A `GrpcClient` of the module's server, closed after the test."""
    async with GrpcClient(
        client_server.address, timeout_s=RPC_TIMEOUT, token="test-token"
    ) as client:
        yield client


@pytest.fixture(scope="module", name="in_process")
async def in_process_fixture(owner: str) -> AsyncIterator[InProcessClient]:
    """An `InProcessClient` offering what the server offers, with its own engine and owner."""
    async with InProcessClient.for_environments(
        ENVIRONMENTS, instance_name=f"{owner}-inproc"
    ) as client:
        assert isinstance(client, InProcessClient)
        yield client


# --- whole episodes ----------------------------------------------------------------------------


async def test_full_episode_returns_typed_models(client: GrpcClient) -> None:
    started, outputs, scored, record = await play_script(client)

    assert isinstance(started, EpisodeStart)
    assert started.episode_id
    assert started.messages == [
        Message(role="system", content=TOY_SYSTEM),
        Message(role="user", content=GREETING_TASK),
    ]
    assert all(isinstance(t, ToolSpec) for t in started.tools)
    assert [t.name for t in started.tools] == TOY_TOOLS
    assert started.tools[0].parameters["required"] == ["command"]
    assert started.tools[5].parameters["properties"]["a"] == {
        "type": "integer",
        "description": "First addend.",
    }
    assert started.tools[0].to_openai()["function"]["name"] == "bash"
    assert (started.max_episode_turns, started.example_index) == (4, 1)

    assert all(isinstance(o, StepOutput) for o in outputs)
    first, second, last = outputs
    assert (first.turn, first.done, first.truncated, first.replayed) == (1, False, False, False)
    assert first.observations == [tool_message("t1-bash", "bash", "written")]
    assert isinstance(first.calls[0], CallInfo)
    assert first.calls[0].model_dump(exclude={"duration_s"}) == {
        "tool_call_id": "t1-bash",
        "name": "bash",
        "exit_code": 0,
        "timed_out": False,
        "output_truncated": False,
        "error": None,
    }
    assert first.calls[0].duration_s > 0
    assert second.observations == [
        tool_message("t2-py", "python", "hello"),
        tool_message("t2-add", "add", "42"),
        tool_message("t2-note", "episode_note", "first"),
    ]
    assert [(c.tool_call_id, c.exit_code, c.error) for c in second.calls] == [
        ("t2-py", 0, None),
        ("t2-add", None, None),
        ("t2-note", None, None),
    ]
    assert (last.turn, last.done, last.truncated) == (3, True, False)
    assert last.observations == [tool_message("t3-submit", "submit", "answer submitted")]

    assert isinstance(scored, Scored)
    assert isinstance(scored.reward, Reward)
    assert scored.reward.model_dump(include={"score", "threshold", "success", "reason"}) == {
        "score": 1.0,
        "threshold": 1.0,
        "success": True,
        "reason": "answer matches",
    }
    assert scored.trajectory == record

    assert isinstance(record, Trajectory)
    assert record.episode_id == started.episode_id
    assert (record.environment_id, record.example_index) == ("toy", 1)
    assert (record.status, record.done, record.truncated) == ("done", True, False)
    assert (record.max_episode_turns, record.error) == (4, None)
    assert record.reward == scored.reward
    assert (record.submitted, record.submission) == (True, "hello")
    assert [m.role for m in record.messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "tool",
        "tool",
        "assistant",
        "tool",
    ]
    assert record.messages[2] == SCRIPT[0]["message"]
    assert all(isinstance(t, TurnRecord) for t in record.turns)
    assert [t.number for t in record.turns] == [1, 2, 3]
    for turn, sent, output in zip(record.turns, SCRIPT, outputs, strict=True):
        assert turn.message == sent["message"]
        assert turn.raw_text is None
        assert turn.token_ids == sent.get("token_ids", [])
        assert turn.logprobs == sent.get("logprobs", [])
        assert turn.metadata == sent.get("metadata", {})
        assert turn.observations == output.observations
        assert turn.calls == output.calls
        assert (turn.done, turn.truncated) == (output.done, output.truncated)
        assert turn.duration_s > 0

    # The `episode()` block closed the episode on its way out.
    with pytest.raises(FailedPreconditionError, match="was closed"):
        await client.get_trajectory(started.episode_id)
    assert await client.close_episode(started.episode_id) is False


async def test_in_process_and_grpc_return_equal_models(
    client: GrpcClient, in_process: InProcessClient
) -> None:
    over_grpc = await play_script(client)
    local = await play_script(in_process)
    for remote_part, local_part in zip(over_grpc, local, strict=True):
        assert without_timings(remote_part) == without_timings(local_part)
    # The comparison is not vacuous: the trajectories hold every turn and the reward.
    assert len(local[3].turns) == 3
    assert local[3].reward is not None

    assert await client.describe_environment("toy") == await in_process.describe_environment("toy")
    params = {"max_turns": 7}
    described = await client.describe_environment("toy", params)
    assert described == await in_process.describe_environment("toy", params)
    assert isinstance(described, EnvironmentDescription)
    assert described.max_episode_turns == 7
    listed = await client.list_environments()
    assert listed == await in_process.list_environments()
    remote = {e.id: e for e in listed}
    assert {"toy", "broken"} <= set(remote)
    assert remote["broken"].system_prompt is None
    assert remote["toy"].system_prompt == TOY_SYSTEM


async def test_seed_inline_example_and_limits_reach_the_server(
    client: GrpcClient, in_process: InProcessClient
) -> None:
    inline = {"input": "What is 2 + 2?", "output": "4"}
    for each in (client, in_process):
        async with each.episode(
            "toy", inline_example=inline, limits=EpisodeLimitsRequest(max_turns=1)
        ) as episode:
            assert episode.start.example_index is None
            assert episode.start.max_episode_turns == 1
            assert episode.start.messages[1].content == "What is 2 + 2?"
            result = await episode.step(assistant(call("add", {"a": 2, "b": 2}, "a")))
            assert (result.done, result.truncated) == (True, True)
            record = await episode.trajectory()
            assert (record.status, record.example_index, record.submitted) == (
                "truncated",
                None,
                False,
            )
    picked = []
    for each in (client, in_process):
        async with each.episode("toy", seed=-7) as episode:
            picked.append(episode.start.example_index)
    assert picked[0] is not None
    assert picked[0] == picked[1]


async def test_raw_text_actions_keep_their_text_over_grpc(
    client: GrpcClient, in_process: InProcessClient
) -> None:
    text = 'Adding.\n<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>'
    records = []
    for each in (client, in_process):
        async with each.episode("toy", example_index=0) as episode:
            result = await episode.step(raw_text=text, token_ids=[1, 2], logprobs=[-0.1, -0.2])
            assert result.observations == [tool_message("call_0", "add", "3")]
            records.append(await episode.trajectory())
    remote, local = records
    assert local.turns[0].raw_text == text
    assert remote.turns[0].message == local.turns[0].message
    assert remote.turns[0].raw_text == text


# --- errors ------------------------------------------------------------------------------------


async def expect(
    error: type[RuntimeServiceError], call_: Awaitable[Any], *fragments: str
) -> RuntimeServiceError:
    """Await ``call_``, which must raise ``error`` (never a raw gRPC error) naming ``fragments``."""
    with pytest.raises(RuntimeServiceError) as info:
        await call_
    raised = info.value
    assert type(raised) is error, f"expected {error.__name__}, got {type(raised).__name__}"
    assert not isinstance(raised, grpc.RpcError)
    for fragment in fragments:
        assert fragment in str(raised), f"{fragment!r} not in {str(raised)!r}"
    return raised


async def test_errors_map_to_runtime_errors(
    client: GrpcClient, in_process: InProcessClient
) -> None:
    # The same mistakes give the same class and message in-process and over gRPC.
    same: list[tuple[type[RuntimeServiceError], Callable[[EpisodeClient], Awaitable[Any]]]] = [
        (NotFoundError, lambda c: c.start_episode("no-such-env")),
        (NotFoundError, lambda c: c.describe_environment("no-such-env")),
        (NotFoundError, lambda c: c.get_trajectory("no-such-episode")),
        (InvalidArgumentError, lambda c: c.describe_environment("broken", {"colour": "red"})),
        (EnvironmentHookError, lambda c: c.start_episode("broken", params={"fail_in": "start"})),
        (InvalidArgumentError, lambda c: c.start_episode("toy", example_index=99)),
        (
            InvalidArgumentError,
            lambda c: c.start_episode("toy", limits=EpisodeLimitsRequest(call_timeout_s=1_000_000)),
        ),
        (InvalidArgumentError, lambda c: c.start_episode("toy", inline_example={"output": 1})),
        (InvalidArgumentError, lambda c: c.score_episodes([])),
    ]
    for error, make_call in same:
        remote = await expect(error, make_call(client))
        local = await expect(error, make_call(in_process))
        assert str(remote) == str(local)
    missing = await expect(NotFoundError, client.start_episode("no-such-env"), "no-such-env")
    assert isinstance(missing, LookupError)
    bad = await expect(InvalidArgumentError, client.start_episode("toy", example_index=99), "99")
    assert isinstance(bad, ValueError)

    async with client.episode("toy", example_index=0) as episode:
        await expect(
            FailedPreconditionError,
            client.step_episode(episode.id, turn=3, message=assistant()),
            "turn 3 was requested",
        )
        done = await episode.step(assistant(call("submit", {"answer": "42"}, "s")))
        assert done.done
        await expect(
            FailedPreconditionError,
            client.step_episode(episode.id, turn=2, message=assistant()),
            episode.id,
            "score or close it",
        )
        again = await client.step_episode(episode.id, turn=1, message=assistant())
        assert again.replayed
        assert again.observations == done.observations
        # Caught on the client: requests the wire cannot carry.
        await expect(
            InvalidArgumentError,
            client.step_episode(episode.id, turn=2, message=assistant(), raw_text="x"),
            "not both",
        )
        await expect(
            InvalidArgumentError,
            client.step_episode(episode.id, turn=2, metadata={"x": object()}),
            "metadata",
        )
        await expect(
            InvalidArgumentError,
            client.step_episode(episode.id, turn=-1, message=assistant()),
        )
    await expect(
        InvalidArgumentError, client.start_episode("toy", example_index=-1), "StartEpisode"
    )
    await expect(
        InvalidArgumentError,
        client.start_episode("toy", example_index=0, inline_example={"input": "x"}),
        "not both",
    )


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_server_not_there_is_unavailable_with_the_address() -> None:
    address = f"127.0.0.1:{closed_port()}"
    async with GrpcClient(address, retries=1, backoff_s=0.01, timeout_s=10) as client:
        began = time.monotonic()
        error = await expect(
            UnavailableError, client.start_episode("toy"), "cannot reach the episode server"
        )
        assert address in str(error)
        assert "(2 attempts)" not in str(error)  # StartEpisode is never retried
        assert isinstance(error, ConnectionError)
        error = await expect(UnavailableError, client.list_environments(), address)
        assert "(2 attempts)" in str(error)
        assert time.monotonic() - began < 5
    await expect(FailedPreconditionError, client.list_environments(), "closed")


# --- retries, against a scripted server --------------------------------------------------------

Handler = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
SERVICE = pb.DESCRIPTOR.services_by_name["EpisodeService"]


@contextlib.asynccontextmanager
async def scripted_server(handlers: dict[str, Handler]) -> AsyncIterator[str]:
    """A real `grpc.aio` server answering `EpisodeService` methods with ``handlers``."""
    methods = {}
    for name, handler in handlers.items():
        method = SERVICE.methods_by_name[name]
        methods[name] = grpc.unary_unary_rpc_method_handler(
            handler,
            request_deserializer=getattr(pb, method.input_type.name).FromString,
            response_serializer=getattr(pb, method.output_type.name).SerializeToString,
        )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE.full_name, methods),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def test_retries_only_what_is_safe_to_repeat() -> None:
    calls: collections.Counter[str] = collections.Counter()
    metadata: list[dict[str, str]] = []
    record = pb.Trajectory(
        episode_id="e1", environment_id="toy", status="running", max_episode_turns=4
    )

    async def unavailable(name: str, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        calls[name] += 1
        await context.abort(grpc.StatusCode.UNAVAILABLE, "no sandbox right now")

    async def start(request: pb.StartEpisodeRequest, context: Any) -> Any:
        metadata.append({k: v for k, v in context.invocation_metadata()})
        await unavailable("start", context)

    async def step(request: pb.StepEpisodeRequest, context: Any) -> Any:
        if request.turn in (0, 1):
            await unavailable(f"step-{request.turn}", context)
        calls[f"step-{request.turn}"] += 1
        await asyncio.sleep(2)  # past the client's deadline
        return pb.StepEpisodeResponse(turn=request.turn)

    async def get_trajectory(request: pb.GetTrajectoryRequest, context: Any) -> Any:
        calls["trajectory"] += 1
        if calls["trajectory"] == 1:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")
        return pb.GetTrajectoryResponse(trajectory=record)

    async def list_environments(request: Any, context: Any) -> Any:
        calls["list"] += 1
        if calls["list"] == 1:
            await asyncio.sleep(2)  # the first answer comes too late
        return pb.ListEnvironmentsResponse(environments=[pb.EnvironmentInfo(id="toy")])

    async def score(request: Any, context: Any) -> Any:
        calls["score"] += 1
        await context.abort(grpc.StatusCode.INTERNAL, "environment 'toy': score_episode raised")

    async def score_group(request: Any, context: Any) -> Any:
        calls["score-group"] += 1
        await context.abort(grpc.StatusCode.INTERNAL, "internal error (KeyError); see the log")

    async def describe(request: Any, context: Any) -> Any:
        given = dict(context.invocation_metadata()).get("authorization")
        if given != "Bearer s3cret":
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a valid token is required")
        return pb.DescribeEnvironmentResponse(environment=pb.EnvironmentInfo(id="toy"))

    handlers: dict[str, Handler] = {
        "StartEpisode": start,
        "StepEpisode": step,
        "GetTrajectory": get_trajectory,
        "ListEnvironments": list_environments,
        "ScoreEpisode": score,
        "ScoreEpisodes": score_group,
        "DescribeEnvironment": describe,
    }
    async with (
        scripted_server(handlers) as address,
        GrpcClient(address, retries=3, backoff_s=0.01, timeout_s=0.5, token="s3cret") as client,
    ):
        # StartEpisode: exactly one attempt; a deliberate UNAVAILABLE keeps the server's words.
        error = await expect(UnavailableError, client.start_episode("toy"), "no sandbox right now")
        assert "cannot reach" not in str(error)
        assert calls["start"] == 1
        assert metadata[0]["authorization"] == "Bearer s3cret"
        # StepEpisode: retried on UNAVAILABLE (1 + 3 attempts), never after a missed deadline.
        await expect(UnavailableError, client.step_episode("e1", turn=1), "(4 attempts)")
        assert calls["step-1"] == 4
        # ... but "the next turn" (turn 0) is not safe to repeat.
        await expect(UnavailableError, client.step_episode("e1", turn=0), "no sandbox right now")
        assert calls["step-0"] == 1
        await expect(
            SandboxTimeoutError, client.step_episode("e1", turn=2, timeout_s=0.3), "StepEpisode"
        )
        assert calls["step-2"] == 1
        # Reads: retried on UNAVAILABLE and after a missed deadline, then they succeed.
        got = await client.get_trajectory("e1")
        assert (got.episode_id, got.status, got.error, got.reward) == ("e1", "running", None, None)
        assert calls["trajectory"] == 2
        listed = await client.list_environments()
        assert [e.id for e in listed] == ["toy"]
        assert calls["list"] == 2
        # INTERNAL: an environment's failure, or the server's own bug; neither is retried.
        await expect(EnvironmentHookError, client.score_episode("e1"), "score_episode raised")
        await expect(RuntimeServiceError, client.score_episodes(["e1"]), "internal error")
        assert (calls["score"], calls["score-group"]) == (1, 1)
        # A method the server does not offer.
        await expect(RuntimeServiceError, client.close_episode("e1"), "UNIMPLEMENTED")
        # The token is sent; without it the server refuses.
        assert (await client.describe_environment("toy")).id == "toy"
    async with (
        scripted_server(handlers) as address,
        GrpcClient(address, retries=3, backoff_s=0.01) as anonymous,
    ):
        await expect(InvalidArgumentError, anonymous.describe_environment("toy"), "valid token")


# --- replays and the episode() context manager -------------------------------------------------


async def test_step_retry_after_a_lost_answer_is_replayed(client: GrpcClient) -> None:
    count = "echo run >> runs.txt && wc -l < runs.txt"
    async with client.episode("toy", example_index=0) as episode:
        first = await client.step_episode(
            episode.id, turn=1, message=assistant(bash(count, "c1")), token_ids=[7]
        )
        assert first.observations == [tool_message("c1", "bash", "1")]
        assert not first.replayed
        # The answer to turn 1 was "lost": the trainer sends turn 1 again.
        again = await client.step_episode(
            episode.id, turn=1, message=assistant(bash(count, "c1")), token_ids=[7]
        )
        assert again.replayed
        assert again.model_dump(exclude={"replayed"}) == first.model_dump(exclude={"replayed"})
        # The command ran once: turn 2 counts one line.
        second = await client.step_episode(
            episode.id, turn=2, message=assistant(bash("wc -l < runs.txt", "c2"))
        )
        assert (second.turn, second.replayed) == (2, False)
        assert second.observations[0].content == "1"
        record = await episode.trajectory()
        assert [t.number for t in record.turns] == [1, 2]
        assert record.turns[0].token_ids == [7]


async def test_episode_block_closes_when_the_body_raises(
    client: GrpcClient, owner: str, docker_client: docker.DockerClient
) -> None:
    ids: list[str] = []

    async def body() -> None:
        async with client.episode("toy", example_index=0) as episode:
            ids.append(episode.id)
            await episode.step(assistant(bash("echo hi", "c1")))
            raise RuntimeError("the trainer crashed")

    with pytest.raises(RuntimeError, match="the trainer crashed"):
        await body()
    await expect(FailedPreconditionError, client.get_trajectory(ids[0]), "was closed")
    assert await wait_until_gone(docker_client, f"{owner}-client") == []


@pytest.mark.parametrize("where", ["idle", "mid-step"])
async def test_episode_block_closes_when_cancelled(
    client: GrpcClient, owner: str, docker_client: docker.DockerClient, where: str
) -> None:
    ids: list[str] = []
    inside = asyncio.Event()

    async def body() -> None:
        async with client.episode("toy", example_index=0) as episode:
            ids.append(episode.id)
            inside.set()
            if where == "idle":
                await asyncio.sleep(3600)
            else:
                await episode.step(assistant(bash("sleep 8", "c1")))

    task = asyncio.create_task(body())
    await asyncio.wait_for(inside.wait(), RPC_TIMEOUT)
    await asyncio.sleep(1.0)  # the step (if any) is now running in the sandbox
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await expect(FailedPreconditionError, client.get_trajectory(ids[0]), "was closed")
    assert await wait_until_gone(docker_client, f"{owner}-client") == []


# --- SyncClient --------------------------------------------------------------------------------


@contextlib.contextmanager
def server_in_thread(instance_name: str) -> Iterator[str]:
    """A real server on an event loop of its own in a thread; yields its address."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    serving = running_server(instance_name)
    try:
        server = asyncio.run_coroutine_threadsafe(serving.__aenter__(), loop).result(120)
        try:
            yield server.address
        finally:
            stop = serving.__aexit__(None, None, None)
            asyncio.run_coroutine_threadsafe(stop, loop).result(120)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def test_sync_client_plays_an_episode_over_grpc(
    owner: str, docker_client: docker.DockerClient
) -> None:
    instance = f"{owner}-sync"
    with (
        server_in_thread(instance) as address,
        SyncClient.connect(address, timeout_s=RPC_TIMEOUT) as client,
    ):
        assert "toy" in [e.id for e in client.list_environments()]
        assert client.describe_environment("toy").max_episode_turns == 4
        with client.episode("toy", example_index=0) as episode:
            assert episode.start.messages[1].content == "What is 6 * 7?"
            result = episode.step(assistant(call("python", {"code": "print(6 * 7)"}, "p")))
            assert result.observations == [tool_message("p", "python", "42")]
            done = episode.step(assistant(call("submit", {"answer": "42"}, "s")), token_ids=[3])
            assert (done.done, episode.done, episode.turn) == (True, True, 2)
            scored = episode.score()
            assert scored.reward.success
            assert episode.trajectory().turns[1].token_ids == [3]
            assert client.step_episode(episode.id, turn=2, message=assistant()).replayed
            episode_id = episode.id
        with pytest.raises(FailedPreconditionError, match="was closed"):
            client.get_trajectory(episode_id)
        assert leftover_containers(docker_client, instance) == []
    with pytest.raises(FailedPreconditionError, match="closed"):
        client.list_environments()
