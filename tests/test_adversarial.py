"""Adversarial suite: hostile tool calls, end to end through gRPC, against real Docker sandboxes.

Every test plays what a hostile or broken model might send and asserts two things: what the model
reads (the tool messages of the step), and that nothing outside that episode's sandbox was
touched. The second half is checked after every test by `untouched`: a bystander episode opened
for the whole module still answers a bash call and still has its marker file, the server still
answers, only the bystander's container is left of this server's, a container of another owner
still runs unrestarted, and the host canaries (an environment variable of the server process, a
file on the host) are unchanged. Tests add their own host checks (listeners that must never
accept, the server's resident memory, the container's writable layer, host processes).

One server (instance ``<owner>-adv``) serves the module; its messages may be 32 MiB, so the
10 MB tool argument reaches the engine instead of bouncing off gRPC's default 4 MiB.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.models.containers
import grpc
import pytest
from conftest import SANDBOX_IMAGE, leftover_containers, wait_until_gone
from grpc_fixtures import (
    RPC_TIMEOUT,
    attempt,
    bash,
    call,
    close_quietly,
    episode_containers,
    raw,
    running_server,
    start_request,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from runtime.sandbox import labels
from runtime.server.app import RuntimeServer
from runtime.v1 import runtime_pb2 as pb
from runtime.v1 import runtime_pb2_grpc as pb_grpc

Stub = pb_grpc.EpisodeServiceStub
MIB = 1024 * 1024
CAP = 65536
MAX_CALLS = 64
"""The engine's default cap on tool calls run per turn."""
OUTSIDE = "error: path is outside the work directory /work"
RESTARTED = (
    "[the session was restarted: the next call starts fresh, without the previous working "
    "directory, variables or background jobs]"
)
OOM = "[out of memory: a process exceeded the sandbox's 512 MiB memory limit and was killed]"
TOOLS_ONLY_PROCESSES = ["bash", "python3"]
"""What a quiet sandbox runs after a bash call: the agent (python3) and the bash session."""
WITH_PYTHON_SESSION = ["bash", "python3", "python3"]
"""The same with the persistent Python session running too."""


PROCESS_LIMIT = (
    "[process limit: the sandbox's limit of 256 processes was reached and held, so every "
    "process the tools had started was killed]"
)


def timed_out(seconds: float) -> str:
    return f"[timed out after {seconds:g} s: the command and every process it started were killed]"


# --- fixtures: the server, the bystander, the foreign container, the canaries --------------------


@dataclass(frozen=True)
class Canaries:
    """Secrets the sandboxes must never see: a variable of the server process, a host file."""

    env_name: str
    env_value: str
    file: Path
    file_text: str

    def assert_unchanged(self) -> None:
        assert self.file.read_text() == self.file_text, "a sandbox changed the host canary file"
        assert os.environ.get(self.env_name) == self.env_value


@pytest.fixture(scope="module")
def canaries(tmp_path_factory: pytest.TempPathFactory) -> Canaries:
    folder = tmp_path_factory.mktemp("adv-host")
    file = folder / f"host-canary-{secrets.token_hex(4)}.txt"
    text = f"host-file-secret-{secrets.token_hex(8)}\n"
    file.write_text(text)
    return Canaries(
        env_name="EPISODE_RUNTIME_ADV_CANARY",
        env_value=f"host-env-secret-{secrets.token_hex(8)}",
        file=file,
        file_text=text,
    )


@pytest.fixture(scope="module")
def instance(owner: str) -> str:
    """The adversarial server's instance name (its containers' owner label)."""
    return f"{owner}-adv"


@dataclass(frozen=True)
class Foreign:
    """A container of another owner on the same daemon; nothing here may touch it."""

    container: docker.models.containers.Container
    started_at: str

    def assert_untouched(self) -> None:
        self.container.reload()
        state = self.container.attrs["State"]
        assert state["Status"] == "running", state
        assert state["StartedAt"] == self.started_at, "the foreign container was restarted"
        assert self.container.attrs["RestartCount"] == 0


@pytest.fixture(scope="module")
def foreign(owner: str, docker_client: docker.DockerClient) -> Iterator[Foreign]:
    container = docker_client.containers.run(
        SANDBOX_IMAGE,
        ["sleep", "86400"],
        detach=True,
        labels=labels.container_labels(f"{owner}-adv-foreign", "foreign", "foreign-episode"),
        network_mode="none",
        read_only=True,
        user="65534:65534",
        cap_drop=["ALL"],
    )
    try:
        container.reload()
        yield Foreign(container, container.attrs["State"]["StartedAt"])
    finally:
        container.remove(force=True)


