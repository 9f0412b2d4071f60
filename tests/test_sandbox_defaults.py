"""Every hardened default of a sandbox, shown from inside a real container (and `docker inspect`).

Nothing here mocks Docker: each test runs commands in a container of the test image through the
in-sandbox agent and asserts what a command (or the model, through the `bash` tool) observes.

Under gVisor (`RUNTIME_TEST_ISOLATION=gvisor`) the sandbox has its own kernel: where runc-specific
artefacts (mountinfo of an overlay root, cgroup files inside the container) do not exist there,
the same property is shown the way gVisor exposes it, and where a default is not enforced the test
is a strict xfail naming the gap.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from conftest import GVISOR, sandbox_spec, wait_until_gone

from runtime.errors import SandboxError
from runtime.sandbox import labels
from runtime.sandbox.backend import ExecResult, Sandbox
from runtime.sandbox.docker_backend import (
    AGENT_CAPABILITIES,
    DockerBackend,
    gvisor_host_pids,
    gvisor_memory_headroom,
)
from runtime.sandbox.spec import SandboxSpec
from runtime.tools.builtin import BUILTIN_TOOLS
from runtime.tools.context import ToolContext
from runtime.tools.executor import CallRecord, execute_call
from runtime.tools.messages import Message, ToolCall

MIB = 1024 * 1024
CAP = 65536
AGENT_CAPS_MASK = (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8)  # KILL, SETGID, SETUID, SETPCAP


def episode_id(tag: str) -> str:
    return f"defaults-{tag}-{secrets.token_hex(3)}"


async def sh(sandbox: Sandbox, command: str, timeout_s: float = 15.0) -> ExecResult:
    return await sandbox.exec(command, timeout_s=timeout_s)


async def inspect(client: docker.DockerClient, container_id: str) -> dict[str, Any]:
    info: dict[str, Any] = await asyncio.to_thread(client.api.inspect_container, container_id)
    return info


async def bash_tool(
    sandbox: Sandbox, command: str, timeout_s: float = 15.0
) -> tuple[Message, CallRecord]:
    """Run ``command`` the way the model does: a `bash` tool call through `execute_call`."""
    ctx = ToolContext(sandbox=sandbox, scratch={}, timeout_s=timeout_s, output_cap_bytes=CAP)
    call = ToolCall(id="call-1", name="bash", arguments=json.dumps({"command": command}))
    return await execute_call(call, BUILTIN_TOOLS, ctx)


async def process_names(sandbox: Sandbox) -> list[str]:
    """Command names of the live processes in the container, the `ps` itself excluded.

    Zombies don't count: a killed orphan is reaped by the agent (PID 1) within half a second.
    """
    result = await sh(sandbox, "ps -eo stat=,comm=")
    assert result.exit_code == 0, result
    rows = [line.split(None, 1) for line in result.stdout.splitlines() if line.strip()]
    names = [comm for stat, comm in rows if not stat.startswith("Z")]
    names.remove("ps")
    return names


@pytest.fixture(scope="module")
async def shared(backend: DockerBackend) -> AsyncIterator[Sandbox]:
    """One default sandbox for the tests that only look (they change nothing that matters)."""
    sandbox = await backend.create(sandbox_spec(), episode_id=episode_id("ro"))
    try:
        yield sandbox
    finally:
        await sandbox.close()


@pytest.fixture
async def fresh(backend: DockerBackend, spec: SandboxSpec) -> AsyncIterator[Sandbox]:
    """A default sandbox of its own, for tests that exhaust or damage it."""
    sandbox = await backend.create(spec, episode_id=episode_id("rw"))
    try:
        yield sandbox
    finally:
        await sandbox.close()


# --- network: none -------------------------------------------------------------------------

_CONNECT = """
import json, socket, sys
out = {}
for host, port in json.loads(sys.argv[1]):
    try:
        socket.create_connection((host, port), timeout=3).close()
        out[f"{host}:{port}"] = "connected"
    except OSError as exc:
        out[f"{host}:{port}"] = f"{type(exc).__name__}: {exc}"
try:
    socket.getaddrinfo("example.com", 80)
    out["dns"] = "resolved"
