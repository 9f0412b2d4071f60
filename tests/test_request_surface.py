"""The request surface never wedges a server (issue 11 §4, issue 18): real gRPC on loopback,
real Docker sandboxes, nothing mocked.

- lone surrogates in client- or model-written text are kept as U+FFFD and flagged, never
  INTERNAL, and the episode stays scorable;
- a failed StartEpisode leaves no episode and no container, and frees its slot;
- trajectories stay fetchable at every cap: bounded turns and episodes, paged GetTrajectory,
  ScoreEpisode without the trajectory unless asked;
- `SystemExit` & co. from environment code fail the call with INTERNAL, not the server;
- a slow `load_environment` does not hold up other episodes;
- undecodable request bytes are INVALID_ARGUMENT;
- a sandbox killed from outside makes ScoreEpisode FAILED_PRECONDITION, never UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import grpc
import pytest
from conftest import GVISOR, wait_until_gone
from grpc_fixtures import (
    ENV_DIR,
    RPC_TIMEOUT,
    TOY,
    assistant,
    bash,
    call,
    close_quietly,
    connected,
    episode_containers,
    expect_error,
    open_episode,
    raw,
    running_server,
    start_request,
    step,
    trajectory,
)

from runtime.client.grpc_client import GrpcClient
from runtime.server.app import RuntimeServer
from runtime.v1 import runtime_pb2 as pb
from runtime.v1 import runtime_pb2_grpc as pb_grpc

Stub = pb_grpc.EpisodeServiceStub
SURFACE = str(ENV_DIR / "surface")
INVALID = grpc.StatusCode.INVALID_ARGUMENT
INTERNAL = grpc.StatusCode.INTERNAL
FAILED = grpc.StatusCode.FAILED_PRECONDITION
MiB = 1024 * 1024
ISOLATION = {"sandbox_isolation": "gvisor"} if GVISOR else {}
"""Under RUNTIME_TEST_ISOLATION=gvisor, every sandbox of these servers runs under gVisor."""


@pytest.fixture(scope="module", name="server")
async def server_fixture(owner: str) -> AsyncIterator[RuntimeServer]:
    """This module's server: the toy and the misbehaving environment."""
    async with running_server(
        f"{owner}-surface", environments=[TOY, SURFACE], max_live_episodes=64, **ISOLATION
    ) as server:
        yield server


@pytest.fixture(name="stub")
async def stub_fixture(server: RuntimeServer) -> AsyncIterator[Stub]:
    async with connected(server) as stub:
        yield stub


async def score(stub: Stub, episode_id: str, **fields: Any) -> pb.ScoreEpisodeResponse:
    request = pb.ScoreEpisodeRequest(episode_id=episode_id, **fields)
    response: pb.ScoreEpisodeResponse = await stub.ScoreEpisode(request, timeout=RPC_TIMEOUT)
    return response


def utf8_clean(value: Any) -> bool:
    """True when every string in ``value`` (a pydantic dump) encodes as UTF-8."""
    json.dumps(value, ensure_ascii=False).encode("utf-8")
    return True


# --- 1. lone surrogates ------------------------------------------------------------------------