@pytest.fixture(scope="module")
async def adv_server(
    instance: str, canaries: Canaries, foreign: Foreign, docker_client: docker.DockerClient
) -> AsyncIterator[RuntimeServer]:
    """The module's server, started with the env canary in its own environment."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(canaries.env_name, canaries.env_value)
        async with running_server(
            instance, max_message_bytes=32 * MIB, max_live_episodes=16
        ) as server:
            yield server
    assert await asyncio.to_thread(leftover_containers, docker_client, instance) == []


@pytest.fixture(scope="module")
async def adv_channel(adv_server: RuntimeServer) -> AsyncIterator[grpc.aio.Channel]:
    """A channel that accepts big answers (64 calls of 64 KiB, 10 MB echoes)."""
    options = [
        ("grpc.max_receive_message_length", 64 * MIB),
        ("grpc.max_send_message_length", 64 * MIB),
    ]
    async with grpc.aio.insecure_channel(adv_server.address, options=options) as channel:
        await channel.channel_ready()
        yield channel


@pytest.fixture(scope="module")
def adv(adv_channel: grpc.aio.Channel) -> Stub:
    return pb_grpc.EpisodeServiceStub(adv_channel)


@dataclass
class Episode:
    """One episode driven by the test: numbered turns, call ids unique per episode."""

    stub: Stub
    episode_id: str
    turns: int = 0

    async def act(self, *calls: pb.ToolCall) -> pb.StepEpisodeResponse:
        """One turn with ``calls``; every observation must answer its call, in order."""
        request = pb.StepEpisodeRequest(
            episode_id=self.episode_id,
            action=pb.Action(message=pb.Message(role="assistant", tool_calls=list(calls))),
            turn=self.turns + 1,
        )
        response: pb.StepEpisodeResponse = await self.stub.StepEpisode(request, timeout=RPC_TIMEOUT)
        self.turns += 1
        assert response.turn == self.turns
        assert [o.tool_call_id for o in response.observations] == [c.id for c in calls]
        assert [c.tool_call_id for c in response.calls] == [c.id for c in calls]
        assert all(o.role == "tool" for o in response.observations)
        return response

    def next_id(self, index: int = 0) -> str:
        return f"t{self.turns + 1}-{index}"

    async def tool(
        self, name: str, arguments: dict[str, Any] | str
    ) -> tuple[str, pb.CallInfo, pb.StepEpisodeResponse]:
        """One call alone in a turn: the text the model reads, its metadata, the response."""
        response = await self.act(call(name, arguments, self.next_id()))
        return response.observations[0].content, response.calls[0], response

    async def sh(self, command: str) -> str:
        """A bash call that must not end the episode; the text the model reads."""
        text, _, response = await self.tool("bash", {"command": command})
        assert not response.done, text
        return text

    async def py(self, code: str) -> str:
        text, _, response = await self.tool("python", {"code": code})
        assert not response.done, text
        return text

    async def processes(self) -> list[tuple[int, int, str]]:
        """(pid, ppid, command line) of the sandbox's live processes, zombies and ps excluded."""
        text = await self.sh("ps -eo pid=,ppid=,stat=,args=")
        found = []
        for line in text.split("\n[stderr]\n")[0].splitlines():
            fields = line.split(None, 3)
            if len(fields) < 4 or not fields[0].isdigit():
                continue  # not a row of the listing
            pid, ppid, stat, args = fields
            if not stat.startswith("Z") and not args.startswith("ps -eo"):
                found.append((int(pid), int(ppid), args))
        return found

    async def names(self) -> list[str]:
        """Sorted program names of the live processes (see `processes`)."""
        return sorted(Path(args.split()[0]).name for _, _, args in await self.processes())

    async def wait_quiet(
        self, timeout_s: float = 10.0, expected: list[str] = TOOLS_ONLY_PROCESSES
    ) -> list[str]:
        """Poll until only the agent and the sessions run (``expected``); the last listing."""
        names: list[str] = []
        until = time.monotonic() + timeout_s
        while time.monotonic() < until:
            names = await self.names()
            if names == expected:
                break
            await asyncio.sleep(0.3)
        return names


@contextlib.asynccontextmanager
async def hostile(
    stub: Stub,
    docker_client: docker.DockerClient,
    *,
    call_timeout_s: float = 5.0,
    **limits: Any,
) -> AsyncIterator[Episode]:
    """A fresh episode of its own; closed at the end, and then its container must be gone."""
    request = start_request(
        "toy",
        params={"max_turns": 200},
        limits=pb.EpisodeLimits(call_timeout_seconds=call_timeout_s, **limits),
    )
    started = await stub.StartEpisode(request, timeout=RPC_TIMEOUT)
    episode = Episode(stub, started.episode_id)
    try:
        yield episode
    finally:
        await close_quietly(stub, started.episode_id)
    assert await wait_for_episode_gone(docker_client, started.episode_id) == []


async def wait_for_episode_gone(
    client: docker.DockerClient, episode_id: str, timeout_s: float = 15.0
) -> list[str]:
    left: list[str] = []
    until = time.monotonic() + timeout_s
    while time.monotonic() < until:
        left = await asyncio.to_thread(episode_containers, client, episode_id)
        if not left:
            break
        await asyncio.sleep(0.1)
    return left


@dataclass
class Bystander(Episode):
    """The episode that lives through the whole module, next to every hostile one."""

    marker: str = ""


async def assert_bystander_ok(bystander: Bystander) -> None:
    """The bystander still computes in its sandbox and its marker file is intact."""
    nonce = secrets.token_hex(4)
    text = await bystander.sh(f"cat bystander/marker.txt; echo; echo {nonce} $((6 * 7))")
    assert text == f"{bystander.marker}\n{nonce} 42"
    content, info, _ = await bystander.tool("read_file", {"path": "bystander/marker.txt"})
    assert content == bystander.marker
    assert not info.error


@pytest.fixture(scope="module")
async def bystander(
    adv: Stub, instance: str, docker_client: docker.DockerClient
) -> AsyncIterator[Bystander]:
    request = start_request(
        "toy", params={"max_turns": 1000}, limits=pb.EpisodeLimits(call_timeout_seconds=10)
    )
    started = await adv.StartEpisode(request, timeout=RPC_TIMEOUT)
    by = Bystander(adv, started.episode_id, marker=f"bystander-{secrets.token_hex(12)}")
    try:
        content, _, _ = await by.tool(
            "write_file", {"path": "bystander/marker.txt", "content": by.marker}
        )
        assert content == f"wrote {len(by.marker)} bytes to bystander/marker.txt"
        await assert_bystander_ok(by)
        yield by
    finally:
        await close_quietly(adv, by.episode_id)
    # Every hostile episode was closed and the bystander too: nothing of this server is left,
    # while it still runs (so this is not the shutdown sweep doing the work).
    assert await wait_until_gone(docker_client, instance) == []


async def assert_server_serves(stub: Stub, channel: grpc.aio.Channel) -> None:
    """The server answers RPCs and says it is serving."""
    listed = await stub.ListEnvironments(pb.ListEnvironmentsRequest(), timeout=RPC_TIMEOUT)
    assert "toy" in [e.id for e in listed.environments]
    health = health_pb2_grpc.HealthStub(channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=RPC_TIMEOUT)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(autouse=True)
