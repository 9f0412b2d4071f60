"""Faults around a running server: SIGTERM with a step in flight, SIGKILL and restart, a sandbox
container killed from outside, a Docker daemon restart, a client that hangs up mid-step.

Real server processes (`python -m runtime serve`) and in-process servers on loopback ports, real
Docker; nothing is mocked. Every process a test starts is killed by its pid in a `finally`, and
every container it caused is removed by its labels.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import grpc
import pytest
from conftest import SANDBOX_IMAGE, leftover_containers, wait_until_gone
from grpc_fixtures import (
    RPC_TIMEOUT,
    TOY,
    assistant,
    bash,
    close_quietly,
    connected,
    episode_containers,
    expect_error,
    open_episode,
    rpc_error,
    running_server,
    start_request,
    step,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from runtime.sandbox import labels
from runtime.sandbox.docker_backend import DockerBackend
from runtime.sandbox.spec import SandboxSpec
from runtime.v1 import runtime_pb2 as pb
from runtime.v1 import runtime_pb2_grpc as pb_grpc

Stub = pb_grpc.EpisodeServiceStub
ROOT = Path(__file__).resolve().parent.parent
FAILED = grpc.StatusCode.FAILED_PRECONDITION
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
DOCKERD_RESTART = os.environ.get("RUNTIME_TEST_DOCKERD_RESTART") == "1"


# --- server processes --------------------------------------------------------------------------


@dataclass
class ServerProcess:
    """A `python -m runtime serve` child process and where it listens."""

    proc: asyncio.subprocess.Process
    address: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


async def _wait_serving(address: str, timeout_s: float = 60) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server at {address} did not become SERVING")
            await asyncio.sleep(0.1)


async def _wait_refusing(channel: grpc.aio.Channel, timeout_s: float = 10) -> list[int]:
    """Wait until the server refuses new RPCs (a health check fails); returns the health
    statuses seen on the way (SERVING, then NOT_SERVING for a moment)."""
    health = health_pb2_grpc.HealthStub(channel)
    seen: list[int] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.aio.AioRpcError:
            return seen
        seen.append(answer.status)
        await asyncio.sleep(0.02)
    raise TimeoutError(f"the server still took RPCs {timeout_s} s after SIGTERM: {seen}")


@contextlib.asynccontextmanager
async def server_process(
    instance: str, log_dir: Path, *extra: str, grace_s: float = 10.0
) -> AsyncIterator[ServerProcess]:
    """Start `python -m runtime serve` for ``instance`` and wait until it is SERVING.

    It listens on a free loopback port (``--port 0``; the port is read from the line the server
    prints). On exit the process is SIGKILLed by its pid if it still runs; its containers are
    not touched (some tests need them to survive), see `remove_instance`.
    """
    log = log_dir / f"{instance}-{secrets.token_hex(3)}.log"
    with log.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "runtime",
            "serve",
            "--port",
            "0",
            "--instance-name",
            instance,
            "--environments",
            TOY,
            "--shutdown-grace-s",
            str(grace_s),
            "--log-level",
            "DEBUG",
            *extra,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
        )
    try:
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
        except TimeoutError:
            line = b""
        text = line.decode(errors="replace").strip()
        prefix = "episode runtime listening on "
        assert text.startswith(prefix), f"unexpected start-up output {text!r}: {log.read_text()}"
        address = text[len(prefix) :]
        await _wait_serving(address)
        yield ServerProcess(proc, address, log)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()


def remove_instance(client: docker.DockerClient, instance: str) -> None:
    """Force-remove every container labelled with ``instance``."""
    for container in client.containers.list(all=True, filters=labels.owner_filter(instance)):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


def container_of(
    client: docker.DockerClient, episode_id: str
) -> docker.models.containers.Container:
    names = episode_containers(client, episode_id)
    assert len(names) == 1, f"episode {episode_id} has containers {names}"
    return client.containers.get(names[0])


# --- SIGTERM: drain, then exit 0 ---------------------------------------------------------------


@pytest.mark.slow
async def test_sigterm_lets_the_running_step_finish_and_refuses_new_work(
    owner: str, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    instance = f"{owner}-sigterm-{secrets.token_hex(3)}"
    try:
        async with server_process(instance, tmp_path, grace_s=10.0) as server:
            async with grpc.aio.insecure_channel(server.address) as channel:
                stub = Stub(channel)
                started = await stub.StartEpisode(start_request("toy"), timeout=RPC_TIMEOUT)
                assert len(leftover_containers(docker_client, instance)) == 1
                in_flight = asyncio.ensure_future(
                    step(stub, started.episode_id, assistant(bash("sleep 2; echo done", "c1")))
                )
                await asyncio.sleep(0.5)
                assert not in_flight.done()
                signalled = time.monotonic()
                os.kill(server.proc.pid, signal.SIGTERM)
                await _wait_refusing(channel)

                # New work is refused: on the open channel and on a fresh connection.
                refused = await rpc_error(stub.StartEpisode(start_request("toy"), timeout=10))
                assert refused.code() == UNAVAILABLE, refused.details()
                async with grpc.aio.insecure_channel(server.address) as fresh:
                    again = await rpc_error(
                        Stub(fresh).StartEpisode(start_request("toy"), timeout=10)
                    )
                    assert again.code() == UNAVAILABLE, again.details()

                # The step that was running finishes normally.
                answer = await in_flight
                assert answer.observations[0].content.strip().endswith("done"), answer
                assert not answer.done
                assert answer.calls[0].exit_code == 0

            code = await asyncio.wait_for(server.proc.wait(), 15)
            assert code == 0, server.log_text()
            assert time.monotonic() - signalled < 10.0 + 3.0
            assert "every sandbox removed" in server.log_text()
        assert await wait_until_gone(docker_client, instance, 5) == []
    finally:
        await asyncio.to_thread(remove_instance, docker_client, instance)


@pytest.mark.slow
async def test_sigterm_cuts_off_a_step_that_outlasts_the_grace(
    owner: str, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    instance = f"{owner}-grace-{secrets.token_hex(3)}"
    try:
        async with server_process(instance, tmp_path, grace_s=1.0) as server:
            async with connected_to(server.address) as stub:
                started = await stub.StartEpisode(start_request("toy"), timeout=RPC_TIMEOUT)
                in_flight = asyncio.ensure_future(
                    step(stub, started.episode_id, assistant(bash("sleep 8; echo never", "c1")))
                )
                await asyncio.sleep(0.5)
                signalled = time.monotonic()
                os.kill(server.proc.pid, signal.SIGTERM)
                error = await rpc_error(in_flight)
                assert error.code() in (grpc.StatusCode.CANCELLED, UNAVAILABLE), error
                assert "Traceback" not in (error.details() or "")
            code = await asyncio.wait_for(server.proc.wait(), 15)
            assert code == 0, server.log_text()
            assert time.monotonic() - signalled < 1.0 + 5.0, "the grace was not enforced"
        assert await wait_until_gone(docker_client, instance, 5) == []
    finally:
        await asyncio.to_thread(remove_instance, docker_client, instance)


# --- SIGKILL: leftovers stay, a restart of the same instance removes them (only them) ----------


@pytest.mark.slow
async def test_sigkill_leaves_containers_that_a_restart_of_the_same_instance_removes(
    owner: str, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    token = secrets.token_hex(3)
    x, y = f"{owner}-x-{token}", f"{owner}-y-{token}"
    bystander = None
    try:
        # Another instance's sandbox on the same daemon (as if a second server ran).
        bystander = await asyncio.to_thread(
            docker_client.containers.run,
            SANDBOX_IMAGE,
            ["sleep", "300"],
            labels=labels.container_labels(y, "b", "e"),
            detach=True,
            network_mode="none",
            user="65534:65534",
            cap_drop=["ALL"],
            read_only=True,
        )
        async with server_process(x, tmp_path) as first:
            async with connected_to(first.address) as stub:
                started = await stub.StartEpisode(start_request("toy"), timeout=RPC_TIMEOUT)
                answer = await step(stub, started.episode_id, assistant(bash("echo hi", "c1")))
                assert "hi" in answer.observations[0].content
            orphan = leftover_containers(docker_client, x)
            assert len(orphan) == 1
            os.kill(first.proc.pid, signal.SIGKILL)
            assert await asyncio.wait_for(first.proc.wait(), 10) == -signal.SIGKILL

        # Nothing cleaned up after a SIGKILL: the container is still there.
        await asyncio.sleep(0.5)
        assert leftover_containers(docker_client, x) == orphan
        assert episode_containers(docker_client, started.episode_id) == orphan

        async with server_process(x, tmp_path) as second:
            # Removed at start-up, before the server said SERVING.
            assert leftover_containers(docker_client, x) == []
            assert "removed 1 sandbox(es) left by an earlier run" in second.log_text()
            # The other instance's container is untouched.
            bystander.reload()
            assert bystander.status == "running"
            assert leftover_containers(docker_client, y) == [bystander.name]
            async with connected_to(second.address) as stub:
                await expect_error(
                    step(stub, started.episode_id, assistant(bash("echo hi", "c2"))),
                    grpc.StatusCode.NOT_FOUND,
                    started.episode_id,
                )
                async with open_episode(stub, "toy") as fresh:
                    ok = await step(stub, fresh.episode_id, assistant(bash("echo back", "c1")))
                    assert "back" in ok.observations[0].content
            os.kill(second.proc.pid, signal.SIGTERM)
            assert await asyncio.wait_for(second.proc.wait(), 20) == 0
        assert leftover_containers(docker_client, x) == []
        bystander.reload()
        assert bystander.status == "running"
    finally:
        if bystander is not None:
            with contextlib.suppress(docker.errors.NotFound):
                await asyncio.to_thread(bystander.remove, force=True)
        await asyncio.to_thread(remove_instance, docker_client, x)
        await asyncio.to_thread(remove_instance, docker_client, y)


@contextlib.asynccontextmanager
async def connected_to(address: str) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(address) as channel:
        await channel.channel_ready()
        yield Stub(channel)


# --- a sandbox killed from outside -------------------------------------------------------------


@pytest.mark.slow
async def test_container_killed_mid_step_is_a_sandbox_error(
    owner: str, docker_client: docker.DockerClient
) -> None:
    instance = f"{owner}-killed"
    async with (
        running_server(instance) as server,
        connected(server) as stub,
        open_episode(stub, "toy") as victim,
        open_episode(stub, "toy") as other,
    ):
        container = container_of(docker_client, victim.episode_id)
        in_flight = asyncio.ensure_future(
            step(stub, victim.episode_id, assistant(bash("sleep 5; echo never", "c1")))
        )
        await asyncio.sleep(1.0)
        assert not in_flight.done()
        began = time.monotonic()
        await asyncio.to_thread(container.kill)
        answer = await in_flight
        assert time.monotonic() - began < 4.0, "the step waited for its command's end"
        message = answer.observations[0]
        assert message.role == "tool"
        assert message.content.startswith("sandbox error"), message.content
        assert "container" in message.content  # says what happened to the sandbox
        assert "never" not in message.content
        assert answer.done
        assert answer.calls[0].error == "sandbox_error"
        # The dead container is removed at once; the episode is over.
        assert episode_containers(docker_client, victim.episode_id) == []
        await expect_error(
            step(stub, victim.episode_id, assistant(bash("echo hi", "c2"))),
            FAILED,
            victim.episode_id,
        )
        # The server and the other episodes go on.
        ok = await step(stub, other.episode_id, assistant(bash("echo alive", "c1")))
        assert "alive" in ok.observations[0].content
        async with open_episode(stub, "toy") as fresh:
            ok = await step(stub, fresh.episode_id, assistant(bash("echo new", "c1")))
            assert "new" in ok.observations[0].content
    assert await wait_until_gone(docker_client, instance) == []


# --- a client that hangs up mid-step -----------------------------------------------------------


@pytest.mark.slow
async def test_cancelled_step_kills_its_processes(
    owner: str, docker_client: docker.DockerClient
) -> None:
    instance = f"{owner}-hangup"
    async with (
        running_server(instance) as server,
        connected(server) as stub,
        open_episode(stub, "toy", params={"max_turns": 20, "call_timeout_s": 120.0}) as started,
    ):
        container = container_of(docker_client, started.episode_id)

        def processes() -> list[str]:
            """The container's process names, seen from outside (docker exec as nobody)."""
            result = container.exec_run(["ps", "-eo", "comm="], user="65534")
            return [name for name in result.output.decode().split() if name != "ps"]

        request = pb.StepEpisodeRequest(
            episode_id=started.episode_id,
            action=assistant(bash("sleep 100 & sleep 100", "c1")),
        )
        pending = stub.StepEpisode(request, timeout=RPC_TIMEOUT)
        for _ in range(50):
            if (await asyncio.to_thread(processes)).count("sleep") == 2:
                break
            await asyncio.sleep(0.1)
        assert (await asyncio.to_thread(processes)).count("sleep") == 2, "the sleeps never ran"
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending

        # Within about a second the step's processes, the background one included, and the
        # shell session they ran in are gone; only the agent is left.
        left: list[str] = []
        for _ in range(15):
            left = await asyncio.to_thread(processes)
            if left == ["python3"]:
                break
            await asyncio.sleep(0.1)
        assert left == ["python3"], left
        # (Stepping right after the cancel, without this wait, sometimes kills the episode:
        # see test_session_call_queued_behind_a_cancelled_one_runs.)

        answer = await step(stub, started.episode_id, assistant(bash("ps -eo comm=", "ps")))
        listing = answer.observations[0].content.split()
        assert "sleep" not in listing, listing
        assert "bash" in listing  # a fresh session runs the next call
        assert not answer.done
        # The cancelled turn was not recorded.
        history = server.engine.get_trajectory(started.episode_id)
        assert [t.action.message.tool_calls[0].id for t in history.turns] == ["ps"]
    assert await wait_until_gone(docker_client, instance) == []