async def test_lone_surrogates_in_tool_arguments_are_kept_safely(stub: Stub) -> None:
    async with open_episode(stub, params={"max_turns": 6}) as started:
        episode_id = started.episode_id
        # JSON escapes of lone surrogates: valid JSON, but not valid Unicode once decoded.
        write = call("write_file", '{"path": "p\\ud800.txt", "content": "x\\udfff"}', "w1")
        first = await step(stub, episode_id, assistant(write))
        assert first.calls[0].error == ""
        listed = await step(stub, episode_id, assistant(bash("printf '%s\\n' *", "l1")))
        assert "p\ufffd.txt" in (listed.observations[0].content or "")
        # The action parser decodes JSON too: raw text with an escaped surrogate.
        parsed = await step(
            stub,
            episode_id,
            raw(
                '<tool_call>{"name": "bash", "arguments": {"command": "echo \\ud83d-ok"}}'
                "</tool_call>",
                metadata_json='{"note": "\\udc00"}',
            ),
        )
        assert "\ufffd-ok" in (parsed.observations[0].content or "")
        submitted = await step(
            stub, episode_id, assistant(call("submit", '{"answer": "\\ud800"}', "s1"))
        )
        assert submitted.done

        got = await trajectory(stub, episode_id)
        assert got.text_replaced
        assert [t.text_replaced for t in got.turns] == [True, False, True, True]
        assert json.loads(got.turns[0].action.message.tool_calls[0].arguments) == {
            "path": "p\ufffd.txt",
            "content": "x\ufffd",
        }
        assert json.loads(got.turns[2].action.metadata_json) == {"note": "\ufffd"}
        assert json.loads(got.submission_json) == "\ufffd"
        scored = await score(stub, episode_id)
        assert scored.reward.score == 0.0  # scored: "\ufffd" is not the reference "42"


async def test_lone_surrogates_in_start_requests_are_kept_safely(stub: Stub) -> None:
    inline = pb.InlineExample(
        input_json='"What is \\ud800?"', output_json='"\\udfff"', metadata_json='{"k\\ud800": 1}'
    )
    request = start_request(
        "toy", params={"note": "\ud800"}, example_index=None, inline_example=inline
    )
    # The client library's json.dumps escapes the surrogate: it travels as "\ud800" in JSON.
    assert "\\ud800" in request.params_json
    started = await stub.StartEpisode(request, timeout=RPC_TIMEOUT)
    try:
        assert started.messages[-1].content == "What is \ufffd?"
        got = await trajectory(stub, started.episode_id)
        assert got.text_replaced
        done = await step(stub, started.episode_id, assistant(content="\ufffd"))
        assert done.done
        assert (await score(stub, started.episode_id)).reward.score == 1.0
    finally:
        await close_quietly(stub, started.episode_id)


async def test_lone_surrogates_from_in_process_callers_are_kept_safely(
    server: RuntimeServer,
) -> None:
    """Python callers can hand the engine lone surrogates directly, in any text field."""
    from runtime.client.in_process import InProcessClient
    from runtime.tools.messages import Message, ToolCall

    client = InProcessClient(server.engine)
    started = await client.start_episode(
        "toy",
        params={"p\udc00": "\ud800"},
        inline_example={"input": "q\ud800", "output": "a", "metadata": {"m": "\udfff"}},
    )
    try:
        assert started.messages[-1].content == "q\ufffd"
        message = Message(
            role="assistant",
            content="thinking \ud800",
            tool_calls=[
                ToolCall(id="c\ud800", name="bash", arguments='{"command": "echo \ud800"}'),
                ToolCall(id="c2", name="no\udfffsuch", arguments="{}"),
            ],
        )
        out = await client.step_episode(
            started.episode_id, turn=1, message=message, metadata={"m": "\ud800"}
        )
        assert out.observations[0].tool_call_id == "c\ufffd"
        assert "unknown tool" in (out.observations[1].content or "")
        raw_out = await client.step_episode(started.episode_id, turn=2, raw_text="done \udc00")
        assert raw_out.turn == 2
        got = await client.get_trajectory(started.episode_id)
        assert got.text_replaced
        assert all(t.text_replaced for t in got.turns)
        assert utf8_clean(got.model_dump(mode="json"))
        scored = await client.score_episode(started.episode_id)
        assert utf8_clean(scored.model_dump(mode="json"))
        # The same episode over gRPC: every page encodes.
        async with connected(server) as stub:
            page = await trajectory(stub, started.episode_id)
            assert page.text_replaced
            assert len(page.turns) == 2
    finally:
        await client.close_episode(started.episode_id)


# --- 2. a failed StartEpisode leaves nothing ---------------------------------------------------


