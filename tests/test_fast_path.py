"""The fast path: persistent sessions, the warm pool, the agent channel's defences.

Real servers on loopback ports and real sandboxes; no mocks.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct

import docker
import grpc
import pytest
from conftest import leftover_containers, sandbox_spec, wait_until_gone
from grpc_fixtures import (
    RPC_TIMEOUT,
    assistant,
    bash,
    call,
    close_quietly,
    connected,
    open_episode,
    running_server,
    start_request,
    step,
)

from runtime.errors import ResourceExhaustedError, SandboxError
from runtime.sandbox.channel import AgentChannel
from runtime.sandbox.docker_backend import DockerBackend
from runtime.sandbox.pool import SandboxPool
from runtime.v1 import runtime_pb2 as pb


def python(code: str, call_id: str) -> pb.ToolCall:
    """A `python` tool call."""
    return call("python", {"code": code}, call_id)


async def test_bash_session_keeps_cwd_variables_and_jobs(owner: str) -> None:
    async with (
        running_server(f"{owner}-sess") as server,
        connected(server) as stub,
        open_episode(stub, params={"max_turns": 10}) as ep,
    ):
        await step(stub, ep.episode_id, assistant(bash("mkdir -p d && cd d", "c1")), 1)
        await step(stub, ep.episode_id, assistant(bash("export SECRET=s3", "c2")), 2)
        await step(stub, ep.episode_id, assistant(bash("sleep 300 &", "c3")), 3)
        out = await step(
            stub, ep.episode_id, assistant(bash("pwd; echo $SECRET; jobs | wc -l", "c4")), 4
        )
        assert out.observations[0].content == "/work/d\ns3\n1"


async def test_python_session_keeps_variables_across_turns(owner: str) -> None:
    async with (
        running_server(f"{owner}-py") as server,
        connected(server) as stub,
        open_episode(stub, params={"max_turns": 10}) as ep,
    ):
        await step(stub, ep.episode_id, assistant(python("x = 6 * 7", "c1")), 1)
        await step(stub, ep.episode_id, assistant(bash("echo unrelated", "c2")), 2)
        out = await step(stub, ep.episode_id, assistant(python("print(x)", "c3")), 3)
        assert out.observations[0].content == "42"
        echoed = await step(stub, ep.episode_id, assistant(python("x + 1", "c4")), 4)
        assert echoed.observations[0].content == "43"


async def test_timed_out_session_call_kills_its_children_and_the_next_call_works(
    owner: str,
) -> None:
    async with running_server(f"{owner}-to") as server, connected(server) as stub:
        limits = pb.EpisodeLimits(call_timeout_seconds=1)
        async with open_episode(stub, params={"max_turns": 10}, limits=limits) as ep:
            out = await step(
                stub,
                ep.episode_id,
                assistant(bash("sleep 200 & (sleep 300 &) ; sleep 100", "c1")),
                1,
            )
            text = out.observations[0].content
            assert out.calls[0].timed_out
            assert "timed out after 1 s" in text
            assert "the session was restarted" in text
            after = await step(
                stub, ep.episode_id, assistant(bash("ps -eo comm= | grep -c sleep", "c2")), 2
            )
            assert after.observations[0].content.startswith("0")
            assert not after.calls[0].timed_out
            py = await step(
                stub, ep.episode_id, assistant(python("import time; time.sleep(30)", "c3")), 3
            )
            assert py.calls[0].timed_out
            again = await step(stub, ep.episode_id, assistant(python("print('alive')", "c4")), 4)
            assert again.observations[0].content == "alive"


async def test_two_episodes_never_share_session_state(owner: str) -> None:
    async with (
        running_server(f"{owner}-iso") as server,
        connected(server) as stub,
        open_episode(stub) as a,
        open_episode(stub) as b,
    ):
        await step(stub, a.episode_id, assistant(python("token = 'only-a'", "c1")), 1)
        await step(stub, a.episode_id, assistant(bash("export MARK=a; cd /tmp", "c2")), 2)
        seen = await step(
            stub,
            b.episode_id,
            assistant(
                python("print(globals().get('token'))", "c1"),
                bash("echo ${MARK:-unset}; pwd", "c2"),
            ),
            1,
        )
        assert [m.content for m in seen.observations] == ["None", "unset\n/work"]


async def test_killed_sandbox_yields_a_tool_error_and_a_clean_end(
    owner: str, docker_client: docker.DockerClient
) -> None:
    name = f"{owner}-kill"
    async with (
        running_server(name) as server,
        connected(server) as stub,
        open_episode(stub) as ep,
    ):
        hostname = await step(stub, ep.episode_id, assistant(bash("hostname", "c1")), 1)
        container = docker_client.containers.get(hostname.observations[0].content.strip())
        await asyncio.to_thread(container.kill)
        out = await step(stub, ep.episode_id, assistant(bash("echo hi", "c2")), 2)
        assert out.done
        assert out.calls[0].error == "sandbox_error"
        assert out.observations[0].content.startswith("sandbox error")
        scored = await stub.ScoreEpisode(
            pb.ScoreEpisodeRequest(episode_id=ep.episode_id, include_trajectory=True),
            timeout=RPC_TIMEOUT,
        )
        assert scored.trajectory.status == "errored"
        listed = await stub.ListEnvironments(pb.ListEnvironmentsRequest(), timeout=RPC_TIMEOUT)
        assert listed.environments
        assert await wait_until_gone(docker_client, name) == []


async def test_pool_never_hands_one_container_to_two_episodes(
    owner: str, docker_client: docker.DockerClient
) -> None:
    name = f"{owner}-pool"
    async with running_server(name, pool_size=4) as server, connected(server) as stub:
        for _ in range(100):  # let the pool fill before the burst
            if server.pool.ready_count(sandbox_spec()) >= 4:
                break
            await asyncio.sleep(0.1)
        starts = await asyncio.gather(
            *(stub.StartEpisode(start_request(), timeout=RPC_TIMEOUT) for _ in range(12))
        )
        try:
            hosts = await asyncio.gather(
                *(step(stub, s.episode_id, assistant(bash("hostname", "c1")), 1) for s in starts)
            )
            names = [h.observations[0].content.strip() for h in hosts]
            assert len(set(names)) == 12
        finally:
            await asyncio.gather(*(close_quietly(stub, s.episode_id) for s in starts))
    assert await wait_until_gone(docker_client, name) == []


async def test_pooled_containers_are_removed_at_shutdown(
    owner: str, docker_client: docker.DockerClient
) -> None:
    name = f"{owner}-pooldown"
    async with running_server(name, pool_size=3) as server:
        for _ in range(150):
            if len(leftover_containers(docker_client, name)) >= 3:
                break
            await asyncio.sleep(0.1)
        assert len(leftover_containers(docker_client, name)) >= 3
        assert server.pool.live_count >= 3
    assert await wait_until_gone(docker_client, name) == []


async def test_live_sandbox_cap_answers_resource_exhausted_at_once(owner: str) -> None:
    async with (
        running_server(f"{owner}-cap", max_live_sandboxes=1) as server,
        connected(server) as stub,
        open_episode(stub),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.StartEpisode(start_request(), timeout=RPC_TIMEOUT)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "live sandboxes" in (info.value.details() or "")


async def test_pool_respects_the_cap_when_creating_cold(owner: str) -> None:
    backend = DockerBackend(owner=f"{owner}-poolcap", boot_id="t")
    pool = SandboxPool(backend, size=0, max_live=1)
    try:
        first = await pool.create(sandbox_spec(), episode_id="e1")
        with pytest.raises(ResourceExhaustedError):
            await pool.create(sandbox_spec(), episode_id="e2")
        await first.close()
        second = await pool.create(sandbox_spec(), episode_id="e3")
        await second.close()
    finally:
        await pool.close()


async def test_tool_processes_cannot_write_into_the_agent_channel(owner: str) -> None:
    async with (
        running_server(f"{owner}-forge") as server,
        connected(server) as stub,
        open_episode(stub) as ep,
    ):
        forged = json.dumps({"id": 1, "ok": True, "stdout": "forged"})
        out = await step(
            stub,
            ep.episode_id,
            assistant(bash(f"printf '%s' '{forged}' > /proc/1/fd/1; echo rc=$?", "c1")),
            1,
        )
        assert "rc=1" in out.observations[0].content
        after = await step(stub, ep.episode_id, assistant(bash("echo fine", "c2")), 2)
        assert after.observations[0].content == "fine"


async def _channel_fed(raw: bytes) -> tuple[AgentChannel, str]:
    """An agent channel whose 'sandbox' side sends ``raw`` after the ready frame."""
    ours, theirs = socket.socketpair()
    ready = json.dumps({"id": 0, "op": "ready"}).encode()
    frame = struct.pack(">I", len(ready)) + ready
    theirs.sendall(struct.pack(">BxxxI", 1, len(frame)) + frame)
    channel = await AgentChannel.open(ours, ready_timeout_s=5)
    pending = asyncio.create_task(channel.request("ping", {}, 5))
    await asyncio.sleep(0.05)
    theirs.sendall(raw)
    theirs.close()
    with pytest.raises(SandboxError) as info:
        await pending
    return channel, str(info.value)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (struct.pack(">BxxxI", 1, 64 * 1024 * 1024), "malformed stream header"),
        (struct.pack(">BxxxI", 7, 4) + b"abcd", "malformed stream header"),
        (struct.pack(">BxxxI", 1, 4) + struct.pack(">I", 2**31), "oversized frame"),
        (struct.pack(">BxxxI", 1, 9) + struct.pack(">I", 5) + b"{nope", "not JSON"),
        (struct.pack(">BxxxI", 1, 7) + struct.pack(">I", 3) + b"[1]", "without a request id"),
        (os.urandom(3), "exited"),
    ],
)
async def test_forged_or_oversized_frames_break_the_channel_not_the_server(
    raw: bytes, reason: str
) -> None:
    channel, message = await _channel_fed(raw)
    assert reason in message
    assert channel.broken is not None
    with pytest.raises(SandboxError):
        await channel.request("ping", {}, 1)
    await channel.close()