async def untouched(
    adv_server: RuntimeServer,
    adv: Stub,
    adv_channel: grpc.aio.Channel,
    bystander: Bystander,
    foreign: Foreign,
    canaries: Canaries,
    instance: str,
    docker_client: docker.DockerClient,
) -> AsyncIterator[None]:
    """After each hostile test: the bystander, the server, the foreign container and the host
    canaries are as they were, and only the bystander's container is left of this server's."""
    yield
    await assert_bystander_ok(bystander)
    await assert_server_serves(adv, adv_channel)
    assert adv_server.engine.live_count == 1
    mine = await asyncio.to_thread(episode_containers, docker_client, bystander.episode_id)
    assert len(mine) == 1
    left: list[str] = []
    for _ in range(150):
        left = await asyncio.to_thread(leftover_containers, docker_client, instance)
        if left == mine:
            break
        await asyncio.sleep(0.1)
    assert left == mine, "a hostile episode's container outlived its episode"
    await asyncio.to_thread(foreign.assert_untouched)
    canaries.assert_unchanged()


# --- host-side probes ----------------------------------------------------------------------------


def rss_mib(field: str = "VmRSS") -> float:
    """The server's memory (the server runs in this process), from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> bool:
    """Reset VmHWM (Linux: write 5 to clear_refs); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def host_processes(needle: str) -> list[int]:
    """Pids of host processes whose command line contains ``needle`` (sandboxes under runc
    share the host's kernel, so their processes are visible here)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
                if needle.encode() in cmdline:
                    found.append(int(entry))
    return found


async def container_of(client: docker.DockerClient, episode_id: str) -> dict[str, Any]:
    """The Docker list entry of the episode's container, with the size of its writable layer."""
    found = await asyncio.to_thread(
        client.api.containers,
        all=True,
        size=True,
        filters={"label": [f"{labels.MANAGED}=1", f"{labels.EPISODE}={episode_id}"]},
    )
    assert len(found) == 1, found
    entry: dict[str, Any] = found[0]
    return entry


def _bridge_gateway(client: docker.DockerClient) -> str | None:
    """The docker0 bridge's address on this host, if there is one."""
    try:
        configs = client.networks.get("bridge").attrs.get("IPAM", {}).get("Config") or []
    except docker.errors.NotFound:
        return None
    for cfg in configs:
        if cfg.get("Gateway"):
            return str(cfg["Gateway"]).split("/")[0]
        subnet = cfg.get("Subnet", "")
        if subnet and ":" not in subnet:
            return str(next(ipaddress.ip_network(subnet).hosts()))
    return None


# --- fork bomb -----------------------------------------------------------------------------------


_FORK_NOISE = [
    "[stderr]",
    *(
        f"{who}: fork: {retry}Resource temporarily unavailable"
        for who in ("bash", "environment")
        for retry in ("", "retry: ")
    ),
]
"""What a bash fork bomb prints while the pids limit holds it."""


@pytest.mark.slow
async def test_fork_bomb_in_bash(adv: Stub, docker_client: docker.DockerClient) -> None:
    """The classic bomb, held in the call (`; sleep`): the pids limit stops the flood, and the
    agent's watchdog, seeing the tools held at the limit, kills every tool process well before
    the call's timeout; the call says why, and the next call works."""
    async with hostile(adv, docker_client, call_timeout_s=30) as ep:
        text, info, response = await asyncio.wait_for(
            ep.tool("bash", {"command": ":(){ :|:& };:; sleep 60"}), 55
        )  # a hang guard: the watchdog ends the bomb long before the sleep or the timeout
        assert not info.timed_out, text
        assert info.error == "process_limit", text
        assert not response.done
        assert PROCESS_LIMIT in text, text
        assert text.endswith(RESTARTED), text
        # Fork failures may be reported before the notice.
        for line in text.splitlines()[:-3]:  # the last stderr line may be cut by the cap
            assert line.startswith("[output truncated: stderr was ") or any(
                known.startswith(line) for known in _FORK_NOISE
            ), text

        assert await ep.sh("echo next") == "next"
        assert await ep.wait_quiet() == TOOLS_ONLY_PROCESSES
        assert await ep.sh("echo $((1 + 1)); ls / | wc -l | tr -d ' ' | grep -c .") == "2\n1"
        assert (await ep.py("print(6 * 7)")) == "42"


@pytest.mark.slow
@pytest.mark.parametrize(
    "program",
    [
        pytest.param("import os\nwhile True:\n    os.fork()", id="fork-loop"),
        pytest.param(
            "import subprocess\nkids = []\ntry:\n    while True:\n"
            "        kids.append(subprocess.Popen(['sleep', '1000']))\n"
            "except OSError as exc:\n    print('stopped after', len(kids), exc.strerror)",
            id="held-children",
        ),
    ],
)
async def test_fork_bomb_in_python_keeps_the_episode_usable(
    adv: Stub, docker_client: docker.DockerClient, program: str
) -> None:
    async with hostile(adv, docker_client, call_timeout_s=20) as ep:
        bomb, info, response = await ep.tool("python", {"code": program})
        assert not response.done, bomb
        # What the model must read next: an observation, not the end of its episode.
        text, info, response = await ep.tool("python", {"code": "print('next')"})
        assert info.error != "sandbox_error", text
        assert not response.done, text
        for _ in range(3):
            text = await ep.py("print('next')")
            if text == "next":
                break
        assert text == "next"
        # The bash session may have been killed to free processes: it says so, once.
        notice = "[the sandbox had run out of processes"
        bash_text = await ep.sh("echo bash works")
        assert bash_text == "bash works" or (
            bash_text.startswith("bash works\n[stderr]\n" + notice)
        )
        assert await ep.sh("echo bash works") == "bash works"


async def test_fork_in_a_python_cell_leaves_one_interpreter(
    adv: Stub, docker_client: docker.DockerClient
) -> None:
    async with hostile(adv, docker_client) as ep:
        assert await ep.py("import os\nchild = os.fork()") == "(no output)"
        answers = [await ep.py("print(os.getpid())") for _ in range(4)]
        assert not any("__RT_END_" in answer for answer in answers), answers
        assert len(set(answers)) == 1, answers
        await ep.py("x = 5")
        assert [await ep.py("print(x)") for _ in range(3)] == ["5"] * 3


# --- memory bomb ---------------------------------------------------------------------------------