@pytest.mark.parametrize("ending", ["cancel", "timeout"])
async def test_session_call_queued_behind_a_cancelled_one_runs(
    backend: DockerBackend, spec: SandboxSpec, ending: str
) -> None:
    """The next session call after a cancelled (client hung up) or timed-out one gets a fresh
    session. Over gRPC the same race makes the first step after a hang-up fail now and then
    with a sandbox error that ends the episode."""
    sandbox = await backend.create(spec, episode_id=f"race-{ending}")
    try:
        await sandbox.exec("true", timeout_s=10, session=True)
        first = asyncio.ensure_future(
            sandbox.exec("sleep 100", timeout_s=1.5 if ending == "timeout" else 60, session=True)
        )
        await asyncio.sleep(0.5)
        queued = asyncio.ensure_future(sandbox.exec("echo next", timeout_s=30, session=True))
        await asyncio.sleep(0.5)
        if ending == "cancel":
            first.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await first
        result = await queued
        assert result.stdout.strip() == "next"
        assert result.exit_code == 0
    finally:
        await sandbox.close()


# --- the Docker daemon restarts under a live episode (opt-in) ----------------------------------


def _dockerd() -> tuple[int, list[str], dict[str, str]]:
    """The running dockerd's pid, command line and environment."""
    pid = int(Path("/var/run/docker.pid").read_text().strip())
    argv = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    env: dict[str, str] = {}
    for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        key, sep, value = item.decode(errors="replace").partition("=")
        if sep:
            env[key] = value
    return pid, argv, env


