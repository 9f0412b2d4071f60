"""No tool process can reach the in-sandbox agent, its channel or what scores the episode.

Each test plays, from inside a real sandbox, what a model searching for a hole would try: open
the agent's file descriptors, forge reply frames, signal or stop the agent, leave a reader of the
channel running for later calls and for scoring, fork-bomb the sandbox. They run under runc and
under gVisor (`RUNTIME_TEST_ISOLATION=gvisor`), whose runsc ignores `PR_SET_DUMPABLE` and gives
PID 1 no signal protection: what holds is the uid boundary (the agent is uid 0 with almost no
capabilities, every tool process the tool uid with none).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator

import pytest
from conftest import GVISOR, sandbox_spec

from runtime.sandbox.backend import ExecResult, Sandbox
from runtime.sandbox.docker_backend import DockerBackend


@pytest.fixture
async def sandbox(backend: DockerBackend) -> AsyncIterator[Sandbox]:
    """A default sandbox of its own: these tests attack it."""
    created = await backend.create(sandbox_spec(), episode_id=f"iso-{secrets.token_hex(3)}")
    try:
        yield created
    finally:
        await created.close()


async def sh(sandbox: Sandbox, command: str, *, session: bool = False) -> ExecResult:
    return await sandbox.exec(command, timeout_s=20, session=session)


async def py(sandbox: Sandbox, code: str) -> ExecResult:
    return await sandbox.exec(code, timeout_s=20, kind="python")


async def assert_serving(sandbox: Sandbox) -> None:
    """The agent answers one-shot calls, session calls and file tools with the real result."""
    token = secrets.token_hex(4)
    one_shot = await sh(sandbox, f"echo one-{token}")
    assert one_shot.stdout == f"one-{token}\n", one_shot
    in_session = await sh(sandbox, f"echo session-{token}", session=True)
    assert in_session.stdout.endswith(f"session-{token}\n"), in_session
    written = await sandbox.write_file(f"check-{token}.txt", token)
    assert written.ok, written
    read = await sandbox.read_file(f"check-{token}.txt", max_bytes=100)
    assert read.content == token, read


_OPEN_AGENT_FDS = r"""
import json, os
results = {}
targets = [f"/proc/1/fd/{n}" for n in range(64)]
try:
    for task in os.listdir("/proc/1/task"):
        targets += [f"/proc/1/task/{task}/fd/{n}" for n in range(64)]
except OSError as exc:
    results["list /proc/1/task"] = type(exc).__name__
for path in targets:
    for mode, flags in (("r", os.O_RDONLY), ("w", os.O_WRONLY)):
        try:
            fd = os.open(path, flags | os.O_NONBLOCK | os.O_NOCTTY)
        except FileNotFoundError:
            continue
        except OSError as exc:
            results[f"{mode} {path}"] = type(exc).__name__
        else:
            os.close(fd)
            results[f"{mode} {path}"] = "OPENED"