@pytest.mark.slow
async def test_memory_bomb(adv: Stub, docker_client: docker.DockerClient) -> None:
    async with hostile(adv, docker_client, call_timeout_s=20) as ep:
        before = rss_mib()
        text, info, response = await ep.tool("python", {"code": "hog = b'x' * (700 * 1024 * 1024)"})
        assert OOM in text
        assert RESTARTED in text
        assert info.error == "out_of_memory"
        assert not response.done
        assert await ep.py("print('alive')") == "alive"

        text, info, _ = await ep.tool(
            "bash", {"command": "python3 -c \"hog = b'x' * (700 * 1024 * 1024)\"; echo after"}
        )
        assert text.startswith("after\n[stderr]\n")
        assert "Killed" in text
        assert text.endswith(OOM)
        assert info.error == "out_of_memory"

        # A hog that grows slowly in the background of the session is killed as well.
        text = await ep.sh(
            'python3 -c \'import time\nh = []\nwhile True:\n h.append(b"x" * 2**24)\n'
            " time.sleep(0.01)' & sleep 2; echo waited"
        )
        assert text.startswith("waited")
        assert await ep.wait_quiet(expected=WITH_PYTHON_SESSION) == WITH_PYTHON_SESSION
        assert await ep.sh("echo still fine") == "still fine"
        assert rss_mib() - before < 50  # the server's own memory is not what filled up


# --- disk fill -----------------------------------------------------------------------------------

_FILL = (
    'for d in {paths}; do dd if=/dev/zero of="$d/adv-fill" bs=1M 2>&1 '
    "| grep -o 'No space left on device' | sed \"s|^|$d: |\"; done"
)
_READ_ONLY = [
    "/",
    "/etc",
    "/usr",
    "/usr/local/bin",
    "/bin",
    "/var",
    "/var/tmp",
    "/home",
    "/root",
    "/opt",
    "/srv",
    "/run",
    "/sys",
    "/dev",
]


@pytest.mark.slow
async def test_disk_fill_of_every_writable_path(
    adv: Stub, docker_client: docker.DockerClient
) -> None:
    async with hostile(adv, docker_client, call_timeout_s=30) as ep:
        found = await ep.sh(
            "find / \\( -path /proc -o -path /sys \\) -prune -o -type d -writable -print "
            "2>/dev/null; true"
        )
        writable = set(found.split())
        assert {"/work", "/tmp"} <= writable <= {"/work", "/tmp", "/dev/shm", "/dev/mqueue"}
        files = sorted(writable - {"/dev/mqueue"})  # message queues are not files; see below

        text = await ep.sh(_FILL.format(paths=" ".join(files)))
        assert text.splitlines() == [f"{d}: No space left on device" for d in files]
        usage = await ep.sh(f"df --output=pcent {' '.join(files)} | tail -n +2")
        assert usage.split() == ["100%"] * len(files)

        # What the model reads when it then writes through the tools.
        text, info, _ = await ep.tool("write_file", {"path": "more.txt", "content": "y" * 100_000})
        assert text == "error: No space left on device: more.txt"
        assert info.error == "tool_error"
        text = await ep.py("open('/tmp/more.txt', 'w').write('z' * 1_000_000)")
        assert "OSError: [Errno 28] No space left on device" in text
        text = await ep.sh("echo more >> /work/adv-fill")
        assert "No space left on device" in text

        # POSIX message queues are capped by RLIMIT_MSGQUEUE (a few hundred KiB).
        text = await ep.sh(
            "for i in $(seq 200); do : 2>/dev/null > /dev/mqueue/adv$i || "
            '{ echo "refused at $i"; break; }; done'
        )
        assert text.startswith("refused at ")
        assert int(text.split()[-1]) <= 64

        # Everything else is read-only, or not ours.
        script = "; ".join(
            f"touch {p}/adv-x 2>&1 | sed 's/.*: //'"
            for p in _READ_ONLY  # prints the reason only
        )
        reasons = (await ep.sh(script)).splitlines()
        assert len(reasons) == len(_READ_ONLY), reasons
        assert set(reasons) <= {"Read-only file system", "Permission denied"}, reasons
        assert reasons[0] == "Read-only file system"

        # Not a byte of it reached the host's disk: the container's writable layer is empty.
        entry = await container_of(docker_client, ep.episode_id)
        assert entry.get("SizeRw", 0) == 0, entry.get("SizeRw")

        # Freeing the space gives the sandbox back.
        rm = f"rm -f {' '.join(d + '/adv-fill' for d in files)} /tmp/more.txt /dev/mqueue/adv*"
        assert await ep.sh(rm + "; echo freed") == "freed"
        text, _, _ = await ep.tool("write_file", {"path": "more.txt", "content": "ok"})
        assert text == "wrote 2 bytes to more.txt"


# --- output floods -------------------------------------------------------------------------------


async def test_100_mb_of_stdout_in_one_call(adv: Stub, docker_client: docker.DockerClient) -> None:
    async with hostile(adv, docker_client, call_timeout_s=30) as ep:
        await ep.sh("true")  # the session is up before measuring
        before = rss_mib()
        peak_resettable = reset_peak_rss()
        text, info, response = await asyncio.wait_for(
            ep.tool("bash", {"command": "head -c 100000000 /dev/zero | tr '\\0' a"}), 120
        )
        assert text == (
            "a" * CAP
            + "\n[output truncated: stdout was 100000000 bytes; only the first 65536 are shown]"
        )
        assert info.output_truncated
        assert info.exit_code == 0
        assert info.error == "output_truncated"
        assert not response.done

        # Both streams at once, from the persistent Python session this time.
        text, info, _ = await ep.tool(
            "python",
            {
                "code": "import sys\nfor _ in range(100):\n"
                "    sys.stdout.write('b' * 1_000_000)\n    sys.stderr.write('c' * 1_000_000)"
            },
        )
        assert text.startswith("b" * CAP + "\n[stderr]\n" + "c" * CAP + "\n")
        assert text.endswith(
            "[output truncated: stdout was 100000000 bytes; only the first 65536 are shown]\n"
            "[output truncated: stderr was 100000000 bytes; only the first 65536 are shown]"
        )
        assert info.output_truncated

        grew = (rss_mib("VmHWM") if peak_resettable else rss_mib()) - before
        assert grew < 50, f"the server's memory grew by {grew:.0f} MiB for 200 MB of output"
        assert await ep.sh("echo after the flood") == "after the flood"


