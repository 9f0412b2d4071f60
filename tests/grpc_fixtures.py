"""Shared pieces of the gRPC end-to-end tests: real servers on loopback ports, real sandboxes.

Nothing here mocks Docker or gRPC. Test modules import the fixtures they use explicitly, e.g.
``from grpc_fixtures import server_fixture, stub_fixture  # noqa: F401``; each fixture is
registered under its short name (``server``, ``stub``, ...), so test parameters do not shadow
the imported names.

Every server a module starts is stopped in a ``finally``; each test closes the episodes it
opened (``open_episode`` does it in a ``finally``), so the owner's containers can be counted.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Sequence
from pathlib import Path
from typing import Any

import docker
import grpc
import pytest
from conftest import leftover_containers

from runtime.sandbox import labels
from runtime.server.app import RuntimeServer
from runtime.server.settings import ServerSettings
from runtime.v1 import runtime_pb2 as pb
from runtime.v1 import runtime_pb2_grpc as pb_grpc

ENV_DIR = Path(__file__).resolve().parent / "environments"
TOY = str(ENV_DIR / "toy")
BROKEN = str(ENV_DIR / "broken")
ENVIRONMENTS = [TOY, BROKEN]
RPC_TIMEOUT = 60.0
"""Deadline of every RPC a test sends, so a hung server fails the test instead of the run."""

Stub = pb_grpc.EpisodeServiceStub


def settings(instance_name: str, **overrides: Any) -> ServerSettings:
    """Settings of a test server: a free loopback port, the test environments."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "environments": ENVIRONMENTS,
        "env_dirs": [ENV_DIR],
        "instance_name": instance_name,
        "shutdown_grace_s": 1.0,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return ServerSettings(**values)


@contextlib.asynccontextmanager
async def running_server(instance_name: str, **overrides: Any) -> AsyncIterator[RuntimeServer]:
    """A started `RuntimeServer`, stopped (every sandbox removed) on exit."""
    server = RuntimeServer(settings(instance_name, **overrides))
    try:
        await server.start()
        yield server
    finally:
        await server.stop(grace_s=0.5)


@contextlib.asynccontextmanager
async def connected(server: RuntimeServer) -> AsyncIterator[Stub]:
    """An `EpisodeService` stub on a fresh insecure channel to ``server``."""
    async with grpc.aio.insecure_channel(server.address) as channel:
        await channel.channel_ready()
        yield pb_grpc.EpisodeServiceStub(channel)


@pytest.fixture(scope="module", name="server")
async def server_fixture(owner: str) -> AsyncIterator[RuntimeServer]:
    """The module's main server; its instance name is the session's owner label."""
    async with running_server(owner, max_live_episodes=64) as server:
        yield server


@pytest.fixture(scope="module", name="channel")
async def channel_fixture(server: RuntimeServer) -> AsyncIterator[grpc.aio.Channel]:
    """One channel to the main server for the whole module."""
    async with grpc.aio.insecure_channel(server.address) as channel:
        await channel.channel_ready()
        yield channel


@pytest.fixture(scope="module", name="stub")
def stub_fixture(channel: grpc.aio.Channel) -> Stub:
    """The `EpisodeService` stub of the main server."""
    return pb_grpc.EpisodeServiceStub(channel)


@pytest.fixture(scope="module", name="small_server")
async def small_server_fixture(owner: str) -> AsyncIterator[RuntimeServer]:
    """A second server that holds at most two live episodes (its own instance name)."""
    async with running_server(f"{owner}-small", max_live_episodes=2) as server:
        yield server


@pytest.fixture(scope="module", name="small_stub")
async def small_stub_fixture(small_server: RuntimeServer) -> AsyncIterator[Stub]:
    """The `EpisodeService` stub of the small server."""
    async with connected(small_server) as stub:
        yield stub


# --- building requests -------------------------------------------------------------------------


def call(name: str, arguments: dict[str, Any] | str, call_id: str) -> pb.ToolCall:
    """A tool call; a dict is sent as JSON, a string exactly as given."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return pb.ToolCall(id=call_id, name=name, arguments=text)


def bash(command: str, call_id: str) -> pb.ToolCall:
    """A `bash` tool call."""
    return call("bash", {"command": command}, call_id)


def assistant(
    *calls: pb.ToolCall,
    content: str | None = None,
    token_ids: Sequence[int] = (),
    logprobs: Sequence[float] = (),
    metadata: dict[str, Any] | None = None,
) -> pb.Action:
    """A structured action: one assistant message with ``calls``."""
    message = pb.Message(role="assistant", tool_calls=list(calls))
    if content is not None:
        message.content = content
    return pb.Action(
        message=message,
        token_ids=list(token_ids),
        logprobs=list(logprobs),
        metadata_json=json.dumps(metadata) if metadata is not None else "",
    )


def raw(text: str, **extra: Any) -> pb.Action:
    """A raw-text action for the environment's action parser."""
    return pb.Action(raw_text=text, **extra)


