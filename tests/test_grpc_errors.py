"""Client mistakes and server trouble over gRPC: the status code, and a message that helps.

A real server on a loopback port with real Docker sandboxes; nothing is mocked. Each test
asserts the code and that the details name the field, the id or what to do about it.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import docker
import grpc
import pytest
from conftest import wait_until_gone
from grpc_fixtures import (  # noqa: F401  (fixtures are used by name)
    RPC_TIMEOUT,
    assistant,
    attempt,
    bash,
    call,
    channel_fixture,
    close_quietly,
    episode_containers,
    expect_error,
    open_episode,
    raw,
    rpc_error,
    running_server,
    server_fixture,
    small_server_fixture,
    small_stub_fixture,
    start_request,
    step,
    stub_fixture,
    trajectory,
)
from grpc_fixtures import settings as server_settings

from runtime.errors import UnavailableError
from runtime.server.app import RuntimeServer
from runtime.v1 import runtime_pb2 as pb
from runtime.v1 import runtime_pb2_grpc as pb_grpc

Stub = pb_grpc.EpisodeServiceStub
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
FAILED = grpc.StatusCode.FAILED_PRECONDITION
INTERNAL = grpc.StatusCode.INTERNAL
DEEP_JSON = "[" * 100_000
"""Nested beyond Python's recursion limit: `json.loads` raises RecursionError, not ValueError."""


async def list_environments(stub: Stub) -> list[str]:
    answer = await stub.ListEnvironments(pb.ListEnvironmentsRequest(), timeout=RPC_TIMEOUT)
    return [e.id for e in answer.environments]


# --- NOT_FOUND ---------------------------------------------------------------------------------


async def test_unknown_episode_is_not_found(stub: Stub) -> None:
    missing = "ep_does_not_exist"
    for rpc in (
        stub.StepEpisode(
            pb.StepEpisodeRequest(episode_id=missing, action=raw("hi")), timeout=RPC_TIMEOUT
        ),
        stub.ScoreEpisode(pb.ScoreEpisodeRequest(episode_id=missing), timeout=RPC_TIMEOUT),
        stub.GetTrajectory(pb.GetTrajectoryRequest(episode_id=missing), timeout=RPC_TIMEOUT),
        stub.CloseEpisode(pb.CloseEpisodeRequest(episode_id=missing), timeout=RPC_TIMEOUT),
        stub.ScoreEpisodes(pb.ScoreEpisodesRequest(episode_ids=[missing]), timeout=RPC_TIMEOUT),
    ):
        await expect_error(rpc, NOT_FOUND, "unknown episode", repr(missing))


async def test_unknown_environment_lists_what_is_offered(stub: Stub) -> None:
    for rpc in (
        stub.StartEpisode(start_request("no_such_env"), timeout=RPC_TIMEOUT),
        stub.DescribeEnvironment(
            pb.DescribeEnvironmentRequest(environment_id="no_such_env"), timeout=RPC_TIMEOUT
        ),
    ):
        await expect_error(
            rpc, NOT_FOUND, "unknown environment 'no_such_env'", "offers", "toy", "broken"
        )


# --- INVALID_ARGUMENT --------------------------------------------------------------------------

