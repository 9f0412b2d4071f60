"""Soak: hundreds of episodes, good and hostile, through a real server process; afterwards no
container, no stray process, and the server's memory back near where it started."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import docker
import grpc
import pytest
from conftest import leftover_containers, wait_until_gone

from runtime.v1 import runtime_pb2 as pb
from runtime.v1 import runtime_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent
TOY = str(ROOT / "tests" / "environments" / "toy")

ACTIONS = [
    ("bash", {"command": "echo ok"}),
    ("python", {"code": "print(sum(range(100)))"}),
    ("write_file", {"path": "a/b.txt", "content": "hello"}),
    ("read_file", {"path": "a/b.txt"}),
    ("bash", {"command": "head -c 300000 /dev/zero | tr '\\0' x"}),
    ("bash", {"command": "sleep 30"}),
    ("bash", {"command": ":(){ :|:& };:"}),
    ("python", {"code": "x = bytearray(700 * 1024 * 1024)"}),
    ("bash", {"command": "setsid nohup sleep 1000 >/dev/null 2>&1 &"}),
    ("read_file", {"path": "../../etc/shadow"}),
    ("nonexistent_tool", {}),
    ("bash", "{not json"),
    ("submit", {"answer": "42"}),
]


def rss_kib(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def children_of(pid: int) -> list[int]:
    """Pids whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_bytes()
                if int(stat[stat.rfind(b")") + 2 :].split()[1]) == pid:
                    found.append(int(entry))
    return found


@contextlib.asynccontextmanager
async def server_process(name: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`python -m runtime serve` as a child process; stopped (by its own pid) on exit."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runtime", "serve", "--port", "0",
        "--instance-name", name, "--environments", json.dumps([TOY]),
        "--max-live-episodes", "64", "--log-level", "WARNING",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert "listening on" in line, line
        yield proc, line.rsplit(" ", 1)[-1].strip()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def one_episode(stub: pb_grpc.EpisodeServiceStub, rng: random.Random) -> None:
    started = await stub.StartEpisode(
        pb.StartEpisodeRequest(
            environment_id="toy",
            example_index=0,
            limits=pb.EpisodeLimits(call_timeout_seconds=1.5, max_turns=4),
        ),
        timeout=60,
    )
    try:
        for turn in range(1, 5):
            name, args = rng.choice(ACTIONS)
            arguments = args if isinstance(args, str) else json.dumps(args)
            call = pb.ToolCall(id=f"c{turn}", name=name, arguments=arguments)
            action = pb.Action(message=pb.Message(role="assistant", tool_calls=[call]))
            step = await stub.StepEpisode(
                pb.StepEpisodeRequest(episode_id=started.episode_id, action=action, turn=turn),
                timeout=60,
            )
            assert len(step.observations) == 1
            if step.done:
                break
        await stub.ScoreEpisode(pb.ScoreEpisodeRequest(episode_id=started.episode_id), timeout=60)
    finally:
        await stub.CloseEpisode(pb.CloseEpisodeRequest(episode_id=started.episode_id), timeout=60)


@pytest.mark.soak
@pytest.mark.slow
async def test_soak_mixed_episodes(
    owner: str, docker_client: docker.DockerClient, request: pytest.FixtureRequest
) -> None:
    total: int = request.config.getoption("--soak-episodes")
    name = f"{owner}-soak"
    rng = random.Random(1234)
    async with server_process(name) as (proc, address), grpc.aio.insecure_channel(address) as ch:
        stub = pb_grpc.EpisodeServiceStub(ch)
        await asyncio.gather(*(one_episode(stub, rng) for _ in range(8)))  # warm-up
        baseline = rss_kib(proc.pid)
        gate = asyncio.Semaphore(12)

        async def bounded() -> None:
            async with gate:
                await one_episode(stub, rng)

        await asyncio.gather(*(bounded() for _ in range(total)))
        assert await wait_until_gone(docker_client, name) == []
        assert children_of(proc.pid) == []
        grown = rss_kib(proc.pid) - baseline
        assert grown < 64 * 1024, f"server RSS grew by {grown} KiB over {total} episodes"
        listed = await stub.ListEnvironments(pb.ListEnvironmentsRequest(), timeout=10)
        assert [e.id for e in listed.environments] == ["toy"]
    assert proc.returncode == 0
    assert leftover_containers(docker_client, name) == []