async def test_failed_starts_leave_no_episode_and_no_container(
    owner: str, docker_client: docker.DockerClient
) -> None:
    instance = f"{owner}-failstart"
    slots = 3
    # Limit 60 kB: this inline input arrives in 50 kB but opens with a 75 kB user message.
    too_big = "[" + ",".join(["1"] * 25_000) + "]"
    async with running_server(
        instance,
        environments=[TOY, SURFACE],
        max_live_episodes=slots,
        max_message_bytes=60_000,
        **ISOLATION,
    ) as server:
        async with connected(server) as stub:
            failing = [
                (
                    start_request(
                        "toy",
                        example_index=None,
                        inline_example=pb.InlineExample(input_json=too_big),
                    ),
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "message limit",
                ),
                (start_request("surface", params={"exit_in": "start"}), INTERNAL, "SystemExit"),
                (
                    start_request(
                        "surface", params={"exit_in": "turns", "exit_kind": "KeyboardInterrupt"}
                    ),
                    INTERNAL,
                    "KeyboardInterrupt",
                ),
            ]
            for _ in range(2):
                for request, code, fragment in failing:
                    await expect_error(
                        stub.StartEpisode(request, timeout=RPC_TIMEOUT), code, fragment
                    )
            assert server.engine.live_count == 0
            assert await wait_until_gone(docker_client, instance) == []
            # Every slot is free: the server takes as many episodes as it holds.
            opened = [
                await stub.StartEpisode(start_request("toy"), timeout=RPC_TIMEOUT)
                for _ in range(slots)
            ]
            for started in opened:
                echoed = await step(stub, started.episode_id, assistant(bash("echo ok", "c")))
                assert (echoed.observations[0].content or "").strip() == "ok"
                await close_quietly(stub, started.episode_id)
        assert await wait_until_gone(docker_client, instance) == []


# --- 3. trajectories stay fetchable ------------------------------------------------------------

LOUD = "head -c 65536 /dev/zero | tr '\\0' o; head -c 65536 /dev/zero | tr '\\0' e >&2"
"""64 KiB to stdout and 64 KiB to stderr: the default per-call output cap, both streams."""


