"""Fuzzing the gRPC request surface and the agent channel (hypothesis): no crash, no UNKNOWN,
no leaked container, whatever arrives."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import grpc
import pytest
from conftest import leftover_containers, sandbox_spec
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runtime.errors import SandboxError
from runtime.sandbox.channel import AgentChannel
from runtime.sandbox.docker_backend import DockerBackend, DockerSandbox
from runtime.server.app import RuntimeServer
from runtime.server.settings import ServerSettings
from runtime.v1 import runtime_pb2 as pb
from runtime.v1 import runtime_pb2_grpc as pb_grpc

ENVS = Path(__file__).resolve().parent / "environments"
ALLOWED = {
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}
FUZZ = settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)


class ServerThread:
    """A real server on its own event loop in a thread, so sync hypothesis tests can call it."""

    def __init__(self, settings_: ServerSettings) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = RuntimeServer(settings_)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(60)
        return self

    def run(self, coro: Any) -> Any:
        """Run a coroutine on the server's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(120)

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.server.stop(grace_s=0.5))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


@pytest.fixture(scope="module")
def fuzz_server(owner: str) -> Iterator[tuple[ServerThread, pb_grpc.EpisodeServiceStub]]:
    config = ServerSettings(
        port=0,
        environments=[str(ENVS / "fuzz_echo"), str(ENVS / "toy")],
        instance_name=f"{owner}-fuzz",
        max_live_episodes=64,
        log_level="ERROR",
    )
    with ServerThread(config) as running, grpc.insecure_channel(running.server.address) as channel:
        yield running, pb_grpc.EpisodeServiceStub(channel)


text = st.text(max_size=60)
surrogates = st.text(
    st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010, exclude_categories=()), max_size=6
)
"""Text around and inside U+D800..U+DFFF: lone surrogates, which `json.dumps` sends as
``"\\ud800"`` escapes that decode back into text UTF-8 cannot hold."""
json_text = st.one_of(
    text,
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10) | surrogates,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5) | surrogates, inner)
        ),
        max_leaves=8,
    ).map(json.dumps),
)
surrogate_object = st.dictionaries(st.sampled_from(["text", "answer", "k"]), surrogates).map(
    json.dumps
)
"""A JSON object whose strings hold lone-surrogate escapes: tool arguments, metadata."""
env_ids = st.sampled_from(["fuzz_echo", "", "toy", "nope", "FUZZ_ECHO"]) | text
tool_calls = st.lists(
    st.builds(
        pb.ToolCall,
        id=st.sampled_from(["c1", "c2", ""]) | text,
        name=st.sampled_from(["echo", "submit", "bash", ""]) | text,
        arguments=json_text | surrogate_object,
    ),
    max_size=4,
)
messages = st.builds(
    pb.Message,
    role=st.sampled_from(["assistant", "user", "tool", "system", ""]) | text,
    content=text,
    tool_calls=tool_calls,
    tool_call_id=text,
)
actions = st.one_of(
    st.builds(
        pb.Action,
        message=messages,
        metadata_json=st.sampled_from(["", "{}"]) | json_text | surrogate_object,
    ),
    st.builds(pb.Action, raw_text=text),
    st.builds(
        pb.Action,
        raw_text=st.sampled_from(['<tool_call>{"name": "echo", "arguments": {"text": "x"}}']),
        token_ids=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3),
        logprobs=st.lists(st.floats(allow_nan=True), max_size=3),
    ),
    st.just(pb.Action()),
)
limits = st.builds(
    pb.EpisodeLimits,
    call_timeout_seconds=st.floats(allow_nan=True, allow_infinity=True),
    max_turns=st.integers(0, 2**32 - 1),
    output_cap_bytes=st.integers(0, 2**32 - 1),
)


def _check(call: Any) -> Any:
    """The RPC's answer, or None when it failed with one of the deliberate codes."""
    try:
        return call()
    except grpc.RpcError as exc:
        failure = exc
    code, details = failure.code(), failure.details()  # type: ignore[attr-defined]
    assert code in ALLOWED, f"{code}: {details}"
    return None