def _start_detached(argv: list[str], env: dict[str, str], log: Path) -> None:
    setsid = shutil.which("setsid")
    assert setsid is not None
    with log.open("ab") as out:
        subprocess.run(
            [setsid, "-f", *argv],
            env=env or None,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            check=True,
        )


async def _restart_dockerd(log: Path) -> None:
    """SIGTERM dockerd, wait for it to exit, start it again detached with the same command
    line and environment, and wait until `docker info` answers."""
    pid, argv, env = _dockerd()
    assert argv, "cannot read dockerd's command line"
    os.kill(pid, signal.SIGTERM)
    gone = False
    for _ in range(1200):  # stopping containers may take their stop timeout
        gone = not await asyncio.to_thread(os.path.exists, f"/proc/{pid}")
        if gone:
            break
        await asyncio.sleep(0.1)
    assert gone, "dockerd did not exit after SIGTERM"
    await asyncio.to_thread(_start_detached, argv, env, log)
    for _ in range(600):
        info = await asyncio.to_thread(
            subprocess.run, ["docker", "info"], capture_output=True, timeout=10
        )
        if info.returncode == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"dockerd did not come back; see {log}")


@pytest.mark.slow
@pytest.mark.skipif(
    not DOCKERD_RESTART,
    reason="restarts the machine's Docker daemon, disrupting every other container and test "
    "on it: opt in with RUNTIME_TEST_DOCKERD_RESTART=1 (make test does, alone, on CI only)",
)
async def test_docker_daemon_restart_under_a_live_episode(
    owner: str, docker_client: docker.DockerClient
) -> None:
    """Opt-in only (RUNTIME_TEST_DOCKERD_RESTART=1): it restarts the machine's dockerd, which
    stops every container on it. `make test` runs it alone, after the suite, when CI=true."""
    instance = f"{owner}-dockerd"
    async with running_server(instance) as server, connected(server) as stub:
        started = await stub.StartEpisode(start_request("toy"), timeout=RPC_TIMEOUT)
        try:
            ok = await step(stub, started.episode_id, assistant(bash("echo before", "c1")))
            assert "before" in ok.observations[0].content
            await _restart_dockerd(Path(f"/tmp/dockerd-restart-{instance}.log"))

            answer = await step(stub, started.episode_id, assistant(bash("echo after", "c2")))
            assert answer.observations[0].content.startswith("sandbox error"), answer
            assert answer.done
            # A new episode gets a working sandbox from the restarted daemon.
            async with open_episode(stub, "toy") as fresh:
                again = await step(stub, fresh.episode_id, assistant(bash("echo again", "c1")))
                assert "again" in again.observations[0].content
        finally:
            await close_quietly(stub, started.episode_id)
    assert await wait_until_gone(docker_client, instance, 30) == []