async def test_tool_output_does_not_pile_up_on_the_host_disk(
    adv: Stub, docker_client: docker.DockerClient
) -> None:
    """What the model is shown is not also kept by Docker's log driver on the host's disk."""
    nonce = f"LOGCANARY{secrets.token_hex(6)}"
    async with hostile(adv, docker_client) as ep:
        command = f"echo {nonce}; head -c 60000 /dev/zero | tr '\\0' z"
        for _ in range(2):  # 2 x 32 calls of 60 KB: about 4 MB the model was shown
            response = await ep.act(*[bash(command, ep.next_id(i)) for i in range(32)])
            assert all(o.content.startswith(nonce) for o in response.observations)
        container = await asyncio.to_thread(
            docker_client.containers.get, (await container_of(docker_client, ep.episode_id))["Id"]
        )
        stored = b""
        for _ in range(30):  # the log driver writes asynchronously
            try:
                stored = await asyncio.to_thread(container.logs, stdout=True, stderr=True)
            except docker.errors.APIError:
                stored = b""  # a driver that keeps nothing cannot be read back
                break
            if stored.count(nonce.encode()) >= 64:
                break
            await asyncio.sleep(0.1)
        assert len(stored) < MIB, (
            f"Docker kept {len(stored)} bytes of this episode's tool output on the host "
            f"({stored.count(nonce.encode())} of 64 outputs)"
        )


async def test_binary_and_invalid_utf8_output(
    adv: Stub, docker_client: docker.DockerClient
) -> None:
    async with hostile(adv, docker_client) as ep:
        text = await ep.sh(
            "printf 'ok\\xff\\xfe\\x00end\\xc3'; printf 'e\\x80rr\\xed\\xa0\\x80' >&2"
        )
        assert text == "ok\ufffd\ufffd\x00end\ufffd\n[stderr]\ne\ufffdrr\ufffd\ufffd\ufffd"

        text, info, _ = await ep.tool("bash", {"command": "head -c 1000000 /dev/urandom"})
        assert info.output_truncated
        assert text.endswith(
            "[output truncated: stdout was 1000000 bytes; only the first 65536 are shown]"
        )
        assert "\ufffd" in text
        text.encode("utf-8")  # strict: what the model reads is valid text

        text = await ep.py("import sys\nsys.stdout.buffer.write(bytes(range(256)) * 4)")
        assert text.startswith("".join(chr(i) for i in range(128)))
        assert "\ufffd" in text

        # The frames of the agent itself cannot be forged or read: its stdout, stdin and
        # environment are out of reach, and signals to it (PID 1) are ignored.
        text = await ep.sh(
            'printf \'\\x00\\x00\\x00\\x10{"id":1,"ok":1}\' > /proc/1/fd/1; '
            "cat /proc/1/fd/0 /proc/1/environ; "
            "kill -9 1; kill -TERM 1; kill -INT 1; kill -HUP 1; kill -PIPE 1; echo survived"
        )
        assert text.startswith("survived\n[stderr]\n")
        assert "/proc/1/fd/1: Permission denied" in text
        assert "/proc/1/environ: Permission denied" in text
        assert await ep.sh("echo still answering") == "still answering"

        trajectory = await adv.GetTrajectory(
            pb.GetTrajectoryRequest(episode_id=ep.episode_id), timeout=RPC_TIMEOUT
        )
        assert len(trajectory.trajectory.turns) == ep.turns


# --- infinite loop -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tool", "code", "flood"),
    [
        pytest.param("bash", "while :; do :; done", False, id="bash-busy"),
        pytest.param(
            "bash",
            "trap '' TERM INT HUP QUIT; while :; do sleep 0.2 & wait; done",
            False,
            id="bash-traps-signals",
        ),
        pytest.param("bash", "yes", True, id="bash-yes"),
        pytest.param("python", "while True:\n    pass", False, id="python-busy"),
    ],
)
async def test_infinite_loop_is_timed_out_and_killed(
    adv: Stub, docker_client: docker.DockerClient, tool: str, code: str, flood: bool
) -> None:
    arg = "command" if tool == "bash" else "code"
    async with hostile(adv, docker_client, call_timeout_s=2) as ep:
        # wait_for is a hang guard: the loop must be killed at its 2 s timeout.
        text, info, response = await asyncio.wait_for(ep.tool(tool, {arg: code}), 60)
        assert info.timed_out
        assert info.error == "timeout"
        assert not response.done
        assert text.endswith(timed_out(2) + "\n" + RESTARTED)
        if flood:
            assert "[output truncated: stdout was " in text
        else:
            assert text == timed_out(2) + "\n" + RESTARTED
        assert await ep.wait_quiet(timeout_s=3) == TOOLS_ONLY_PROCESSES
        assert await ep.py("print('next')") == "next"


# --- daemonized grandchildren --------------------------------------------------------------------