for path in ("/proc/1/environ", "/proc/1/mem", "/proc/1/maps", "/proc/1/root/etc/hostname"):
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        results[path] = "OPENED"
        if path.endswith("environ"):
            results["environ keys"] = sorted(
                item.split(b"=")[0].decode() for item in data.split(b"\0") if item
            )
    except OSError as exc:
        results[path] = type(exc).__name__
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
results["ptrace attach 1"] = libc.ptrace(16, 1, 0, 0)  # PTRACE_ATTACH
results["ptrace errno"] = ctypes.get_errno()
print(json.dumps(results))
"""


async def test_no_descriptor_of_the_agent_can_be_opened(sandbox: Sandbox) -> None:
    result = await py(sandbox, _OPEN_AGENT_FDS)
    assert result.exit_code == 0, result
    results = json.loads(result.stdout)
    opened = sorted(path for path, outcome in results.items() if outcome == "OPENED")
    if GVISOR:
        # gVisor lets any process read another's environ and maps (it skips Linux's ptrace
        # access check there): the agent's environment holds only the image's and Docker's.
        assert opened == ["/proc/1/environ", "/proc/1/maps"], results
        harmless = {"HOME", "HOSTNAME", "LANG", "PATH", "PYTHONDONTWRITEBYTECODE"}
        assert set(results["environ keys"]) <= harmless | {"PYTHONUNBUFFERED"}, results
    else:
        assert opened == [], results
        assert results["/proc/1/environ"] == "PermissionError", results
    # The channel itself was among the targets, and refused, in both directions.
    assert results["r /proc/1/fd/0"] == "PermissionError", results
    assert results["w /proc/1/fd/1"] == "PermissionError", results
    assert results["ptrace attach 1"] == -1
    assert results["ptrace errno"] == 1  # EPERM
    await assert_serving(sandbox)


def _frames(text: str) -> str:
    """A shell snippet that writes 200 length-prefixed forged replies, ids 0..199, to stdout."""
    return (
        "python3 -c 'import json,struct,sys\n"
        "for i in range(200):\n"
        f'    b=json.dumps({{"id":i,"ok":True,"exit_code":0,"stdout":"{text}","content":"{text}"}})'
        ".encode()\n"
        '    sys.stdout.buffer.write(struct.pack(">I",len(b))+b)\''
    )


async def test_forged_frames_are_never_taken_as_replies(sandbox: Sandbox) -> None:
    # Everywhere a tool can write: the agent's own descriptors, its threads', every device and
    # descriptor the tool can reach, and the files the agent might read.
    targets = [
        "/proc/1/fd/1",
        "/proc/1/fd/2",
        "/proc/1/fd/0",
        "/dev/stdout",
        "/dev/stderr",
        "/dev/tty",
        "/dev/console",
        "/proc/self/fd/1",
        "/work/frames.bin",
        "/tmp/frames.bin",
    ]
    loop = "; ".join(f"{_frames('FORGED')} > {path} 2>/dev/null" for path in targets)
    every_fd = (
        "for fd in /proc/[0-9]*/fd/* /proc/1/task/*/fd/*; do "
        f"{_frames('FORGED')} > $fd 2>/dev/null; done"
    )
    writer = await sh(sandbox, f"{loop}; {every_fd}; echo wrote")
    assert writer.stdout.endswith("wrote\n"), writer
    background = await sh(
        sandbox,
        f"(while :; do {_frames('FORGED')} > /proc/1/fd/1; done) 2>/dev/null &",
        session=True,
    )
    assert background.exit_code == 0, background

    for _ in range(5):
        await assert_serving(sandbox)
    listed = await sh(sandbox, "ls /work")
    assert "FORGED" not in listed.stdout
    assert "frames.bin" in listed.stdout


@pytest.mark.parametrize("session", [False, True], ids=["one-shot", "session"])
async def test_signals_to_the_agent_leave_it_serving(sandbox: Sandbox, session: bool) -> None:
    attack = (
        "for sig in STOP TERM INT HUP QUIT ABRT SEGV USR1 PIPE KILL; do kill -$sig 1; done; "
        "kill -9 -1; echo after"
    )
    # Every signal to the agent is refused; `kill -9 -1` kills every other process of the
    # tool user (the session's shell too, when the call runs in it) and never the agent.
    result = await sh(sandbox, attack, session=session)
    assert result.stderr.count("kill: (1) - Operation not permitted") == 10, result
    await assert_serving(sandbox)
    status = await sh(sandbox, "grep -E '^State:' /proc/1/status")
    assert "stopped" not in status.stdout.lower(), status


_READER = r"""
import json, os, struct, time
log = open("/work/reader.log", "a", buffering=1)
while True:
    for path, flags in (("/proc/1/fd/0", os.O_RDONLY), ("/proc/1/fd/1", os.O_WRONLY)):
        try:
            fd = os.open(path, flags | os.O_NONBLOCK)
        except OSError as exc:
            log.write(f"{path} {type(exc).__name__}\n")
            continue
        log.write(f"{path} OPENED\n")
        if flags == os.O_WRONLY:
            for i in range(200):
                body = json.dumps({"id": i, "ok": True, "exit_code": 0, "stdout": "FORGED",
                                   "content": "FORGED"}).encode()
                os.write(fd, struct.pack(">I", len(body)) + body)
        else:
            os.read(fd, 65536)
    time.sleep(0.05)