SURROGATE_STEP = pb.Action(
    message=pb.Message(
        role="assistant",
        tool_calls=[pb.ToolCall(id="c1", name="echo", arguments='{"text": "a\\ud800"}')],
    ),
    metadata_json='{"k": "\\udfff"}',
)
"""Lone-surrogate escapes in tool arguments and metadata (always tried, not left to chance)."""


@FUZZ
@example(env_id="fuzz_echo", params="", index=0, seed=None, limit=None, steps=[(SURROGATE_STEP, 1)])
@given(
    env_id=env_ids,
    params=st.sampled_from(["", "{}", '{"max_turns": 2}']) | json_text,
    index=st.none() | st.integers(0, 2**32 - 1),
    seed=st.none() | st.integers(-(2**63), 2**63 - 1),
    limit=st.none() | limits,
    steps=st.lists(st.tuples(actions, st.integers(0, 4)), max_size=3),
)
def test_fuzzed_episodes_never_crash_or_answer_unknown(
    fuzz_server: tuple[ServerThread, pb_grpc.EpisodeServiceStub],
    env_id: str,
    params: str,
    index: int | None,
    seed: int | None,
    limit: pb.EpisodeLimits | None,
    steps: list[tuple[pb.Action, int]],
) -> None:
    _, stub = fuzz_server
    # The toy environment starts real sandboxes: keep it to its own, smaller test.
    env_id = "fuzz_echo" if env_id == "toy" else env_id
    request = pb.StartEpisodeRequest(environment_id=env_id, params_json=params)
    if index is not None:
        request.example_index = index
    if seed is not None:
        request.seed = seed
    if limit is not None:
        request.limits.CopyFrom(limit)
    started = _check(lambda: stub.StartEpisode(request, timeout=30))
    episode_id = started.episode_id if started is not None else "ep_missing"
    try:
        for action, turn in steps:
            step = pb.StepEpisodeRequest(episode_id=episode_id, action=action, turn=turn)
            _check(lambda step=step: stub.StepEpisode(step, timeout=30))
        _check(lambda: stub.ScoreEpisode(pb.ScoreEpisodeRequest(episode_id=episode_id), timeout=30))
        _check(lambda: stub.GetTrajectory(pb.GetTrajectoryRequest(episode_id=episode_id)))
    finally:
        _check(lambda: stub.CloseEpisode(pb.CloseEpisodeRequest(episode_id=episode_id)))


@FUZZ
@given(
    episode_ids=st.lists(text | st.just("ep_" + "A" * 24), max_size=4),
    env_id=env_ids,
    params=json_text,
)
def test_fuzzed_lookups_never_crash_or_answer_unknown(
    fuzz_server: tuple[ServerThread, pb_grpc.EpisodeServiceStub],
    episode_ids: list[str],
    env_id: str,
    params: str,
) -> None:
    _, stub = fuzz_server
    describe = pb.DescribeEnvironmentRequest(environment_id=env_id, params_json=params)
    _check(lambda: stub.DescribeEnvironment(describe, timeout=30))
    _check(lambda: stub.ScoreEpisodes(pb.ScoreEpisodesRequest(episode_ids=episode_ids)))
    for episode_id in episode_ids:
        _check(lambda e=episode_id: stub.GetTrajectory(pb.GetTrajectoryRequest(episode_id=e)))
        _check(lambda e=episode_id: stub.CloseEpisode(pb.CloseEpisodeRequest(episode_id=e)))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(steps=st.lists(st.tuples(actions, st.integers(0, 3)), min_size=1, max_size=3))
def test_fuzzed_steps_on_real_sandboxes(
    fuzz_server: tuple[ServerThread, pb_grpc.EpisodeServiceStub],
    steps: list[tuple[pb.Action, int]],
) -> None:
    _, stub = fuzz_server
    started = stub.StartEpisode(
        pb.StartEpisodeRequest(environment_id="toy", example_index=0), timeout=60
    )
    try:
        for action, turn in steps:
            step = pb.StepEpisodeRequest(episode_id=started.episode_id, action=action, turn=turn)
            _check(lambda step=step: stub.StepEpisode(step, timeout=60))
    finally:
        stub.CloseEpisode(pb.CloseEpisodeRequest(episode_id=started.episode_id), timeout=60)