async def test_daemonized_grandchild_dies_at_the_latest_at_episode_end(
    adv: Stub, docker_client: docker.DockerClient
) -> None:
    """No call waits for a daemon it started, and every daemon dies with the call that made it:
    orphaned ones, and those still parented by the persistent bash session but run in another
    process session (``setsid cmd &``); the shell then reports its killed job. Whatever might
    still run at the end dies with the episode's container, as seen from the host."""
    base = 900_000 + secrets.randbelow(90_000) * 10
    direct, double, from_python, at_end = (str(base + i) for i in range(4))
    async with hostile(adv, docker_client) as ep:
        # No call waits for its daemon: a call that did would end "timed out", not as below.
        # A background job that leaves the session: still the shell's child.
        assert await ep.sh(f"setsid nohup sleep {direct} >/dev/null 2>&1 &") == "(no output)"
        # Double fork: the daemon is orphaned to the agent (PID 1) at once.
        text = await ep.sh(f"(setsid nohup sleep {double} >/dev/null 2>&1 &); echo spawned")
        # The shell may report the job killed after the first call here already.
        assert text.splitlines()[0] == "spawned", text
        code = (
            "import subprocess\n"
            f"_ = subprocess.run('setsid nohup sleep {from_python} &', shell=True)"
        )
        assert await ep.py(code) == "(no output)"

        # The shell reports the job it lost, once, on one of the calls after.
        notice = text + await ep.sh("echo $$")
        assert notice.count("Killed") == 1, notice
        assert f"sleep {direct}" in notice
        seen = {args: ppid for _, ppid, args in await ep.processes()}
        # Orphans and escaped jobs alike are killed when the call that made them ends.
        assert f"sleep {double}" not in seen
        assert f"sleep {from_python}" not in seen
        assert f"sleep {direct}" not in seen
        assert await ep.wait_quiet(expected=WITH_PYTHON_SESSION) == WITH_PYTHON_SESSION

        # And whatever still runs at the end of the episode goes with its container.
        await ep.sh(f"setsid nohup sleep {at_end} >/dev/null 2>&1 &")
        visible = False
        for _ in range(20):
            if host_processes(f"sleep {at_end}"):
                visible = True  # runc: the sandbox's processes show in the host's /proc
                break
            await asyncio.sleep(0.1)
    # (`hostile` has closed the episode and seen its container removed.)
    if visible:
        for _ in range(50):
            if not host_processes(f"sleep {at_end}"):
                break
            await asyncio.sleep(0.1)
        assert host_processes(f"sleep {at_end}") == []
    for pid in (direct, double, from_python):
        assert host_processes(f"sleep {pid}") == []


# --- network egress ------------------------------------------------------------------------------

_CONNECT = """
import json, socket, sys
out = {}
for host, port in json.loads(sys.argv[1]):
    try:
        socket.create_connection((host, port), timeout=2).close()
        out[f"{host}:{port}"] = "connected"
    except OSError as exc:
        out[f"{host}:{port}"] = exc.strerror or type(exc).__name__
    try:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.sendto(b"leak", (host, port))
        out[f"udp {host}:{port}"] = "sent"
    except OSError as exc:
        out[f"udp {host}:{port}"] = exc.strerror or type(exc).__name__
try:
    socket.getaddrinfo("example.com", 80)
    out["dns"] = "resolved"
except OSError as exc:
    out["dns"] = str(exc)
print(json.dumps(out))
"""


async def test_network_egress_to_host_listeners(
    adv: Stub, adv_server: RuntimeServer, docker_client: docker.DockerClient
) -> None:
    addresses = ["127.0.0.1"]
    gateway = await asyncio.to_thread(_bridge_gateway, docker_client)
    if gateway:
        addresses.append(gateway)
    listeners: list[socket.socket] = []
    datagrams: list[socket.socket] = []
    targets: list[tuple[str, int]] = []
    try:
        for address in addresses:
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind((address, 0))
            except OSError:
                tcp.close()
                continue  # the bridge address is not on this host
            tcp.listen(8)
            tcp.setblocking(False)
            listeners.append(tcp)
            port = tcp.getsockname()[1]
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((address, port))
            udp.setblocking(False)
            datagrams.append(udp)
            targets.append((address, port))
        targets.append(("127.0.0.1", adv_server.port))  # the gRPC server itself

        async with hostile(adv, docker_client, call_timeout_s=20) as ep:
            quoted = json.dumps(targets)
            text = await ep.sh(f"python3 -c '{_CONNECT}' '{quoted}'")
            outcome = json.loads(text)
            assert len(outcome) == 2 * len(targets) + 1, outcome
            assert outcome["dns"] != "resolved"
            for host, port in targets:
                # The sandbox's loopback is its own (refused; a datagram to it goes nowhere);
                # anything else has no route at all.
                if host == "127.0.0.1":
                    assert outcome[f"{host}:{port}"] == "Connection refused", outcome
                else:
                    assert outcome[f"{host}:{port}"] == "Network is unreachable", outcome
                    assert outcome[f"udp {host}:{port}"] == "Network is unreachable", outcome
            host, port = targets[-1]
            text = await ep.sh(f"echo hi > /dev/tcp/{host}/{port} && echo open || echo refused")
            assert text.startswith("refused\n[stderr]\n")
            assert "Connection refused" in text

        for tcp in listeners:  # nothing from inside ever reached a host listener
            with pytest.raises(BlockingIOError):
                tcp.accept()
        for udp in datagrams:
            with pytest.raises(BlockingIOError):
                udp.recvfrom(64)
    finally:
        for sock in listeners + datagrams:
            sock.close()


# --- the host's environment and files ------------------------------------------------------------


async def test_host_environment_and_files_are_invisible(
    adv: Stub, docker_client: docker.DockerClient, canaries: Canaries
) -> None:
    assert os.environ[canaries.env_name] == canaries.env_value  # the server process has it
    async with hostile(adv, docker_client) as ep:
        seen = await ep.sh("env; cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'; true")
        assert "PATH=" in seen
        assert canaries.env_name not in seen
        assert canaries.env_value not in seen
        seen = await ep.py("import os\nprint(dict(os.environ))")
        assert canaries.env_name not in seen
        text = await ep.sh("cat /proc/1/environ")
        assert "Permission denied" in text
        assert canaries.env_value not in text

        text = await ep.sh(f"cat {canaries.file}")
        assert text.endswith("No such file or directory\n[exit code: 1]")
        name = canaries.file.name
        found = await ep.sh(
            f"find / \\( -path /proc -o -path /sys \\) -prune -o -name '{name}' -print "
            "2>/dev/null; ls -d /var/run/docker.sock /run/docker.sock 2>&1 | sed 's/^ls: //'"
        )
        assert canaries.file_text.strip() not in found
        assert str(canaries.file) not in found
        assert found.count("No such file or directory") == 2

        text, _, _ = await ep.tool("read_file", {"path": str(canaries.file)})
        assert text == OUTSIDE