except OSError as exc:
    out["dns"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def _host_addresses(client: docker.DockerClient) -> list[str]:
    """Addresses at which this host could be reached from a bridged container."""
    found = {"127.0.0.1"}
    for cfg in client.networks.get("bridge").attrs.get("IPAM", {}).get("Config") or []:
        if cfg.get("Gateway"):
            found.add(cfg["Gateway"].split("/")[0])
        elif cfg.get("Subnet") and ":" not in cfg["Subnet"]:
            found.add(str(next(ipaddress.ip_network(cfg["Subnet"]).hosts())))
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))  # UDP: no packet is sent, only a route chosen
        found.add(probe.getsockname()[0])
    except OSError:
        pass
    finally:
        probe.close()
    return sorted(found)


async def test_network_none_reaches_neither_host_nor_internet(
    shared: Sandbox, docker_client: docker.DockerClient
) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("0.0.0.0", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        hosts = await asyncio.to_thread(_host_addresses, docker_client)
        targets = [[host, port] for host in hosts] + [["1.1.1.1", 53], ["8.8.8.8", 53]]
        script = f"python3 -c {_shell_quote(_CONNECT)} {_shell_quote(json.dumps(targets))}"
        result = await sh(shared, script, timeout_s=60)
        assert result.exit_code == 0, result
        outcome = json.loads(result.stdout)
        assert len(outcome) == len(targets) + 1
        for target, what in outcome.items():
            assert what not in ("connected", "resolved"), (target, outcome)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing from inside ever reached the host's listener
    finally:
        listener.close()

    net_dev = await sh(shared, "cat /proc/net/dev")
    interfaces = [line.split(":")[0].strip() for line in net_dev.stdout.splitlines()[2:]]
    assert interfaces == ["lo"], net_dev.stdout

    info = await inspect(docker_client, shared.id)
    assert info["HostConfig"]["NetworkMode"] == "none"
    assert set(info["NetworkSettings"]["Networks"]) <= {"none"}


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


# --- user ----------------------------------------------------------------------------------


async def test_runs_as_nobody_and_cannot_become_root(
    shared: Sandbox, docker_client: docker.DockerClient
) -> None:
    ids = await sh(shared, "id -u; id -g")
    assert ids.stdout.split() == ["65534", "65534"]

    sudo = await sh(shared, "sudo -n id -u")
    assert sudo.exit_code != 0
    assert "0" not in sudo.stdout.split()

    su = await sh(shared, "su -c 'id -u' root < /dev/null")
    assert su.exit_code != 0
    assert "0" not in su.stdout.split()

    # The agent is another uid (0, with almost no capabilities) than every tool process.
    agent = await sh(shared, "grep -E '^(Uid|Gid|CapEff):' /proc/1/status")
    status = {k: v.split() for k, v in (line.split(":", 1) for line in agent.stdout.splitlines())}
    assert status["Uid"] == ["0"] * 4, status
    assert int(status["CapEff"][0], 16) == AGENT_CAPS_MASK, status

    info = await inspect(docker_client, shared.id)
    assert info["Config"]["User"] == "0:0"
    assert "user=65534:65534" in info["Config"]["Cmd"]
    assert info["HostConfig"]["Privileged"] is False


# --- root filesystem -----------------------------------------------------------------------


async def test_root_filesystem_is_read_only(
    shared: Sandbox, docker_client: docker.DockerClient
) -> None:
    # Root-owned directories. gVisor checks permissions before the read-only mount, so there
    # the user is told EACCES; the world-writable directories below show the mount itself.
    refusal = "Permission denied" if GVISOR else "Read-only file system"
    for target in ("/x", "/usr/bin/x", "/etc/x"):
        result = await sh(shared, f"touch {target}")
        assert result.exit_code != 0
        assert refusal in result.stderr, result

    # World-writable directories of the image: only the read-only root stops these writes.
    open_dirs = await sh(shared, "find /var/tmp /run/lock -maxdepth 0 -perm -0002")
    assert open_dirs.stdout.split() == ["/var/tmp", "/run/lock"], open_dirs
    for target in ("/var/tmp/x", "/run/lock/x"):
        result = await sh(shared, f"echo hi > {target}")
        assert result.exit_code != 0
        assert "Read-only file system" in result.stderr, result

    mounts = await sh(shared, "cat /proc/mounts")
    root = [line.split() for line in mounts.stdout.splitlines() if line.split()[1] == "/"]
    assert root, mounts.stdout
    assert "ro" in root[-1][3].split(","), root

    writable = await sh(
        shared,
        "set -e; for d in /work /tmp; do echo hi > $d/p-$$; cat $d/p-$$; rm $d/p-$$; done",
    )
    assert writable.exit_code == 0, writable
    assert writable.stdout == "hi\nhi\n"

    info = await inspect(docker_client, shared.id)
    assert info["HostConfig"]["ReadonlyRootfs"] is True
    assert set(info["HostConfig"]["Tmpfs"]) == {"/work", "/tmp"}


async def test_tmpfs_size_caps(backend: DockerBackend) -> None:
    small = sandbox_spec(workdir_size="8m", tmp_size="8m")
    # coreutils' `stat` fails with EINVAL under this gVisor (its statx rejects AT_NO_AUTOMOUNT);
    # `wc -c` reads the same size by reading the file.
    size_of = "wc -c <" if GVISOR else "stat -c %s"
    sandbox = await backend.create(small, episode_id=episode_id("tmpfs"))
    try:
        for directory in ("/work", "/tmp"):
            result = await sh(sandbox, f"head -c 20M /dev/zero > {directory}/f")
            assert result.exit_code != 0
            assert "No space left on device" in result.stderr, result
            size = await sh(sandbox, f"{size_of} {directory}/f; rm -f {directory}/f")
            assert size.exit_code == 0, size
            assert 0 < int(size.stdout) <= 8 * MIB

            fits = await sh(sandbox, f"head -c 4M /dev/zero > {directory}/g && rm {directory}/g")
            assert fits.exit_code == 0, fits
    finally:
        await sandbox.close()


# --- capabilities --------------------------------------------------------------------------


_PRCTL = """
import ctypes, errno, json
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4

def prctl(*args):
    result = libc.prctl(*args, *[0] * (5 - len(args)))
    return result if result >= 0 else -ctypes.get_errno()

caps = range(64)
print(json.dumps({
    "no_new_privs": prctl(39),  # PR_GET_NO_NEW_PRIVS
    "bounding": [c for c in caps if prctl(23, c) == 1],  # PR_CAPBSET_READ
    "ambient": sorted({prctl(47, 1, c) for c in caps} - {-errno.EINVAL}),  # PR_CAP_AMBIENT_IS_SET
    "ambient_supported": prctl(47, 1, 0) != -errno.EINVAL,
}))
"""


async def test_all_capabilities_dropped_and_no_new_privileges(
    shared: Sandbox, docker_client: docker.DockerClient
) -> None:
    result = await sh(shared, "grep -E '^(Cap|NoNewPrivs)' /proc/self/status")
    status = dict(line.split(":\t") for line in result.stdout.splitlines())
    # gVisor's /proc/self/status has no CapAmb or NoNewPrivs line (it has no ambient set at all);
    # prctl, below, asks the kernel directly under both runtimes.
    fields = ("CapEff", "CapPrm", "CapBnd", "CapInh") + (() if GVISOR else ("CapAmb",))
    for field in fields:
        assert int(status[field], 16) == 0, (field, status)
    if not GVISOR:
        assert status["NoNewPrivs"] == "1"

    asked = await shared.exec(_PRCTL, timeout_s=15, kind="python")
    assert asked.exit_code == 0, asked
    kernel = json.loads(asked.stdout)
    assert kernel["no_new_privs"] == 1, kernel
    assert kernel["bounding"] == [], kernel
    assert kernel["ambient_supported"] is not GVISOR, kernel
    assert kernel["ambient"] in ([0], []), kernel  # no ambient capability is set

    info = await inspect(docker_client, shared.id)
    assert info["HostConfig"]["CapDrop"] == ["ALL"]
    # Only the agent holds these (see test_runs_as_nobody_and_cannot_become_root).
    assert sorted(info["HostConfig"]["CapAdd"]) == sorted(AGENT_CAPABILITIES)
    assert "no-new-privileges" in info["HostConfig"]["SecurityOpt"]


# --- memory --------------------------------------------------------------------------------

_ALLOC_600 = (
    # Held a moment under gVisor: there the agent's watchdog looks every 50 ms (later on a
    # loaded machine), so a spike over the budget that is gone before a look can pass.
    'python3 -c "import time; b = bytearray(600*1024*1024); time.sleep(2)"'
    if GVISOR
    else 'python3 -c "b = bytearray(600*1024*1024)"'
)


async def test_memory_limit_kills_a_600_mib_allocation(
    fresh: Sandbox, docker_client: docker.DockerClient
) -> None:
    # The same under both runtimes: under runc the kernel's OOM killer in the container's
    # cgroup, under gVisor the agent's watchdog enforcing the same budget (the cgroup there
    # has headroom above it, so that the sandbox itself is never what gets killed).
    result = await sh(fresh, _ALLOC_600)
    assert result.oom_killed is True, result
    assert result.exit_code != 0
    assert not result.timed_out

    fine = await sh(fresh, 'python3 -c "b = bytearray(400*1024*1024); print(len(b))"')
    assert fine.exit_code == 0, fine
    assert fine.oom_killed is False
    assert fine.stdout.strip() == str(400 * MIB)

    message, record = await bash_tool(fresh, _ALLOC_600)
    assert "out of memory" in message.content
    assert "512 MiB" in message.content
    assert record.error == "out_of_memory"
    assert record.ends_episode is False

    alive = await sh(fresh, "echo still here")
    assert alive.stdout == "still here\n"


async def test_memory_limit_without_swap(
    shared: Sandbox, docker_client: docker.DockerClient
) -> None:
    info = await inspect(docker_client, shared.id)
    assert info["HostConfig"]["Memory"] == HOST_MEMORY_LIMIT
    assert info["HostConfig"]["MemorySwap"] == HOST_MEMORY_LIMIT

    if GVISOR:  # what gVisor's kernel tells the processes: the cgroup is all there is, no swap
        meminfo = await sh(shared, "grep -E '^(MemTotal|SwapTotal):' /proc/meminfo")
        rows = dict(line.split(":") for line in meminfo.stdout.splitlines())
        assert rows["MemTotal"].split() == [str(HOST_MEMORY_LIMIT // 1024), "kB"], rows
        assert rows["SwapTotal"].split() == ["0", "kB"], rows
        # ... and the agent enforces the 512 MiB budget inside (see the 600 MiB test).
        assert f"memory={512 * MIB}" in info["Config"]["Cmd"]

    files = await _sandbox_cgroup_values(
        shared,
        docker_client,
        "memory/memory.limit_in_bytes",
        "memory/memory.memsw.limit_in_bytes",
        "memory.max",
        "memory.swap.max",
    )
    limit = str(HOST_MEMORY_LIMIT)
    if "memory.max" in files:  # cgroup v2: swap.max is what comes on top of memory.max
        assert files["memory.max"] == limit
        assert files.get("memory.swap.max", "0") == "0"
    else:
        assert files["memory/memory.limit_in_bytes"] == limit
        assert files.get("memory/memory.memsw.limit_in_bytes", limit) == limit


HOST_MEMORY_LIMIT = 512 * MIB + (gvisor_memory_headroom(512 * MIB) if GVISOR else 0)


async def _cgroup_values(sandbox: Sandbox, *names: str) -> dict[str, str]:
    """The readable ones among ``/sys/fs/cgroup/<name>``, by name."""
    script = "; ".join(
        f'[ -r /sys/fs/cgroup/{n} ] && echo "{n}=$(cat /sys/fs/cgroup/{n})"' for n in names
    )
    result = await sh(sandbox, script + "; true")
    found = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert found, f"no cgroup file readable among {names}"
    return found


def _host_cgroup_files(pid: int, names: Iterable[str]) -> dict[str, str]:
    """The readable ones among ``names`` (as in `_cgroup_values`) in the host cgroups of ``pid``."""
    v1: dict[str, str] = {}
    v2 = None
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers:
            v1.update(dict.fromkeys(controllers.split(","), path))
        else:
            v2 = path
    found = {}
    for name in names:
        controller, _, file = name.rpartition("/")
        base = v1.get(controller) if controller else v2
        if base is None:
            continue
        candidate = Path("/sys/fs/cgroup", controller, base.lstrip("/"), file)
        if candidate.is_file():
            found[name] = candidate.read_text().strip()
    return found


async def _sandbox_cgroup_values(
    sandbox: Sandbox, client: docker.DockerClient, *names: str
) -> dict[str, str]:
    """The cgroup limits the kernel applies to the sandbox, by `_cgroup_values` name.

    Under runc they are read inside the container. gVisor exposes no cgroup files inside; its
    limits are the host cgroup of the sandbox's process (the gVisor kernel and everything it
    runs), read here on the host (these tests run on the Docker host: they check its paths).
    """
    if not GVISOR:
        return await _cgroup_values(sandbox, *names)
    pid = (await inspect(client, sandbox.id))["State"]["Pid"]
    assert pid > 0, "the sandbox container is not running"
    found = await asyncio.to_thread(_host_cgroup_files, pid, names)
    assert found, f"no host cgroup file of pid {pid} readable among {names}"
    return found


# --- pids ----------------------------------------------------------------------------------


_HOLD = """
import subprocess, time
started = [subprocess.Popen(["sleep", "30"]) for _ in range(%d)]
time.sleep(2)
print(len(started))
"""


@pytest.mark.slow
async def test_pids_limit_stops_a_process_flood(
    fresh: Sandbox, docker_client: docker.DockerClient
) -> None:
    # The timeout is far beyond what the watchdog needs to end the flood.
    flood = await sh(fresh, "for i in $(seq 300); do sleep 30 & done; echo all started", 40)
    assert "all started" not in flood.stdout
    # Held at the limit, the tools' processes are all killed (what ends a fork bomb) and the
    # call says why, under both runtimes.
    assert flood.process_limit, flood
    assert not flood.timed_out, flood
    message, record = await bash_tool(fresh, "for i in $(seq 300); do sleep 30 & done; wait", 40)
    limit = f"[process limit: the sandbox's limit of {TOOL_PROCESSES} processes was reached"
    assert limit in message.content
    assert record.error == "process_limit"

    # Many processes well below the limit, held for a while, are no fork bomb.
    held = await fresh.exec(_HOLD % (TOOL_PROCESSES // 3), timeout_s=60, kind="python")
    assert held.stdout.split() == [str(TOOL_PROCESSES // 3)], held
    assert not held.process_limit, held

    alive = await sh(fresh, "echo alive")
    assert alive.stdout == "alive\n"
    assert "sleep" not in await process_names(fresh)

    info = await inspect(docker_client, fresh.id)
    assert info["HostConfig"]["PidsLimit"] == HOST_PIDS_LIMIT
    if not GVISOR:
        files = await _cgroup_values(fresh, "pids/pids.max", "pids.max")
        assert set(files.values()) == {"256"}


TOOL_PROCESSES = 64 if GVISOR else 256
"""What the tools may hold: a quarter of the spec's 256 under gVisor (tool_process_limit)."""
HOST_PIDS_LIMIT = gvisor_host_pids(TOOL_PROCESSES) if GVISOR else 256


async def test_pids_limit_is_set(shared: Sandbox, docker_client: docker.DockerClient) -> None:
    """The limit is on the sandbox's cgroup. Under gVisor the host cgroup also counts the
    sandbox kernel's own tasks, so it gets a roomier ceiling that still shields the host, and
    a quarter of the 256 is enforced inside as the tool user's process limit (RLIMIT_NPROC)."""
    info = await inspect(docker_client, shared.id)
    assert info["HostConfig"]["PidsLimit"] == HOST_PIDS_LIMIT
    files = await _sandbox_cgroup_values(shared, docker_client, "pids/pids.max", "pids.max")
    assert set(files.values()) == {str(HOST_PIDS_LIMIT)}
    if GVISOR:
        limit = await sh(shared, "ulimit -u")
        assert limit.stdout.strip() == str(TOOL_PROCESSES)


# --- cpu -----------------------------------------------------------------------------------


async def test_one_cpu(shared: Sandbox, docker_client: docker.DockerClient) -> None:
    info = await inspect(docker_client, shared.id)
    assert info["HostConfig"]["NanoCpus"] == 1_000_000_000

    files = await _sandbox_cgroup_values(
        shared, docker_client, "cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us", "cpu.max"
    )
    if "cpu.max" in files:
        quota, period = files["cpu.max"].split()
    else:
        quota, period = files["cpu/cpu.cfs_quota_us"], files["cpu/cpu.cfs_period_us"]
    assert int(quota) == int(period) == 100000


# --- per-call timeout ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        pytest.param("sleep 100 & sleep 100 & sleep 200", id="children"),
        pytest.param('bash -c "sleep 100 & wait"', id="grandchild"),
    ],
)
async def test_timeout_kills_the_whole_process_tree(fresh: Sandbox, command: str) -> None:
    # wait_for is a hang guard: the tree is killed at 1 s, long before its sleeps end.
    result = await asyncio.wait_for(fresh.exec(command, timeout_s=1), 60)
    assert result.timed_out is True
    assert result.exit_code != 0
    assert await process_names(fresh) == ["python3"]  # only the agent is left

    message, record = await bash_tool(fresh, command, timeout_s=1)
    assert "[timed out after 1 s" in message.content
    assert record.timed_out is True
    assert record.error == "timeout"
    assert await process_names(fresh) == ["python3"]


async def test_background_leftovers_die_when_the_call_ends(fresh: Sandbox) -> None:
    # The call returns when its leader does (a hang guard, not a speed check).
    result = await asyncio.wait_for(fresh.exec("sleep 100 & echo started", timeout_s=60), 50)
    assert result.timed_out is False
    assert result.exit_code == 0
    assert result.stdout == "started\n"
    assert "sleep" not in await process_names(fresh)


async def test_a_process_that_leaves_the_session_dies_with_the_call(fresh: Sandbox) -> None:
    result = await fresh.exec("setsid sleep 100 > /dev/null 2>&1 & sleep 0.5", timeout_s=30)
    assert result.exit_code == 0
    assert "sleep" not in await process_names(fresh)


# --- output cap ----------------------------------------------------------------------------


async def test_stdout_capped_at_64_kib(shared: Sandbox) -> None:
    result = await sh(shared, "head -c 200000 /dev/zero | tr '\\0' a; echo small >&2")
    assert result.stdout == "a" * CAP
    assert result.stdout_truncated is True
    assert result.stdout_bytes == 200000
    assert result.stderr == "small\n"
    assert result.stderr_truncated is False
    assert result.stderr_bytes == 6

    message, record = await bash_tool(shared, "head -c 200000 /dev/zero | tr '\\0' a")
    assert message.content.startswith("a" * CAP + "\n")
    assert "[output truncated: stdout was 200000 bytes; only the first 65536 are shown]" in (
        message.content
    )
    assert "stderr was" not in message.content
    assert record.output_truncated is True


async def test_stderr_capped_independently(shared: Sandbox) -> None:
    result = await sh(shared, "head -c 200000 /dev/zero | tr '\\0' b >&2; echo small")
    assert result.stderr == "b" * CAP
    assert result.stderr_truncated is True
    assert result.stderr_bytes == 200000
    assert result.stdout == "small\n"
    assert result.stdout_truncated is False

    both = await sh(shared, "head -c 100000 /dev/zero | tr '\\0' c; head -c 90000 /dev/zero >&2")
    assert (both.stdout_bytes, both.stderr_bytes) == (100000, 90000)
    assert len(both.stdout) == len(both.stderr) == CAP
    assert both.stdout_truncated
    assert both.stderr_truncated

    message, record = await bash_tool(
        shared, "echo small; head -c 200000 /dev/zero | tr '\\0' b >&2"
    )
    assert message.content.startswith("small\n[stderr]\n" + "b" * CAP)
    assert "[output truncated: stderr was 200000 bytes; only the first 65536 are shown]" in (
        message.content
    )
    assert "stdout was" not in message.content
    assert record.output_truncated is True


async def test_cap_counts_bytes_of_multibyte_text(shared: Sandbox) -> None:
    result = await sh(shared, "python3 -c \"print('é' * 100000)\"")
    assert result.stdout_bytes == 200001
    assert result.stdout == "é" * (CAP // 2)
    assert result.stdout_truncated is True


async def test_binary_output_is_replaced_not_fatal(shared: Sandbox) -> None:
    result = await sh(shared, "printf 'ok\\xff\\xfe\\x00end'; printf 'e\\x80rr' >&2")
    assert result.exit_code == 0
    assert result.stdout == "ok\ufffd\ufffd\x00end"
    assert result.stderr == "e\ufffdrr"

    big = await sh(shared, "head -c 200000 /dev/urandom")
    assert big.exit_code == 0
    assert big.stdout_bytes == 200000
    assert big.stdout_truncated is True
    assert 0 < len(big.stdout) <= CAP

    message, record = await bash_tool(shared, "head -c 200000 /dev/urandom")
    assert "output truncated" in message.content
    assert record.output_truncated is True
    assert record.error == "output_truncated"

    alive = await sh(shared, "echo alive")
    assert alive.stdout == "alive\n"


# --- labels --------------------------------------------------------------------------------


async def test_labels_name_owner_and_episode(
    backend: DockerBackend, spec: SandboxSpec, docker_client: docker.DockerClient, owner: str
) -> None:
    episode = episode_id("labels")
    sandbox = await backend.create(spec, episode_id=episode)
    try:
        info = await inspect(docker_client, sandbox.id)
        found = info["Config"]["Labels"]
        assert found[labels.MANAGED] == "1"
        assert found[labels.OWNER] == owner
        assert found[labels.EPISODE] == episode
        assert found[labels.BOOT] == "tests"
        listed = await asyncio.to_thread(
            docker_client.containers.list, all=True, filters=labels.owner_filter(owner)
        )
        assert sandbox.id in {c.id for c in listed}
    finally:
        await sandbox.close()


# --- environment ---------------------------------------------------------------------------

_SANDBOX_ENV = {"PATH", "HOME", "LANG", "TERM", "PWD", "SHLVL", "_"}


async def test_server_environment_is_not_visible(
    backend: DockerBackend,
    spec: SandboxSpec,
    docker_client: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    canary_key = "EPISODE_RUNTIME_TEST_CANARY"
    canary_value = f"canary-{secrets.token_hex(8)}"
    monkeypatch.setenv(canary_key, canary_value)
    sandbox = await backend.create(spec, episode_id=episode_id("env"))
    try:
        result = await sh(sandbox, "env")
        keys = {line.split("=", 1)[0] for line in result.stdout.splitlines() if "=" in line}
        assert keys <= _SANDBOX_ENV, keys - _SANDBOX_ENV
        assert canary_value not in result.stdout
        for key in set(os.environ) - _SANDBOX_ENV:
            assert f"\n{key}=" not in "\n" + result.stdout, key

        py = await sandbox.exec("import os\nprint(sorted(os.environ))", timeout_s=15, kind="python")
        assert canary_key not in py.stdout

        pid1 = await sh(sandbox, "cat /proc/1/environ 2>/dev/null | tr '\\0' '\\n'; true")
        assert canary_value not in pid1.stdout

        info = await inspect(docker_client, sandbox.id)
        assert not any(canary_value in item for item in info["Config"]["Env"] or [])
    finally:
        await sandbox.close()


# --- no host paths -------------------------------------------------------------------------

_VIRTUAL_FS = {"overlay", "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2"}
_DOCKER_FILES = {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}
# gVisor's gofer serves the image's root filesystem and Docker's files over 9p (the root has
# no overlay inside the sandbox); every other mount there is one of gVisor's own.
_ROOT_FS = "9p" if GVISOR else "overlay"
_SERVED = _DOCKER_FILES | ({"/"} if GVISOR else set())
_HOST_DIR = str(Path(__file__).resolve().parent)  # a host path: this test file's directory


async def test_no_host_paths_mounted(shared: Sandbox, docker_client: docker.DockerClient) -> None:
    result = await sh(shared, "cat /proc/self/mountinfo")
    assert result.exit_code == 0
    mounts = []
    for line in result.stdout.splitlines():
        left, _, right = line.partition(" - ")
        mountpoint = left.split()[4]
        fstype = right.split()[0]
        mounts.append((mountpoint, fstype))
        if fstype not in _VIRTUAL_FS:
            assert mountpoint in _SERVED, line
            if GVISOR:
                assert fstype == "9p", line
    assert ("/", _ROOT_FS) in mounts
    assert ("/work", "tmpfs") in mounts

    sockets = await sh(
        shared,
        "for p in /var/run/docker.sock /run/docker.sock; do [ -e $p ] || [ -L $p ] && echo $p; "
        "done; true",
    )
    assert sockets.exit_code == 0
    assert sockets.stdout == "", sockets.stdout

    seen = await sh(shared, f"[ -e {_shell_quote(_HOST_DIR)} ] && echo visible; true")
    assert seen.stdout == "", _HOST_DIR

    info = await inspect(docker_client, shared.id)
    assert info["Mounts"] == []
    assert not info["HostConfig"]["Binds"]


# --- close ---------------------------------------------------------------------------------


async def _container_exists(client: docker.DockerClient, container_id: str) -> bool:
    try:
        await asyncio.to_thread(client.containers.get, container_id)
    except docker.errors.NotFound:
        return False
    return True


async def test_close_removes_the_container(
    backend: DockerBackend, spec: SandboxSpec, docker_client: docker.DockerClient
) -> None:
    sandbox = await backend.create(spec, episode_id=episode_id("close"))
    try:
        assert (await sh(sandbox, "echo up")).stdout == "up\n"
        assert await _container_exists(docker_client, sandbox.id)
    finally:
        await sandbox.close()
    for _ in range(150):
        if not await _container_exists(docker_client, sandbox.id):
            break
        await asyncio.sleep(0.1)
    assert not await _container_exists(docker_client, sandbox.id)

    await sandbox.close()  # a second close is harmless
    with pytest.raises(SandboxError):
        await sh(sandbox, "echo again")
    with pytest.raises(SandboxError):
        await sandbox.read_file("x", max_bytes=10)
    with pytest.raises(SandboxError):
        await sandbox.write_file("x", "y")


async def test_backend_close_removes_its_sandboxes(
    spec: SandboxSpec, docker_client: docker.DockerClient, owner: str
) -> None:
    other_owner = f"{owner}-closing"
    other = DockerBackend(owner=other_owner, boot_id="tests")
    try:
        sandboxes = [await other.create(spec, episode_id=episode_id(f"bk{i}")) for i in range(2)]
        assert all([(await sh(s, "echo up")).stdout == "up\n" for s in sandboxes])
        await other.close()
        assert await wait_until_gone(docker_client, other_owner) == []
    finally:
        for c in docker_client.containers.list(all=True, filters=labels.owner_filter(other_owner)):
            c.remove(force=True)


# --- one container per episode -------------------------------------------------------------


async def test_each_episode_gets_its_own_container(
    backend: DockerBackend, spec: SandboxSpec
) -> None:
    first = await backend.create(spec, episode_id=episode_id("one"))
    try:
        second = await backend.create(spec, episode_id=episode_id("two"))
        try:
            assert first.id != second.id
            written = await first.write_file("mine.txt", "first's secret")
            assert written.ok
            assert (await sh(first, "echo tmp > /tmp/mine")).exit_code == 0

            missing = await second.read_file("mine.txt", max_bytes=100)
            assert missing.ok is False
            listing = await sh(second, "find /work /tmp -mindepth 1")
            assert listing.exit_code == 0, listing
            assert "mine" not in listing.stdout
            assert "mine" in (await sh(first, "find /work /tmp -mindepth 1")).stdout
            assert (await first.read_file("mine.txt", max_bytes=100)).content == "first's secret"
        finally:
            await second.close()
    finally:
        await first.close()