# --- driving episodes --------------------------------------------------------------------------


def start_request(
    environment_id: str = "toy",
    *,
    params: dict[str, Any] | None = None,
    example_index: int | None = 0,
    **fields: Any,
) -> pb.StartEpisodeRequest:
    """A StartEpisode request; ``example_index=None`` leaves the example unset."""
    request = pb.StartEpisodeRequest(
        environment_id=environment_id,
        params_json=json.dumps(params) if params is not None else "",
        **fields,
    )
    if example_index is not None and "inline_example" not in fields:
        request.example_index = example_index
    return request


@contextlib.asynccontextmanager
async def open_episode(
    stub: Stub, environment_id: str = "toy", **kwargs: Any
) -> AsyncIterator[pb.StartEpisodeResponse]:
    """Start an episode and close it on exit, whatever happened in between."""
    started = await stub.StartEpisode(start_request(environment_id, **kwargs), timeout=RPC_TIMEOUT)
    try:
        yield started
    finally:
        await close_quietly(stub, started.episode_id)


async def close_quietly(stub: Stub, episode_id: str) -> None:
    """CloseEpisode, ignoring an episode the server no longer knows (server already stopped)."""
    with contextlib.suppress(grpc.aio.AioRpcError):
        await stub.CloseEpisode(pb.CloseEpisodeRequest(episode_id=episode_id), timeout=RPC_TIMEOUT)


async def step(
    stub: Stub, episode_id: str, action: pb.Action, turn: int = 0
) -> pb.StepEpisodeResponse:
    """One StepEpisode."""
    request = pb.StepEpisodeRequest(episode_id=episode_id, action=action, turn=turn)
    response: pb.StepEpisodeResponse = await stub.StepEpisode(request, timeout=RPC_TIMEOUT)
    return response


async def trajectory(stub: Stub, episode_id: str) -> pb.Trajectory:
    """The episode's trajectory via GetTrajectory."""
    request = pb.GetTrajectoryRequest(episode_id=episode_id)
    response = await stub.GetTrajectory(request, timeout=RPC_TIMEOUT)
    return response.trajectory


def conversation(trajectory_: pb.Trajectory) -> list[pb.Message]:
    """The whole message list of a trajectory page: the opening messages, then each turn's
    action message and observations (each message travels once)."""
    out = list(trajectory_.messages)
    for turn in trajectory_.turns:
        out.append(turn.action.message)
        out.extend(turn.observations)
    return out


async def attempt(call_: Awaitable[Any]) -> tuple[Any, grpc.aio.AioRpcError | None]:
    """Await an RPC that may fail: (response, None) or (None, its error)."""
    try:
        return await call_, None
    except grpc.aio.AioRpcError as exc:
        return None, exc


async def rpc_error(call_: Awaitable[Any]) -> grpc.aio.AioRpcError:
    """Await an RPC that must fail and return its error."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call_
    return info.value


async def expect_error(
    call_: Awaitable[Any], code: grpc.StatusCode, *fragments: str
) -> grpc.aio.AioRpcError:
    """Await an RPC that must fail with ``code``; its details must contain every fragment."""
    error = await rpc_error(call_)
    assert error.code() == code, f"expected {code.name}, got {error.code().name}: {error.details()}"
    details = error.details() or ""
    for fragment in fragments:
        assert fragment in details, f"{fragment!r} not in the details {details!r}"
    assert "Traceback" not in details
    return error


def episode_containers(client: docker.DockerClient, episode_id: str) -> list[str]:
    """Names of the containers labelled with ``episode_id`` (any owner)."""
    found = client.containers.list(
        all=True, filters={"label": [f"{labels.MANAGED}=1", f"{labels.EPISODE}={episode_id}"]}
    )
    return [c.name for c in found]


__all__ = [
    "BROKEN",
    "ENVIRONMENTS",
    "RPC_TIMEOUT",
    "TOY",
    "assistant",
    "attempt",
    "bash",
    "call",
    "channel_fixture",
    "close_quietly",
    "connected",
    "conversation",
    "episode_containers",
    "expect_error",
    "leftover_containers",
    "open_episode",
    "raw",
    "rpc_error",
    "running_server",
    "server_fixture",
    "settings",
    "small_server_fixture",
    "small_stub_fixture",
    "start_request",
    "step",
    "stub_fixture",
    "trajectory",
]