async def test_writes_outside_the_work_dir_fail(
    adv: Stub, docker_client: docker.DockerClient, canaries: Canaries
) -> None:
    async with hostile(adv, docker_client) as ep:
        text = await ep.sh(
            "echo pwned >> /etc/passwd; echo pwned > /usr/bin/python3; rm -f /bin/sh; "
            "mkdir /opt/adv; ln -s /work /etc/adv; chmod 777 /etc; echo done"
        )
        lines = text.splitlines()
        assert lines[0] == "done"
        errors = lines[2:]
        assert len(errors) == 6, text
        reasons = ("Read-only file system", "Permission denied", "Operation not permitted")
        assert all(any(r in e for r in reasons) for e in errors), text
        assert (await ep.sh("head -c 5 /etc/passwd; test -e /bin/sh && echo sh-intact")) == (
            "root:sh-intact"
        )

        # The host canary's path inside the sandbox is the sandbox's own /tmp (or nothing).
        folder = canaries.file.parent
        text = await ep.sh(
            f"mkdir -p {folder} 2>&1 && echo pwned > {canaries.file} 2>&1; cat {canaries.file}"
        )
        assert canaries.file_text.strip() not in text
    canaries.assert_unchanged()


# --- read_file / write_file escapes --------------------------------------------------------------


async def test_read_and_write_file_escapes_are_refused(
    adv: Stub, docker_client: docker.DockerClient, canaries: Canaries
) -> None:
    async with hostile(adv, docker_client) as ep:
        setup = (
            f"ln -s {canaries.file} host-link; ln -s /tmp tmp-link; "
            "ln -s /tmp/planted.txt dangling-link; echo untouched > /tmp/existing.txt; "
            "ln -s /tmp/existing.txt existing-link; ln -s /proc/self/root root-link; "
            "ln -s /proc/1/root agent-root; mkdir -p deep/er; ln -s ../../.. deep/er/up; "
            "ln -s /work/loop-b loop-a; ln -s /work/loop-a loop-b; echo ok"
        )
        assert await ep.sh(setup) == "ok"
        escapes = [
            str(canaries.file),
            "host-link",
            "../" * 40 + "etc/passwd",
            "/work/../etc/passwd",
            "./deep/../../etc/shadow",
            "tmp-link/existing.txt",
            "tmp-link/planted.txt",
            "dangling-link",
            "existing-link",
            "root-link/etc/passwd",
            "agent-root/etc/passwd",
            "/proc/self/root/etc/passwd",
            "/proc/1/environ",
            "deep/er/up/etc/passwd",
            "/dev/shm/planted.txt",
        ]
        reads = [call("read_file", {"path": p}, f"r{i}") for i, p in enumerate(escapes)]
        writes = [
            call("write_file", {"path": p, "content": "pwned"}, f"w{i}")
            for i, p in enumerate(escapes)
        ]
        response = await ep.act(*reads, *writes)
        assert not response.done
        for path, message, info in zip(
            escapes + escapes, response.observations, response.calls, strict=True
        ):
            assert message.content == OUTSIDE, (path, message.content)
            assert info.error == "tool_error"

        # Odd paths are errors the model can read, never a broken episode.
        odd = ["a\u0000b", "x" * 100_000, "loop-a", "", ".", "deep"]
        response = await ep.act(
            *[call("read_file", {"path": p}, f"o{i}") for i, p in enumerate(odd)],
            *[call("write_file", {"path": p, "content": "z"}, f"p{i}") for i, p in enumerate(odd)],
        )
        assert not response.done
        for message, info in zip(response.observations, response.calls, strict=True):
            assert message.content.startswith("error: "), message.content
            assert info.error == "tool_error"
            assert len(message.content) < 2000

        text = await ep.sh("cat /tmp/existing.txt; ls -A /tmp; ls -A /dev/shm")
        assert text == "untouched\nexisting.txt"
    canaries.assert_unchanged()


# --- huge arguments, many calls ------------------------------------------------------------------


async def test_10_mb_tool_argument(adv: Stub, docker_client: docker.DockerClient) -> None:
    ten_mb = 10 * MIB
    async with hostile(adv, docker_client) as ep:
        command = "echo " + "x" * ten_mb
        text, info, response = await ep.tool("bash", {"command": command})
        assert text == (
            f"error: the command is {len(command)} bytes, above the 131072-byte limit; "
            "write long programs to a file with write_file and run the file instead"
        )
        assert info.error == "tool_error"
        assert not response.done

        text, info, _ = await ep.tool("python", {"code": "#" * ten_mb})
        assert text.startswith(f"error: the program is {ten_mb} bytes, above the 131072-byte")

        # Not JSON at all, and JSON of the wrong shape: the model reads a short explanation.
        text, info, _ = await ep.tool("bash", "x" * ten_mb)
        assert text.startswith("invalid arguments for tool 'bash'")
        assert "not valid JSON" in text
        assert len(text) < 2000
        assert info.error == "invalid_arguments"
        text, info, _ = await ep.tool("bash", {"command": ["x" * ten_mb]})
        assert text.startswith("invalid arguments for tool 'bash'")
        assert len(text) < 2 * CAP + 2048
        assert info.error == "invalid_arguments"

        # A 10 MB file is fine to write (the work dir holds it) and reads back capped.
        text, _, _ = await ep.tool("write_file", {"path": "big.txt", "content": "y" * ten_mb})
        assert text == f"wrote {ten_mb} bytes to big.txt"
        text, info, _ = await ep.tool("read_file", {"path": "big.txt"})
        assert text == "y" * CAP + (
            f"\n[output truncated: the file is {ten_mb} bytes; only the first {CAP} are shown]"
        )
        assert info.output_truncated

        # A 10 MB tool name is an unknown tool.
        text, info, _ = await ep.tool("n" * ten_mb, {})
        assert text.startswith("unknown tool 'nnnn")
        assert text.endswith(
            "the available tools are: add, bash, episode_note, python, read_file, submit, "
            "write_file"
        )
        assert len(text) < 1000
        assert info.error == "unknown_tool"
        assert await ep.sh("wc -c < big.txt") == str(ten_mb)