START_CASES = {
    "empty environment_id": (
        pb.StartEpisodeRequest(environment_id=""),
        ["environment_id", "required"],
    ),
    "params_json not JSON": (
        pb.StartEpisodeRequest(environment_id="toy", params_json="{max_turns: 2"),
        ["params_json", "not valid JSON"],
    ),
    "params_json not an object": (
        pb.StartEpisodeRequest(environment_id="toy", params_json="[1, 2]"),
        ["params_json", "JSON object", "list"],
    ),
    "params the environment rejects": (
        pb.StartEpisodeRequest(environment_id="broken", params_json='{"fail_in": "nowhere"}'),
        ["broken", "rejected its params", "fail_in must be start, step or score"],
    ),
    "params the environment does not take": (
        pb.StartEpisodeRequest(environment_id="broken", params_json='{"colour": "red"}'),
        ["broken", "does not take these params", "colour"],
    ),
    "example_index out of range": (
        pb.StartEpisodeRequest(environment_id="toy", example_index=3),
        ["example index 3 is out of range", "3 examples", "0..2"],
    ),
    "inline example without input": (
        pb.StartEpisodeRequest(
            environment_id="toy", inline_example=pb.InlineExample(output_json='"4"')
        ),
        ["inline_example.input_json", "required"],
    ),
    "inline input not JSON": (
        pb.StartEpisodeRequest(
            environment_id="toy", inline_example=pb.InlineExample(input_json="what is 2+2?")
        ),
        ["inline_example.input_json", "not valid JSON"],
    ),
    "inline metadata not an object": (
        pb.StartEpisodeRequest(
            environment_id="toy",
            inline_example=pb.InlineExample(input_json='"q"', metadata_json="[]"),
        ),
        ["inline_example.metadata_json", "JSON object"],
    ),
    "call timeout above the cap": (
        pb.StartEpisodeRequest(
            environment_id="toy", limits=pb.EpisodeLimits(call_timeout_seconds=10000)
        ),
        ["per-call timeout", "600", "10000"],
    ),
    "call timeout not positive": (
        pb.StartEpisodeRequest(
            environment_id="toy", limits=pb.EpisodeLimits(call_timeout_seconds=-1)
        ),
        ["per-call timeout", "-1"],
    ),
    "call timeout not finite": (
        pb.StartEpisodeRequest(
            environment_id="toy", limits=pb.EpisodeLimits(call_timeout_seconds=math.nan)
        ),
        ["call_timeout_seconds", "finite"],
    ),
    "max_turns zero": (
        pb.StartEpisodeRequest(environment_id="toy", limits=pb.EpisodeLimits(max_turns=0)),
        ["turn limit", "[1, 1000]", "got 0"],
    ),
    "max_turns above the cap": (
        pb.StartEpisodeRequest(environment_id="toy", limits=pb.EpisodeLimits(max_turns=5000)),
        ["turn limit", "1000", "5000"],
    ),
    "output cap below the floor": (
        pb.StartEpisodeRequest(environment_id="toy", limits=pb.EpisodeLimits(output_cap_bytes=10)),
        ["output cap", "256", "got 10"],
    ),
    "output cap above the cap": (
        pb.StartEpisodeRequest(
            environment_id="toy", limits=pb.EpisodeLimits(output_cap_bytes=2**32 - 1)
        ),
        ["output cap", str(1024 * 1024)],
    ),
}


@pytest.mark.parametrize("case", list(START_CASES))
async def test_invalid_start_requests(stub: Stub, case: str) -> None:
    request, fragments = START_CASES[case]
    await expect_error(stub.StartEpisode(request, timeout=RPC_TIMEOUT), INVALID, *fragments)


async def test_invalid_describe_requests(stub: Stub) -> None:
    await expect_error(
        stub.DescribeEnvironment(pb.DescribeEnvironmentRequest(), timeout=RPC_TIMEOUT),
        INVALID,
        "environment_id",
        "required",
    )
    await expect_error(
        stub.DescribeEnvironment(
            pb.DescribeEnvironmentRequest(environment_id="toy", params_json='"x"'),
            timeout=RPC_TIMEOUT,
        ),
        INVALID,
        "params_json",
        "JSON object",
    )