def test_fuzzing_left_no_container(
    fuzz_server: tuple[ServerThread, pb_grpc.EpisodeServiceStub],
    owner: str,
    docker_client: docker.DockerClient,
) -> None:
    running, stub = fuzz_server
    assert running.server.engine.live_count == 0
    assert leftover_containers(docker_client, f"{owner}-fuzz") == []
    assert stub.ListEnvironments(pb.ListEnvironmentsRequest(), timeout=10).environments


# --- the agent channel, from the sandbox side -------------------------------------------------

frames = st.lists(
    st.one_of(
        st.binary(max_size=64),
        st.builds(
            lambda stream, body: struct.pack(">BxxxI", stream, len(body)) + body,
            st.sampled_from([0, 1, 2, 3, 255]),
            st.binary(max_size=64),
        ),
        st.builds(
            lambda obj: (
                lambda data: (
                    struct.pack(">BxxxI", 1, len(data) + 4) + struct.pack(">I", len(data)) + data
                )
            )(json.dumps(obj).encode()),
            st.dictionaries(
                st.sampled_from(["id", "ok", "op", "stdout", "exit_code"]),
                st.none() | st.integers() | st.text(max_size=5) | st.booleans(),
            ),
        ),
    ),
    max_size=6,
)


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(chunks=frames)
def test_fuzzed_agent_frames_only_ever_break_the_channel(chunks: list[bytes]) -> None:
    async def scenario() -> None:
        ours, theirs = socket.socketpair()
        ready = json.dumps({"id": 0, "op": "ready"}).encode()
        body = struct.pack(">I", len(ready)) + ready
        theirs.sendall(struct.pack(">BxxxI", 1, len(body)) + body)
        channel = await AgentChannel.open(ours, ready_timeout_s=5)
        pending = asyncio.create_task(channel.request("ping", {}, 2))
        await asyncio.sleep(0)
        for chunk in chunks:
            theirs.sendall(chunk)
        theirs.close()
        try:
            reply = await pending
            assert isinstance(reply, dict)
        except SandboxError:
            assert channel.broken is not None
        await channel.close()

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def fuzz_sandbox(owner: str) -> Iterator[tuple[asyncio.AbstractEventLoop, DockerSandbox]]:
    loop = asyncio.new_event_loop()
    backend = DockerBackend(owner=f"{owner}-fuzzagent", boot_id="fuzz")
    sandbox = loop.run_until_complete(backend.create(sandbox_spec(), episode_id="fuzz"))
    try:
        yield loop, sandbox
    finally:
        loop.run_until_complete(backend.close())
        loop.close()


requests = st.fixed_dictionaries(
    {"op": st.sampled_from(["exec", "read_file", "write_file", "cancel", "ping", "nope"])},
    optional={
        "code": st.text(max_size=40) | st.integers(),
        "kind": st.sampled_from(["bash", "python", "x"]) | st.integers(),
        "session": st.booleans() | st.text(max_size=3),
        "timeout": st.floats(0.05, 0.5) | st.text(max_size=3),
        "cap": st.integers(-5, 100_000) | st.text(max_size=3),
        "path": st.text(max_size=20) | st.none(),
        "workdir": st.sampled_from(["/work", "/", "/tmp"]) | st.integers(),
        "content": st.text(max_size=30) | st.integers(),
        "max_bytes": st.integers(-5, 1000) | st.none(),
        "env": st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2) | st.none(),
        "target": st.integers() | st.none(),
        "stdin": st.text(max_size=10) | st.none(),
    },
)


@settings(max_examples=600, deadline=None, derandomize=True)
@given(payload=requests)
def test_fuzzed_agent_requests_never_kill_the_agent(
    fuzz_sandbox: tuple[asyncio.AbstractEventLoop, DockerSandbox], payload: dict[str, Any]
) -> None:
    loop, sandbox = fuzz_sandbox
    op = payload.pop("op")
    channel = sandbox._channel

    async def scenario() -> None:
        reply = await channel.request(op, payload, 10)
        assert isinstance(reply, dict)
        assert "ok" in reply
        assert (await channel.request("ping", {}, 10))["ok"] is True

    loop.run_until_complete(scenario())