async def test_trajectories_at_every_cap_stay_fetchable(server: RuntimeServer, stub: Stub) -> None:
    caps = server.engine.limits
    async with open_episode(
        stub,
        params={"max_turns": 60},
        limits=pb.EpisodeLimits(output_cap_bytes=MiB),
    ) as started:
        episode_id = started.episode_id
        # Turn 1: 64 calls of 128 KiB each (8 MiB): the turn keeps its cap, each cut marked.
        many = assistant(*[bash(LOUD, f"c{i}") for i in range(64)])
        first = await step(stub, episode_id, many)
        assert len(first.observations) == 64
        assert all(c.output_truncated for c in first.calls)
        assert all("[observation cut" in (m.content or "") for m in first.observations)
        held = sum(len((m.content or "").encode()) for m in first.observations)
        assert held <= caps.max_turn_observation_bytes + 64 * 200  # plus the marks
        # Then 2 MiB per turn until the episode's record is full: it ends as truncated.
        huge = "head -c 1048576 /dev/zero | tr '\\0' o; head -c 1048576 /dev/zero | tr '\\0' e >&2"
        out = first
        while not out.done:
            out = await step(stub, episode_id, assistant(bash(huge, f"t{out.turn + 1}")))
        assert out.truncated
        assert out.turn < 60
        assert "record is full" in (out.observations[0].content or "")

        # ScoreEpisode answers the reward alone unless asked.
        scored = await score(stub, episode_id)
        assert not scored.HasField("trajectory")
        assert scored.ByteSize() < 10_000
        # GetTrajectory pages: each under the asked size, together the whole record.
        page_bytes = 4 * MiB
        pages: list[pb.Trajectory] = []
        token = ""
        while not pages or token:
            request = pb.GetTrajectoryRequest(
                episode_id=episode_id, page_token=token, max_page_bytes=page_bytes
            )
            pages.append((await stub.GetTrajectory(request, timeout=RPC_TIMEOUT)).trajectory)
            token = pages[-1].next_page_token
        assert len(pages) >= 4
        assert all(p.ByteSize() <= page_bytes for p in pages)
        numbers = [t.number for p in pages for t in p.turns]
        assert numbers == list(range(1, out.turn + 1))
        assert pages[0].turn_count == out.turn
        assert (pages[-1].status, pages[-1].truncated) == ("truncated", True)
        assert "max_episode_bytes" in pages[-1].error
        assert len(pages[0].messages) == 2
        assert all(not p.messages for p in pages[1:])
        total = sum(p.ByteSize() for p in pages)
        assert total <= caps.max_episode_bytes + caps.max_action_bytes + 64 * 1024
        # Smaller pages on request; a page always holds at least one turn.
        small = pb.GetTrajectoryRequest(episode_id=episode_id, max_page_bytes=512 * 1024)
        page = (await stub.GetTrajectory(small, timeout=RPC_TIMEOUT)).trajectory
        assert len(page.turns) == 1
        assert page.next_page_token
        with_trajectory = await score(
            stub, episode_id, include_trajectory=True, max_page_bytes=page_bytes
        )
        assert with_trajectory.trajectory.turns[0] == pages[0].turns[0]
        await expect_error(
            stub.GetTrajectory(
                pb.GetTrajectoryRequest(episode_id=episode_id, page_token="nonsense"),
                timeout=RPC_TIMEOUT,
            ),
            INVALID,
            "page_token",
        )

        # The client library gathers every page into the whole record.
        async with GrpcClient(server.address) as client:
            whole = await client.get_trajectory(episode_id)
            assert [t.number for t in whole.turns] == numbers
            assert len(whole.messages) == 2 + sum(1 + len(t.observations) for t in whole.turns)
            rescored = await client.score_episode(episode_id)
            assert rescored.trajectory == whole