async def test_invalid_step_requests_play_no_turn(stub: Stub) -> None:
    async with open_episode(stub) as started:
        episode_id = started.episode_id

        async def bad(action: pb.Action | None, *fragments: str, turn: int = 0) -> None:
            request = pb.StepEpisodeRequest(episode_id=episode_id, turn=turn)
            if action is not None:
                request.action.CopyFrom(action)
            await expect_error(stub.StepEpisode(request, timeout=RPC_TIMEOUT), INVALID, *fragments)

        await bad(None, "action is required")
        await bad(pb.Action(token_ids=[1, 2]), "action", "message or raw_text")
        await bad(
            pb.Action(message=pb.Message(role="user", content="hello")), "assistant", "'user'"
        )
        await bad(
            pb.Action(message=pb.Message(role="tool", content="x", tool_call_id="c")),
            "assistant",
            "'tool'",
        )
        await bad(pb.Action(message=pb.Message(role="robot")), "action.message.role", "'robot'")
        await bad(pb.Action(message=pb.Message()), "action.message.role")
        await bad(
            assistant(bash("echo hi", "c"), token_ids=[1, 2, 3], logprobs=[-0.1, -0.2]),
            "3 token_ids",
            "2 logprobs",
        )
        await bad(
            pb.Action(raw_text="hi", metadata_json="[1]"), "action.metadata_json", "JSON object"
        )
        await bad(pb.Action(raw_text="hi", metadata_json="{oops"), "action.metadata_json")
        await expect_error(
            stub.StepEpisode(pb.StepEpisodeRequest(action=raw("hi")), timeout=RPC_TIMEOUT),
            INVALID,
            "episode_id",
            "required",
        )

        # None of those played a turn: turn 1 is still next.
        first = await step(stub, episode_id, assistant(bash("echo ok", "c")), turn=1)
        assert (first.turn, first.replayed) == (1, False)
        # Repeated call ids are the model's slip: both calls run, each answered once.
        dup = await step(stub, episode_id, assistant(bash("echo 1", "dup"), bash("echo 2", "dup")))
        assert [m.content for m in dup.observations] == ["1", "2"]
        assert len({m.tool_call_id for m in dup.observations}) == 2
        assert first.observations[0].content == "ok"


async def test_invalid_score_episodes_requests(stub: Stub) -> None:
    await expect_error(
        stub.ScoreEpisodes(pb.ScoreEpisodesRequest(), timeout=RPC_TIMEOUT),
        INVALID,
        "episode_ids",
        "empty",
    )
    await expect_error(
        stub.ScoreEpisodes(pb.ScoreEpisodesRequest(episode_ids=["ep_a", ""]), timeout=RPC_TIMEOUT),
        INVALID,
        "episode_ids",
        "required",
    )
    async with open_episode(stub) as started:
        ids = [started.episode_id, started.episode_id]
        await expect_error(
            stub.ScoreEpisodes(pb.ScoreEpisodesRequest(episode_ids=ids), timeout=RPC_TIMEOUT),
            INVALID,
            "episode_ids",
            "duplicates",
        )
    for rpc in (
        stub.ScoreEpisode(pb.ScoreEpisodeRequest(), timeout=RPC_TIMEOUT),
        stub.GetTrajectory(pb.GetTrajectoryRequest(), timeout=RPC_TIMEOUT),
        stub.CloseEpisode(pb.CloseEpisodeRequest(), timeout=RPC_TIMEOUT),
    ):
        await expect_error(rpc, INVALID, "episode_id is required")


# --- FAILED_PRECONDITION -----------------------------------------------------------------------


async def test_step_after_done_is_failed_precondition(stub: Stub) -> None:
    async with open_episode(stub) as started:
        episode_id = started.episode_id
        done = await step(stub, episode_id, assistant(call("submit", {"answer": "42"}, "s")))
        assert done.done
        await expect_error(
            step(stub, episode_id, assistant(bash("echo more", "c"))),
            FAILED,
            episode_id,
            "is done after turn 1",
            "score or close it",
        )
        await expect_error(
            step(stub, episode_id, assistant(bash("echo more", "c")), turn=2),
            FAILED,
            "is done",
        )
        # A retry of the turn that was played is still answered from the record.
        again = await step(stub, episode_id, assistant(bash("ignored", "x")), turn=1)
        assert again.replayed
        assert again.done