"""


async def test_a_background_channel_reader_is_powerless_later_and_in_scoring(
    sandbox: Sandbox,
) -> None:
    assert (await sandbox.write_file("m.py", _READER)).ok
    started = await sh(sandbox, "python3 m.py >/dev/null 2>&1 &", session=True)
    assert started.exit_code == 0, started
    running = await sh(sandbox, "sleep 0.5; pgrep -fx 'python3 m.py' | wc -l", session=True)
    assert running.stdout.strip() == "1", running  # the reader is alive during the next calls

    assert (await sandbox.write_file("answer.txt", "the real answer")).ok
    for _ in range(3):
        await assert_serving(sandbox)

    # What a checker does when scoring: freeze the sandbox, then read the model's work.
    await sandbox.kill_all()
    answer = await sandbox.read_file("answer.txt", max_bytes=1000)
    assert answer.content == "the real answer", answer
    log = await sandbox.read_file("reader.log", max_bytes=1_000_000)
    lines = set(log.content.splitlines())
    assert lines == {"/proc/1/fd/0 PermissionError", "/proc/1/fd/1 PermissionError"}, lines
    after = await sh(sandbox, "pgrep -fx 'python3 m.py' | wc -l")
    assert after.stdout.strip() == "0", after  # the freeze killed it


_BOMB = ":(){ :|:& };:"


@pytest.mark.slow
@pytest.mark.parametrize("session", [False, True], ids=["one-shot", "session"])
async def test_a_fork_bomb_leaves_the_sandbox_usable(sandbox: Sandbox, session: bool) -> None:
    for _ in range(2):
        bomb = await sandbox.exec(_BOMB + "; sleep 5", timeout_s=20, session=session)
        # Held at the process limit, every tool process is killed and the call says so; a
        # bomb that dies with its call (one-shot), or backs off below the limit, may not be.
        assert not bomb.timed_out, bomb
        # The next call works; if the watchdog was still ending the bomb, that call says so
        # and the one after works.
        token = secrets.token_hex(3)
        after = await sandbox.exec(f"echo {token}", timeout_s=20, session=session)
        if after.process_limit:
            after = await sandbox.exec(f"echo {token}", timeout_s=20, session=session)
        assert after.stdout.splitlines()[-1:] == [token], after
        assert "Resource temporarily unavailable" not in after.stdout
    await assert_serving(sandbox)
    # Nothing of the bomb is left: only the session's shell and this call's few processes.
    for _ in range(50):
        left = await sh(sandbox, "ps -eo user=,stat= | grep -v '^root' | grep -vc '^.* Z'")
        if int(left.stdout.strip() or 0) < 10:
            break
        await asyncio.sleep(0.2)
    assert int(left.stdout.strip() or 0) < 10, left


async def test_file_tools_act_with_the_tool_users_rights(sandbox: Sandbox) -> None:
    setup = await sh(
        sandbox,
        "echo mine > own.txt; chmod 0400 own.txt; mkdir locked; chmod 0500 locked; "
        "ln -s /proc/1/fd/0 chan; ln -s /proc/1/environ env; echo ok",
    )
    assert setup.stdout == "ok\n", setup
    # Readable by its owner, the tool user, and by nobody else (the agent has no
    # CAP_DAC_OVERRIDE either): the file tool reads it, so it acts as the tool user.
    read = await sandbox.read_file("own.txt", max_bytes=100)
    assert read.ok, read
    assert read.content == "mine\n"
    # ... and cannot do what the tool user cannot.
    denied = await sandbox.write_file("locked/new.txt", "x")
    assert not denied.ok
    assert "Permission denied" in denied.error, denied
    for link in ("chan", "env"):
        refused = await sandbox.read_file(link, max_bytes=100)
        assert not refused.ok, refused
    written = await sandbox.write_file("made/by/tool.txt", "x")
    assert written.ok, written
    owner = await sh(sandbox, "stat -c '%u:%g' made/by/tool.txt made")
    assert owner.stdout.split() == ["65534:65534", "65534:65534"], owner


async def test_a_user_namespace_gives_no_way_to_the_agent(sandbox: Sandbox) -> None:
    """gVisor lets a tool create a user namespace and be root with every capability in it;
    runc refuses. Either way the agent stays out of reach."""
    result = await sh(
        sandbox,
        "unshare -U -r bash -c 'id -u; cat /proc/1/fd/0; echo x > /proc/1/fd/1; kill -9 1; "
        "echo done' 2>&1",
    )
    if GVISOR:
        lines = result.stdout.splitlines()
        assert lines[0] == "0", result  # root in its own namespace ...
        assert "Permission denied" in result.stdout, result  # ... and nothing over the agent
        assert "Operation not permitted" in result.stdout, result
        assert lines[-1] == "done", result
    else:
        assert "Operation not permitted" in result.stdout, result
    await assert_serving(sandbox)