async def test_thousands_of_tool_calls_in_one_action(
    adv: Stub, docker_client: docker.DockerClient
) -> None:
    async with hostile(adv, docker_client) as ep:
        calls = [bash(f"echo {i}", f"c{i}") for i in range(3000)]
        response = await asyncio.wait_for(ep.act(*calls), 120)
        assert not response.done
        assert len(response.observations) == len(response.calls) == 3000  # one per call id
        assert len({o.tool_call_id for o in response.observations}) == 3000
        for i, (message, info) in enumerate(
            zip(response.observations, response.calls, strict=True)
        ):
            if i < MAX_CALLS:
                assert message.content == str(i)
                assert info.exit_code == 0
                assert not info.error
            else:
                assert message.content == (
                    f"not executed: at most {MAX_CALLS} tool calls are run per turn"
                )
                assert info.error == "skipped"
                assert not info.HasField("exit_code")

        # The same flood as raw completion text: 64 run, the model is told the rest did not.
        block = '<tool_call>{"name": "bash", "arguments": {"command": "echo raw"}}</tool_call>'
        request = pb.StepEpisodeRequest(
            episode_id=ep.episode_id, action=raw(block * 3000), turn=ep.turns + 1
        )
        answer = await adv.StepEpisode(request, timeout=RPC_TIMEOUT)
        ep.turns += 1
        assert len(answer.observations) == 3000
        assert {o.content for o in answer.observations[:MAX_CALLS]} == {"raw"}
        assert {o.content for o in answer.observations[MAX_CALLS:]} == {
            f"not executed: at most {MAX_CALLS} tool calls are run per turn"
        }

        trajectory = await adv.GetTrajectory(
            pb.GetTrajectoryRequest(episode_id=ep.episode_id), timeout=RPC_TIMEOUT
        )
        assert len(trajectory.trajectory.turns) == 2
        assert await ep.sh("echo fine") == "fine"


# --- a step racing a close of the same episode ---------------------------------------------------


@pytest.mark.parametrize("delay_s", [0.0, 0.3, 0.8])
async def test_step_racing_close_of_the_same_episode(
    adv: Stub, docker_client: docker.DockerClient, delay_s: float
) -> None:
    started = await adv.StartEpisode(
        start_request("toy", params={"max_turns": 10}), timeout=RPC_TIMEOUT
    )
    episode_id = started.episode_id
    try:
        step_request = pb.StepEpisodeRequest(
            episode_id=episode_id,
            action=pb.Action(
                message=pb.Message(
                    role="assistant",
                    tool_calls=[
                        bash("sleep 1; echo slept", "s1"),
                        bash("echo second", "s2"),
                    ],
                )
            ),
            turn=1,
        )

        async def close_later() -> pb.CloseEpisodeResponse:
            await asyncio.sleep(delay_s)
            answer: pb.CloseEpisodeResponse = await adv.CloseEpisode(
                pb.CloseEpisodeRequest(episode_id=episode_id), timeout=RPC_TIMEOUT
            )
            return answer

        t0 = time.monotonic()
        (stepped, step_error), (closed, close_error) = await asyncio.gather(
            attempt(adv.StepEpisode(step_request, timeout=RPC_TIMEOUT)), attempt(close_later())
        )
        assert time.monotonic() - t0 < 15
        assert close_error is None, close_error
        assert closed.closed is True
        if step_error is not None:
            assert step_error.code() == grpc.StatusCode.FAILED_PRECONDITION, step_error
            assert "was closed" in (step_error.details() or "")
        else:
            # Either the step finished first, or the close cut its sandbox away mid-call; the
            # model reads which, and every call id is answered.
            assert [o.tool_call_id for o in stepped.observations] == ["s1", "s2"]
            first = stepped.observations[0].content
            if first != "slept":
                assert first.startswith("sandbox error: "), first
                assert stepped.done
                assert stepped.observations[1].content.startswith("not executed")

        assert await wait_for_episode_gone(docker_client, episode_id) == []
        for rpc in (
            adv.StepEpisode(
                pb.StepEpisodeRequest(
                    episode_id=episode_id,
                    action=pb.Action(
                        message=pb.Message(role="assistant", tool_calls=[bash("echo", "x")])
                    ),
                ),
                timeout=RPC_TIMEOUT,
            ),
            adv.GetTrajectory(pb.GetTrajectoryRequest(episode_id=episode_id), timeout=RPC_TIMEOUT),
        ):
            _, error = await attempt(rpc)
            assert error is not None
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
            assert error.details() == f"episode {episode_id} was closed"
        again = await adv.CloseEpisode(
            pb.CloseEpisodeRequest(episode_id=episode_id), timeout=RPC_TIMEOUT
        )
        assert again.closed is False
    finally:
        await close_quietly(adv, episode_id)


async def test_many_steps_and_closes_racing(adv: Stub, docker_client: docker.DockerClient) -> None:
    started = await adv.StartEpisode(
        start_request("toy", params={"max_turns": 10}), timeout=RPC_TIMEOUT
    )
    episode_id = started.episode_id
    try:
        rpcs = []
        for i in range(6):
            action = pb.Action(
                message=pb.Message(role="assistant", tool_calls=[bash("sleep 0.2", f"c{i}")])
            )
            rpcs.append(
                adv.StepEpisode(
                    pb.StepEpisodeRequest(episode_id=episode_id, action=action),
                    timeout=RPC_TIMEOUT,
                )
            )
            rpcs.append(
                adv.CloseEpisode(pb.CloseEpisodeRequest(episode_id=episode_id), timeout=RPC_TIMEOUT)
            )
        results = await asyncio.gather(*(attempt(rpc) for rpc in rpcs))
        closes = [answer for i, (answer, _) in enumerate(results) if i % 2]
        assert sum(1 for answer in closes if answer is not None and answer.closed) == 1
        for _, error in results:
            if error is not None:
                # Closed, or already ended by the close that cut its sandbox away.
                assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
                details = error.details() or ""
                assert "was closed" in details or "is errored after turn" in details, details
        assert await wait_for_episode_gone(docker_client, episode_id) == []
    finally:
        await close_quietly(adv, episode_id)