async def test_step_closed_episode_is_failed_precondition(stub: Stub) -> None:
    async with open_episode(stub) as started:
        episode_id = started.episode_id
        await step(stub, episode_id, assistant(bash("echo hi", "c")))
        closed = await stub.CloseEpisode(
            pb.CloseEpisodeRequest(episode_id=episode_id), timeout=RPC_TIMEOUT
        )
        assert closed.closed is True
        for rpc in (
            step(stub, episode_id, assistant(bash("echo again", "c"))),
            step(stub, episode_id, assistant(bash("echo again", "c")), turn=1),
            stub.ScoreEpisode(pb.ScoreEpisodeRequest(episode_id=episode_id), timeout=RPC_TIMEOUT),
            trajectory(stub, episode_id),
        ):
            await expect_error(rpc, FAILED, episode_id, "closed")


async def test_turn_ahead_is_failed_precondition(stub: Stub) -> None:
    async with open_episode(stub) as started:
        episode_id = started.episode_id
        await expect_error(
            step(stub, episode_id, assistant(bash("echo hi", "c")), turn=3),
            FAILED,
            "turn 3 was requested",
            episode_id,
            "is 1",
        )
        played = await step(stub, episode_id, assistant(bash("echo hi", "c")), turn=1)
        assert played.turn == 1
        await expect_error(
            step(stub, episode_id, assistant(bash("echo hi", "c")), turn=2**32 - 1),
            FAILED,
            "is 2",
        )


async def test_close_twice_is_not_an_error(stub: Stub) -> None:
    started = await stub.StartEpisode(start_request(), timeout=RPC_TIMEOUT)
    request = pb.CloseEpisodeRequest(episode_id=started.episode_id)
    first = await stub.CloseEpisode(request, timeout=RPC_TIMEOUT)
    second = await stub.CloseEpisode(request, timeout=RPC_TIMEOUT)
    third = await stub.CloseEpisode(request, timeout=RPC_TIMEOUT)
    assert (first.closed, second.closed, third.closed) == (True, False, False)


# --- RESOURCE_EXHAUSTED ------------------------------------------------------------------------


async def test_capacity_is_resource_exhausted(small_stub: Stub) -> None:
    opened: list[str] = []
    try:
        for _ in range(2):
            started = await small_stub.StartEpisode(start_request(), timeout=RPC_TIMEOUT)
            opened.append(started.episode_id)
        await expect_error(
            small_stub.StartEpisode(start_request(), timeout=RPC_TIMEOUT),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "maximum of 2 live episodes",
            "close finished episodes or retry later",
        )
        # A finished episode still holds its slot until it is closed.
        done = await step(small_stub, opened[0], assistant(call("submit", {"answer": "42"}, "s")))
        assert done.done
        await expect_error(
            small_stub.StartEpisode(start_request(), timeout=RPC_TIMEOUT),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        )
        await close_quietly(small_stub, opened.pop(0))
        started = await small_stub.StartEpisode(start_request(), timeout=RPC_TIMEOUT)
        opened.append(started.episode_id)
    finally:
        await asyncio.gather(*(close_quietly(small_stub, i) for i in opened))


async def test_capacity_holds_under_concurrent_starts(small_stub: Stub) -> None:
    answers = await asyncio.gather(
        *(small_stub.StartEpisode(start_request(), timeout=RPC_TIMEOUT) for _ in range(5)),
        return_exceptions=True,
    )
    started = [a for a in answers if isinstance(a, pb.StartEpisodeResponse)]
    try:
        refused = [a for a in answers if not isinstance(a, pb.StartEpisodeResponse)]
        assert len(started) == 2
        assert len(refused) == 3
        for error in refused:
            assert isinstance(error, grpc.aio.AioRpcError)
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await asyncio.gather(*(close_quietly(small_stub, s.episode_id) for s in started))


# --- INTERNAL: environment hook bugs -----------------------------------------------------------


async def test_start_hook_bug_is_internal_and_removes_the_sandbox(
    stub: Stub, owner: str, docker_client: docker.DockerClient
) -> None:
    await expect_error(
        stub.StartEpisode(start_request("broken", params={"fail_in": "start"}), timeout=60),
        INTERNAL,
        "environment 'broken'",
        "start_episode",
        "start hook exploded",
    )
    assert await wait_until_gone(docker_client, owner, timeout_s=5) == []
    assert "toy" in await list_environments(stub)
    async with open_episode(stub) as started:
        answer = await step(stub, started.episode_id, assistant(bash("echo alive", "c")))
        assert answer.observations[0].content == "alive"