async def test_an_oversized_action_runs_as_sent_and_is_recorded_cut(
    server: RuntimeServer, stub: Stub
) -> None:
    cap = server.engine.limits.max_action_bytes
    async with open_episode(stub) as started:
        episode_id = started.episode_id
        # The model's text: the tool sees it whole; the record keeps it cut, marked.
        code = "#" * (cap + 10)
        out = await step(stub, episode_id, assistant(call("python", {"code": code}, "p")))
        assert f"the program is {len(code)} bytes" in (out.observations[0].content or "")
        got = await trajectory(stub, episode_id)
        kept = got.turns[0].action.message.tool_calls[0].arguments
        assert "[cut for the record" in kept
        assert len(kept.encode()) <= cap + 200
        # The client's data (token ids, logprobs, metadata) over the cap is its mistake.
        tokens = list(range(cap // 10))
        await expect_error(
            step(stub, episode_id, assistant(content="hi", token_ids=tokens)),
            INVALID,
            "max_action_bytes",
        )
        assert (await trajectory(stub, episode_id)).turn_count == 1


# --- 4. BaseException in environment code ------------------------------------------------------

KINDS = ("SystemExit", "KeyboardInterrupt", "GeneratorExit")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("place", ["step", "tool", "score", "rubric"])
async def test_base_exceptions_in_environment_code_fail_only_the_call(
    server: RuntimeServer, stub: Stub, docker_client: docker.DockerClient, place: str, kind: str
) -> None:
    params = {"exit_in": place, "exit_kind": kind}
    async with open_episode(stub, "surface", params=params) as started:
        episode_id = started.episode_id
        if place in ("step", "tool"):
            action = call("explode", {}, "x") if place == "tool" else bash("echo hi", "b")
            await expect_error(step(stub, episode_id, assistant(action)), INTERNAL, kind)
        else:
            await step(stub, episode_id, assistant(call("submit", {"answer": "42"}, "s")))
            await expect_error(score(stub, episode_id), INTERNAL, kind, "surface")
        got = await trajectory(stub, episode_id)
        assert got.status == "errored"
        assert kind in got.error
        assert episode_containers(docker_client, episode_id) == []
    # The server goes on.
    async with open_episode(stub) as other:
        echoed = await step(stub, other.episode_id, assistant(bash("echo alive", "c")))
        assert (echoed.observations[0].content or "").strip() == "alive"


@pytest.mark.parametrize("kind", KINDS)
async def test_base_exceptions_in_load_environment_are_internal(stub: Stub, kind: str) -> None:
    params = {"exit_in": "load", "exit_kind": kind}
    await expect_error(
        stub.StartEpisode(start_request("surface", params=params), timeout=RPC_TIMEOUT),
        INTERNAL,
        "load_environment",
        kind,
    )
    listed = await stub.ListEnvironments(pb.ListEnvironmentsRequest(), timeout=RPC_TIMEOUT)
    assert "surface" in [e.id for e in listed.environments]


# --- 5. loading never blocks the event loop ----------------------------------------------------


async def test_a_slow_load_does_not_hold_up_other_episodes(stub: Stub, tmp_path: Path) -> None:
    gate = tmp_path / "open"
    async with open_episode(stub) as other:
        slow = asyncio.ensure_future(
            stub.StartEpisode(
                start_request("surface", params={"gate": str(gate)}), timeout=RPC_TIMEOUT
            )
        )
        try:
            # While load_environment blocks on its thread, the other episode plays on.
            for turn in range(1, 4):
                out = await step(stub, other.episode_id, assistant(bash(f"echo {turn}", "c")))
                assert (out.observations[0].content or "").strip() == str(turn)
                assert not slow.done(), "the slow load finished before the gate opened"
            described = await stub.DescribeEnvironment(
                pb.DescribeEnvironmentRequest(environment_id="toy"), timeout=RPC_TIMEOUT
            )
            assert described.environment.id == "toy"
            assert not slow.done()
            gate.touch()
            started = await slow
            await close_quietly(stub, started.episode_id)
        finally:
            gate.touch()
            if not slow.done():
                slow.cancel()


async def test_loads_have_a_deadline_and_a_bound(tmp_path: Path) -> None:
    from runtime.episodes.engine import EpisodeEngine
    from runtime.episodes.limits import EngineLimits
    from runtime.episodes.registry import EnvironmentRegistry
    from runtime.errors import DeadlineExceededError, ResourceExhaustedError

    class NoSandboxes:  # the loads under test never reach a sandbox
        async def create(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("no sandbox expected")

    registry = EnvironmentRegistry([SURFACE])
    limits = EngineLimits(
        env_load_timeout_s=0.5, max_parallel_env_loads=1, max_loaded_environments=1
    )
    engine = EpisodeEngine(registry, NoSandboxes(), limits)  # type: ignore[arg-type]
    gate = tmp_path / "open"
    count = tmp_path / "loads"

    def loads() -> int:
        return len(count.read_text().splitlines()) if count.exists() else 0

    def params(place: str) -> dict[str, Any]:
        return {"exit_in": place, "count_to": str(count)}

    gates = [tmp_path / f"open-{i}" for i in range(16)]
    try:
        with pytest.raises(DeadlineExceededError, match=r"did not load within 0\.5 s"):
            await engine.describe_environment("surface", {"gate": str(gate)})
        # That load still holds the one thread: a different load waits for it, within its
        # own deadline.
        with pytest.raises(DeadlineExceededError, match=r"did not load within 0\.5 s"):
            await engine.describe_environment("surface", params("step"))
        gate.touch()
        for _ in range(100):
            if not registry._running:  # both loads have returned
                break
            await asyncio.sleep(0.05)
        assert loads() == 0  # the waiting load was dropped at its deadline, never started
        # Waiting is bounded: 16 loads per thread, running or waiting; beyond, refused at once.
        waiting = [
            asyncio.ensure_future(engine.describe_environment("surface", {"gate": str(g)}))
            for g in gates
        ]
        await asyncio.sleep(0.1)
        with pytest.raises(ResourceExhaustedError, match="running or waiting"):
            await engine.describe_environment("surface", params("score"))
        for g in gates:
            g.touch()
        await asyncio.gather(*waiting, return_exceptions=True)
        for _ in range(100):
            if not registry._running:
                break
            await asyncio.sleep(0.05)
        # One non-default param set is kept: loading a second evicts the first (LRU).
        await engine.describe_environment("surface", params("step"))
        await engine.describe_environment("surface", params("score"))
        assert loads() == 2
        await engine.describe_environment("surface", params("score"))
        assert loads() == 2  # kept
        await engine.describe_environment("surface", params("step"))
        assert loads() == 3  # evicted by "score", so loaded again
        # A load that waits for the thread and gets it in time succeeds.
        late_gate = tmp_path / "late"
        first = asyncio.ensure_future(
            engine.describe_environment("surface", {"gate": str(late_gate)})
        )
        second = asyncio.ensure_future(engine.describe_environment("surface", params("")))
        await asyncio.sleep(0.1)
        assert not second.done()  # waiting behind the gated load
        late_gate.touch()
        await asyncio.gather(first, second)
        assert loads() == 4
    finally:
        gate.touch()
        for g in gates:
            g.touch()
        registry.close()


# --- 6. undecodable request bytes --------------------------------------------------------------

METHODS = [m.name for m in pb.DESCRIPTOR.services_by_name["EpisodeService"].methods]


@pytest.mark.parametrize("method", METHODS)
async def test_undecodable_request_bytes_are_invalid_argument(
    server: RuntimeServer, method: str
) -> None:
    async with grpc.aio.insecure_channel(server.address) as channel:
        send = channel.unary_unary(
            f"/runtime.v1.EpisodeService/{method}",
            request_serializer=lambda data: data,
            response_deserializer=lambda data: data,
        )
        # A truncated varint, a tag that is no tag, and (where field 1 is a string) a string
        # holding invalid UTF-8.
        cases = [b"\x08", b"\xff\xff\xff\xff"]
        if method != "ListEnvironments":
            cases.append(b"\x0a\x02\xff\xfe")
        for garbage in cases:
            await expect_error(send(garbage, timeout=RPC_TIMEOUT), INVALID, "not a valid")


# --- 7. a lost sandbox is FAILED_PRECONDITION, never UNAVAILABLE --------------------------------


async def test_score_after_the_container_was_killed_is_failed_precondition(
    server: RuntimeServer, stub: Stub, docker_client: docker.DockerClient
) -> None:
    params = {"score_from_sandbox": True}
    async with open_episode(stub, "surface", params=params) as started:
        episode_id = started.episode_id
        wrote = await step(stub, episode_id, assistant(bash("echo 42 > answer.txt", "w")))
        assert wrote.calls[0].exit_code == 0
        assert (await score(stub, episode_id)).reward.score == 1.0
        (name,) = episode_containers(docker_client, episode_id)
        await asyncio.to_thread(docker_client.containers.get(name).kill)
        for _ in range(2):  # and again, once the episode knows its sandbox is gone
            error = await expect_error(score(stub, episode_id), FAILED, "sandbox", episode_id)
            assert error.code() != grpc.StatusCode.UNAVAILABLE
        got = await trajectory(stub, episode_id)
        assert got.status == "errored"
        assert "sandbox" in got.error
        assert await wait_until_container_gone(docker_client, episode_id)


async def wait_until_container_gone(client: docker.DockerClient, episode_id: str) -> bool:
    for _ in range(150):
        if not await asyncio.to_thread(episode_containers, client, episode_id):
            return True
        await asyncio.sleep(0.1)
    return False