async def test_step_hook_bug_is_internal_and_errors_the_episode(
    stub: Stub, docker_client: docker.DockerClient
) -> None:
    async with open_episode(stub, "broken", params={"fail_in": "step"}) as started:
        episode_id = started.episode_id
        assert len(episode_containers(docker_client, episode_id)) == 1
        await expect_error(
            step(stub, episode_id, assistant(bash("echo hi", "c")), turn=1),
            INTERNAL,
            "environment 'broken'",
            "step_episode",
            "step hook exploded",
        )
        assert episode_containers(docker_client, episode_id) == []
        got = await trajectory(stub, episode_id)
        assert (got.status, got.done) == ("errored", True)
        assert "step hook exploded" in got.error
        assert len(got.turns) == 0
        await expect_error(
            step(stub, episode_id, assistant(bash("echo hi", "c"))), FAILED, "errored"
        )
        assert "broken" in await list_environments(stub)


async def test_score_hook_bug_is_internal_and_keeps_the_episode(stub: Stub) -> None:
    async with open_episode(stub, "broken", params={"fail_in": "score"}) as started:
        episode_id = started.episode_id
        await step(stub, episode_id, assistant(call("submit", {"answer": "x"}, "s")))
        await expect_error(
            stub.ScoreEpisode(pb.ScoreEpisodeRequest(episode_id=episode_id), timeout=RPC_TIMEOUT),
            INTERNAL,
            "environment 'broken'",
            "score_episode",
            "score hook exploded",
        )
        await expect_error(
            stub.ScoreEpisodes(
                pb.ScoreEpisodesRequest(episode_ids=[episode_id]), timeout=RPC_TIMEOUT
            ),
            INTERNAL,
            "score_episodes",
            "score hook exploded",
        )
        got = await trajectory(stub, episode_id)
        assert got.status == "done"
        assert not got.HasField("reward")
    assert "broken" in await list_environments(stub)


# --- UNAVAILABLE -------------------------------------------------------------------------------


async def test_start_without_docker_is_unavailable(
    owner: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    server = RuntimeServer(server_settings(f"{owner}-nodocker"))
    try:
        with pytest.raises(UnavailableError, match="Docker") as info:
            await server.start()
        assert "nonexistent.sock" in str(info.value) or "No such file" in str(info.value)
    finally:
        await server.stop()


async def test_docker_gone_after_start_is_unavailable(
    owner: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon disappears while the server runs: StartEpisode answers UNAVAILABLE.

    Simulated without mocks: the backend's cached client is dropped and DOCKER_HOST points at a
    socket that does not exist, so the next Docker call talks to nothing (relies on the private
    `DockerBackend._client`).
    """
    async with running_server(f"{owner}-gone") as server:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.EpisodeServiceStub(channel)
            monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
            server.backend._client = None
            error = await expect_error(
                stub.StartEpisode(start_request(), timeout=RPC_TIMEOUT),
                grpc.StatusCode.UNAVAILABLE,
                "Docker",
            )
            assert len(error.details() or "") < 2100
            assert "toy" in await list_environments(stub)
        monkeypatch.delenv("DOCKER_HOST")
        server.backend._client = None


# --- never UNKNOWN -----------------------------------------------------------------------------


async def test_odd_requests_never_yield_unknown(stub: Stub) -> None:
    huge = "x" * 1_000_000
    max_u32 = 2**32 - 1
    async with open_episode(stub, params={"max_turns": 1000}) as started:
        live = started.episode_id
        odd: list[tuple[Any, Any]] = [
            (stub.ListEnvironments, pb.ListEnvironmentsRequest()),
            (stub.DescribeEnvironment, pb.DescribeEnvironmentRequest()),
            (stub.StartEpisode, pb.StartEpisodeRequest()),
            (stub.StepEpisode, pb.StepEpisodeRequest()),
            (stub.ScoreEpisode, pb.ScoreEpisodeRequest()),
            (stub.ScoreEpisodes, pb.ScoreEpisodesRequest()),
            (stub.GetTrajectory, pb.GetTrajectoryRequest()),
            (stub.CloseEpisode, pb.CloseEpisodeRequest()),
            (stub.DescribeEnvironment, pb.DescribeEnvironmentRequest(environment_id=huge)),
            (
                stub.DescribeEnvironment,
                pb.DescribeEnvironmentRequest(environment_id="toy", params_json=huge),
            ),
            (
                stub.DescribeEnvironment,
                pb.DescribeEnvironmentRequest(environment_id="toy", params_json='{"": 1}'),
            ),
            (
                stub.DescribeEnvironment,
                pb.DescribeEnvironmentRequest(environment_id="../../etc/passwd"),
            ),
            (stub.StartEpisode, pb.StartEpisodeRequest(environment_id=huge)),
            (
                stub.StartEpisode,
                pb.StartEpisodeRequest(environment_id="toy", params_json=DEEP_JSON),
            ),
            (stub.StartEpisode, pb.StartEpisodeRequest(environment_id="toy", params_json="null")),
            (
                stub.StartEpisode,
                pb.StartEpisodeRequest(environment_id="toy", example_index=max_u32),
            ),
            (
                stub.StartEpisode,
                pb.StartEpisodeRequest(
                    environment_id="toy",
                    limits=pb.EpisodeLimits(
                        call_timeout_seconds=math.inf,
                        max_turns=max_u32,
                        output_cap_bytes=max_u32,
                    ),
                ),
            ),
            (
                stub.StartEpisode,
                pb.StartEpisodeRequest(
                    environment_id="toy", limits=pb.EpisodeLimits(call_timeout_seconds=-math.inf)
                ),
            ),
            (
                stub.StartEpisode,
                pb.StartEpisodeRequest(
                    environment_id="toy",
                    inline_example=pb.InlineExample(input_json=huge),
                ),
            ),
            (stub.StepEpisode, pb.StepEpisodeRequest(episode_id=huge, action=raw("hi"))),
            (stub.StepEpisode, pb.StepEpisodeRequest(episode_id=live, turn=max_u32)),
            (
                stub.StepEpisode,
                pb.StepEpisodeRequest(episode_id=live, action=raw("hi"), turn=max_u32),
            ),
            (
                stub.StepEpisode,
                pb.StepEpisodeRequest(
                    episode_id=live,
                    action=pb.Action(raw_text="hi", token_ids=[-(2**63)], logprobs=[math.nan]),
                    turn=max_u32,
                ),
            ),
            (
                stub.StepEpisode,
                pb.StepEpisodeRequest(
                    episode_id=live, action=pb.Action(raw_text="x", metadata_json=DEEP_JSON)
                ),
            ),
            (stub.ScoreEpisodes, pb.ScoreEpisodesRequest(episode_ids=[huge])),
            (stub.ScoreEpisodes, pb.ScoreEpisodesRequest(episode_ids=["a"] * 10_000)),
            (
                stub.ScoreEpisodes,
                pb.ScoreEpisodesRequest(episode_ids=[f"ep_{i}" for i in range(10_000)]),
            ),
            (stub.GetTrajectory, pb.GetTrajectoryRequest(episode_id=huge)),
            (stub.CloseEpisode, pb.CloseEpisodeRequest(episode_id="\u0000\u202e")),
        ]
        for number, (method, request) in enumerate(odd):
            answer, error = await attempt(method(request, timeout=RPC_TIMEOUT))
            if error is not None:
                assert error.code() != grpc.StatusCode.UNKNOWN, (number, error.details())
                assert "Traceback" not in (error.details() or ""), number
                assert len(error.details() or "") <= 2100, number
            elif isinstance(answer, pb.StartEpisodeResponse):
                await close_quietly(stub, answer.episode_id)

        # Odd actions on a live episode: each is a turn or a clear error, never UNKNOWN.
        actions = [
            raw("<tool_call>{}</tool_call>" * 200),
            raw("<tool_call>"),
            raw("<tool_call>" + json.dumps({"name": "bash", "arguments": "not an object"})),
            assistant(call("x" * 100_000, {}, "long")),
            assistant(call("bash", {"command": "x" * 200_000}, "big")),
            assistant(call("python", huge, "hugeargs")),
            assistant(bash("printf '\\xff\\xfe\\x00 binary'", "bin")),
            assistant(call("read_file", {"path": "../../../etc/shadow"}, "escape")),
            assistant(call("read_file", {"path": "/proc/self/environ"}, "proc")),
            assistant(call("write_file", {"path": "/etc/passwd", "content": "x"}, "ro")),
            assistant(*(bash("true", f"c{i}") for i in range(70))),
            # These two carry no <tool_call> block: each is a final reply, the first ends it.
            raw(json.dumps({"name": "bash"}) + "</tool_call>"),
            raw(""),
        ]
        for number, action in enumerate(actions):
            answer, error = await attempt(step(stub, live, action))
            if error is not None:
                assert error.code() != grpc.StatusCode.UNKNOWN, (number, error.details())
                assert "Traceback" not in (error.details() or ""), number
            else:
                assert answer.turn == number + 1
                assert answer.done == (number == len(actions) - 2)
                for message in answer.observations:
                    assert message.role == "tool"
                    assert "Traceback" not in message.content

    assert "toy" in await list_environments(stub)
    async with open_episode(stub) as started:
        answer = await step(stub, started.episode_id, assistant(bash("echo still here", "c")))
        assert answer.observations[0].content == "still here"


# --- hostile nesting and malformed inline examples --------------------------------------


async def test_deeply_nested_tool_arguments_are_an_observation(stub: Stub) -> None:
    async with open_episode(stub) as started:
        answer = await step(stub, started.episode_id, assistant(call("add", DEEP_JSON, "deep")))
        assert not answer.done
        assert answer.calls[0].error == "invalid_arguments"
        assert "JSON" in answer.observations[0].content


async def test_deeply_nested_raw_tool_call_is_an_observation(stub: Stub) -> None:
    async with open_episode(stub) as started:
        answer = await step(
            stub, started.episode_id, raw(f"<tool_call>{DEEP_JSON}</tool_call>"), turn=1
        )
        assert answer.turn == 1
        assert answer.calls[0].error == "invalid_call"


DEEP_REQUESTS = {
    "params_json": lambda: pb.StartEpisodeRequest(environment_id="toy", params_json=DEEP_JSON),
    "inline_example.input_json": lambda: pb.StartEpisodeRequest(
        environment_id="toy", inline_example=pb.InlineExample(input_json=DEEP_JSON)
    ),
    "inline_example.output_json": lambda: pb.StartEpisodeRequest(
        environment_id="toy",
        inline_example=pb.InlineExample(input_json='"q"', output_json=DEEP_JSON),
    ),
}


@pytest.mark.parametrize("field", list(DEEP_REQUESTS))
async def test_deeply_nested_json_fields_are_invalid_argument(stub: Stub, field: str) -> None:
    await expect_error(
        stub.StartEpisode(DEEP_REQUESTS[field](), timeout=RPC_TIMEOUT), INVALID, field
    )


async def test_deeply_nested_action_metadata_is_invalid_argument(stub: Stub) -> None:
    async with open_episode(stub) as started:
        await expect_error(
            step(stub, started.episode_id, pb.Action(raw_text="x", metadata_json=DEEP_JSON)),
            INVALID,
            "action.metadata_json",
        )


async def test_inline_example_with_malformed_messages_is_invalid_argument(stub: Stub) -> None:
    request = pb.StartEpisodeRequest(
        environment_id="toy",
        inline_example=pb.InlineExample(input_json='[{"role": "robot", "content": "hi"}]'),
    )
    error = await rpc_error(stub.StartEpisode(request, timeout=RPC_TIMEOUT))
    assert error.code() == INVALID, error.details()
    assert "role" in (error.details() or "")
