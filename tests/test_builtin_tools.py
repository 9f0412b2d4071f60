"""The built-in tools, called the way the model calls them: `execute_call` on a real sandbox.

Assertions are on the tool message the model reads, the call record kept in the trajectory, and
what is (not) left on the host.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from conftest import sandbox_spec

from runtime.sandbox.backend import Sandbox
from runtime.sandbox.docker_backend import DockerBackend
from runtime.sandbox.spec import SandboxSpec
from runtime.tools.builtin import BUILTIN_TOOLS, MAX_SOURCE_BYTES
from runtime.tools.context import ToolContext
from runtime.tools.executor import CallRecord, execute_call
from runtime.tools.messages import Message, ToolCall

CAP = 65536
TOOL_NAMES = "bash, python, read_file, submit, write_file"
RESTARTED = (
    "[the session was restarted: the next call starts fresh, without the previous working "
    "directory, variables or background jobs]"
)


def make_ctx(sandbox: Sandbox | None, *, timeout_s: float = 15.0, cap: int = CAP) -> ToolContext:
    return ToolContext(sandbox=sandbox, scratch={}, timeout_s=timeout_s, output_cap_bytes=cap)


async def call(
    ctx: ToolContext, name: str, arguments: dict[str, Any] | str
) -> tuple[Message, CallRecord]:
    """One model-written tool call; ``arguments`` is JSON-encoded unless already a string."""
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    call_id = f"call-{secrets.token_hex(3)}"
    message, record = await execute_call(
        ToolCall(id=call_id, name=name, arguments=raw), BUILTIN_TOOLS, ctx
    )
    assert message.role == "tool"
    assert message.tool_call_id == record.tool_call_id == call_id
    assert message.name == record.name == name
    assert isinstance(message.content, str)
    return message, record


async def content(ctx: ToolContext, name: str, arguments: dict[str, Any] | str) -> str:
    message, _ = await call(ctx, name, arguments)
    assert message.content is not None
    return message.content


@pytest.fixture(scope="module")
async def sandbox(backend: DockerBackend) -> AsyncIterator[Sandbox]:
    """One sandbox shared by the tests that only run commands and touch files in /work."""
    instance = await backend.create(sandbox_spec(), episode_id=f"tools-{secrets.token_hex(3)}")
    try:
        yield instance
    finally:
        await instance.close()


@pytest.fixture
def ctx(sandbox: Sandbox) -> ToolContext:
    return make_ctx(sandbox)


@pytest.fixture
async def own_sandbox(backend: DockerBackend, spec: SandboxSpec) -> AsyncIterator[Sandbox]:
    """A sandbox of its own, for tests that kill it or change its sessions' state."""
    instance = await backend.create(spec, episode_id=f"tools-kill-{secrets.token_hex(3)}")
    try:
        yield instance
    finally:
        await instance.close()


# --- bash and python -----------------------------------------------------------------------


async def test_bash_output(ctx: ToolContext) -> None:
    message, record = await call(ctx, "bash", {"command": "echo hello; echo oops >&2; pwd"})
    assert message.content == "hello\n/work\n[stderr]\noops"
    assert record.exit_code == 0
    assert record.error is None
    assert record.timed_out is False
    assert record.ends_episode is False


async def test_bash_without_output(ctx: ToolContext) -> None:
    assert await content(ctx, "bash", {"command": "true"}) == "(no output)"


async def test_bash_nonzero_exit(ctx: ToolContext) -> None:
    message, record = await call(ctx, "bash", {"command": "echo partial; (exit 3)"})
    assert message.content == "partial\n[exit code: 3]"
    assert record.exit_code == 3
    assert record.error == "nonzero_exit"
    assert record.ends_episode is False

    assert await content(ctx, "bash", {"command": "false"}) == "[exit code: 1]"


async def test_bash_exit_restarts_the_session(ctx: ToolContext) -> None:
    message, record = await call(ctx, "bash", {"command": "echo partial; exit 3"})
    assert message.content == f"partial\n[exit code: 3]\n{RESTARTED}"
    assert record.exit_code == 3
    assert record.error == "nonzero_exit"
    assert await content(ctx, "bash", {"command": "echo back"}) == "back"


async def test_bash_killed_by_signal(ctx: ToolContext) -> None:
    message, record = await call(ctx, "bash", {"command": "kill -9 $$"})
    assert message.content == f"[killed by signal 9]\n{RESTARTED}"
    assert record.exit_code == -9
    assert await content(ctx, "bash", {"command": "echo back"}) == "back"


async def test_bash_timeout_message(sandbox: Sandbox) -> None:
    message, record = await call(make_ctx(sandbox, timeout_s=1), "bash", {"command": "sleep 60"})
    assert message.content == (
        "[timed out after 1 s: the command and every process it started were killed]\n" + RESTARTED
    )
    assert record.timed_out is True
    assert record.error == "timeout"
    assert record.duration_s < 10


async def test_bash_session_keeps_state_until_restarted(own_sandbox: Sandbox) -> None:
    ctx = make_ctx(own_sandbox, timeout_s=1)
    assert await content(ctx, "bash", {"command": "cd /tmp; export FOO=bar; x=1"}) == (
        "(no output)"
    )
    assert await content(ctx, "bash", {"command": "pwd; echo $FOO $x"}) == "/tmp\nbar 1"

    # Background jobs outlive their call, and die with the session.
    await call(ctx, "bash", {"command": "sleep 100 &"})
    assert "sleep" in await content(ctx, "bash", {"command": "ps -eo comm"})
    message, record = await call(ctx, "bash", {"command": "sleep 30"})
    assert record.timed_out is True
    assert message.content.endswith(RESTARTED)

    after = await content(ctx, "bash", {"command": 'pwd; echo "[$FOO$x]"; ps -eo comm'})
    assert after.startswith("/work\n[]\n")
    assert "sleep" not in after


async def test_python_session_keeps_state(own_sandbox: Sandbox) -> None:
    ctx = make_ctx(own_sandbox, timeout_s=2)
    assert await content(ctx, "python", {"code": "import math\nx = 5"}) == "(no output)"
    assert await content(ctx, "python", {"code": "x * 2"}) == "10"  # echoed like a REPL
    assert await content(ctx, "python", {"code": "print(math.pi > 3)\nNone"}) == "True"

    message, record = await call(ctx, "python", {"code": "import sys\nsys.exit(4)"})
    assert message.content == "[exit code: 4]"
    assert record.exit_code == 4
    assert await content(ctx, "python", {"code": "x"}) == "5"  # sys.exit kept the session

    message, record = await call(ctx, "python", {"code": "while True:\n    pass"})
    assert record.timed_out is True
    assert message.content.endswith(RESTARTED)
    message, _ = await call(ctx, "python", {"code": "x"})
    assert "NameError: name 'x' is not defined" in message.content


async def test_state_persists_between_calls(ctx: ToolContext) -> None:
    name = f"state-{secrets.token_hex(3)}"
    await call(ctx, "bash", {"command": f"echo kept > {name}"})
    assert await content(ctx, "bash", {"command": f"cat /work/{name}"}) == "kept"


async def test_python_prints(ctx: ToolContext) -> None:
    message, record = await call(
        ctx, "python", {"code": "import sys\nprint(6 * 7)\nprint(sys.version_info[0])"}
    )
    assert message.content == "42\n3"
    assert record.exit_code == 0
    assert record.error is None


async def test_python_exception_is_readable(ctx: ToolContext) -> None:
    message, record = await call(ctx, "python", {"code": "print('before')\n1 / 0"})
    assert message.content.startswith("before\n[stderr]\nTraceback (most recent call last):")
    assert "ZeroDivisionError: division by zero" in message.content
    assert message.content.endswith("[exit code: 1]")
    assert record.error == "nonzero_exit"


async def test_python_reads_stdin_as_empty(ctx: ToolContext) -> None:
    assert await content(ctx, "python", {"code": "import sys\nprint(repr(sys.stdin.read()))"}) == (
        "''"
    )


async def test_python_syntax_error_shows_only_the_cell(ctx: ToolContext) -> None:
    message, record = await call(ctx, "python", {"code": "def f(:"})
    assert "SyntaxError" in message.content
    assert 'File "<cell>", line 1' in message.content
    assert record.error == "nonzero_exit"
    assert "ast.py" not in message.content, message.content


async def test_python_sys_exit_with_a_message(ctx: ToolContext) -> None:
    message, record = await call(ctx, "python", {"code": "import sys\nsys.exit('bad input')"})
    assert record.exit_code == 1
    assert message.content == "[stderr]\nbad input\n[exit code: 1]"


# --- files ---------------------------------------------------------------------------------


async def test_write_then_read_round_trip(ctx: ToolContext) -> None:
    top = f"nest-{secrets.token_hex(4)}"
    path = f"{top}/a/b/c/notes.txt"
    text = "line one\nünïcødé ✓ 🚀\n\ttabbed\n"
    message, record = await call(ctx, "write_file", {"path": path, "content": text})
    assert message.content == f"wrote {len(text.encode())} bytes to {path}"
    assert record.error is None

    assert await content(ctx, "read_file", {"path": path}) == text
    assert await content(ctx, "read_file", {"path": f"/work/{path}"}) == text
    assert await content(ctx, "bash", {"command": f"cat {path}"}) == text.rstrip("\n")

    overwritten = await content(ctx, "write_file", {"path": path, "content": "short"})
    assert overwritten == f"wrote 5 bytes to {path}"
    assert await content(ctx, "read_file", {"path": path}) == "short"

    # Nothing of it exists on the host (the host also has a /work directory).
    on_host = await asyncio.to_thread(lambda: [Path("/work", top).exists(), Path(top).exists()])
    assert on_host == [False, False]


async def test_read_empty_file(ctx: ToolContext) -> None:
    name = f"empty-{secrets.token_hex(3)}.txt"
    assert await content(ctx, "write_file", {"path": name, "content": ""}) == (
        f"wrote 0 bytes to {name}"
    )
    assert await content(ctx, "read_file", {"path": name}) == "(empty file)"


async def test_read_file_truncated_at_the_cap(sandbox: Sandbox) -> None:
    ctx = make_ctx(sandbox, cap=1024)
    name = f"big-{secrets.token_hex(3)}.txt"
    await call(ctx, "write_file", {"path": name, "content": "x" * 5000})
    message, record = await call(ctx, "read_file", {"path": name})
    assert message.content == (
        "x" * 1024 + "\n[output truncated: the file is 5000 bytes; only the first 1024 are shown]"
    )
    assert record.output_truncated is True


async def test_read_missing_file(ctx: ToolContext) -> None:
    message, record = await call(ctx, "read_file", {"path": "no/such/file.txt"})
    assert message.content == "error: No such file or directory: no/such/file.txt"
    assert record.error == "tool_error"
    assert record.ends_episode is False


async def test_read_a_directory(ctx: ToolContext) -> None:
    message, _ = await call(ctx, "read_file", {"path": "."})
    assert message.content == "error: not a regular file: ."


@pytest.mark.parametrize(
    "path",
    ["../../etc/passwd", "/etc/passwd", "link-to-passwd", "link-to-etc/passwd", "a/../../tmp/x"],
)
async def test_paths_outside_the_work_dir_are_refused(ctx: ToolContext, path: str) -> None:
    setup = "ln -sfn /etc/passwd /work/link-to-passwd; ln -sfn /etc /work/link-to-etc"
    assert await content(ctx, "bash", {"command": setup}) == "(no output)"

    message, record = await call(ctx, "read_file", {"path": path})
    assert message.content == "error: path is outside the work directory /work"
    assert "root:" not in message.content
    assert record.error == "tool_error"

    message, record = await call(ctx, "write_file", {"path": path, "content": "pwned"})
    assert message.content == "error: path is outside the work directory /work"
    assert record.error == "tool_error"
    # Every target above resolves to /etc/passwd or /tmp/x: neither holds what was written.
    passwd = await content(
        ctx, "bash", {"command": "head -1 /etc/passwd; grep -s pwned /etc/passwd /tmp/x; true"}
    )
    assert passwd.startswith("root:")
    assert "pwned" not in passwd


async def test_bash_lists_and_stats_files(ctx: ToolContext) -> None:
    """coreutils' `ls` and `stat` work under both runtimes (under gVisor through the images'
    statx shim: runsc 20221219 rejects the AT_NO_AUTOMOUNT flag that coreutils 9.1 passes)."""
    name = f"listed-{secrets.token_hex(3)}.txt"
    await call(ctx, "write_file", {"path": name, "content": "12345"})
    message, record = await call(
        ctx, "bash", {"command": f"ls /work; ls -l {name}; stat -c %s /work/{name}"}
    )
    assert record.exit_code == 0, message.content
    assert message.content.count(name) == 2, message.content
    assert message.content.endswith("\n5"), message.content

    message, record = await call(
        ctx,
        "bash",
        {
            "command": '(cd "$(mktemp -d)" && mkdir sub && touch sub/f && ln -s sub/f link && '
            "ls -la sub && stat -c '%F %s' link sub/f && ls -lL link && du -s sub >/dev/null && "
            "cp -a sub copy && mv copy moved && rm -r moved && ls -d sub && echo listed)"
        },
    )
    assert record.exit_code == 0, message.content
    assert "symbolic link 5" in message.content
    assert "regular empty file 0" in message.content
    assert message.content.endswith("sub\nlisted"), message.content


async def test_git_in_normal_use(ctx: ToolContext) -> None:
    """git's everyday commands work in the sandbox under both runtimes."""
    script = (
        '(set -e; cd "$(mktemp -d)"; git init -q -b main r; cd r; '
        "git config user.email m@example.com; git config user.name model; "
        "echo one > a.txt; git add a.txt; git commit -qm first; "
        "git checkout -qb topic; echo two >> a.txt; git commit -qam second; "
        "git checkout -q main; git merge -q --ff-only topic; git status --short; "
        "git log --oneline | wc -l; git diff HEAD~1 --stat | tail -1; ls -l a.txt | cut -c1-10)"
    )
    message, record = await call(ctx, "bash", {"command": script})
    assert record.exit_code == 0, message.content
    lines = message.content.splitlines()
    assert lines[0] == "2", message.content
    assert "1 file changed, 1 insertion(+)" in lines[1], message.content
    assert lines[2] == "-rw-r--r--", message.content


async def test_symlink_inside_the_work_dir_is_followed(ctx: ToolContext) -> None:
    name = f"target-{secrets.token_hex(3)}"
    await call(ctx, "write_file", {"path": f"{name}.txt", "content": "inside"})
    await call(ctx, "bash", {"command": f"ln -s /work/{name}.txt {name}.lnk"})
    assert await content(ctx, "read_file", {"path": f"{name}.lnk"}) == "inside"


# --- the model's mistakes ------------------------------------------------------------------


async def test_unknown_tool(ctx: ToolContext) -> None:
    message, record = await call(ctx, "run_shell", {"command": "ls"})
    assert message.content == f"unknown tool 'run_shell'; the available tools are: {TOOL_NAMES}"
    assert record.error == "unknown_tool"
    assert record.ends_episode is False


async def test_arguments_not_json(ctx: ToolContext) -> None:
    message, record = await call(ctx, "bash", "{command: ls")
    assert "not valid JSON" in message.content
    assert "{command: ls" in message.content
    assert "Tool 'bash' expects a JSON object with: command (string, required)." in (
        message.content
    )
    assert record.error == "invalid_arguments"


async def test_arguments_not_an_object(ctx: ToolContext) -> None:
    message, record = await call(ctx, "bash", '["ls"]')
    assert "arguments must be a JSON object, got a JSON array" in message.content
    assert record.error == "invalid_arguments"


async def test_missing_argument(ctx: ToolContext) -> None:
    message, record = await call(ctx, "write_file", {"path": "x.txt"})
    assert "missing required argument(s) 'content'" in message.content
    assert "path (string, required), content (string, required)" in message.content
    assert record.error == "invalid_arguments"
    assert "x.txt" not in await content(ctx, "bash", {"command": "ls"})


async def test_extra_argument(ctx: ToolContext) -> None:
    message, record = await call(ctx, "bash", {"command": "echo hi", "timeout": 5})
    assert "unknown argument(s) 'timeout'; valid arguments are: 'command'" in message.content
    assert record.error == "invalid_arguments"


async def test_wrongly_typed_argument(ctx: ToolContext) -> None:
    message, record = await call(ctx, "bash", {"command": ["echo", "hi"]})
    assert "argument 'command': Input should be a valid string" in message.content
    assert record.error == "invalid_arguments"


async def test_tool_without_a_sandbox() -> None:
    message, record = await call(make_ctx(None), "bash", {"command": "echo hi"})
    assert message.content == "error: this environment has no sandbox, so this tool cannot run"
    assert record.error == "tool_error"


# --- submit --------------------------------------------------------------------------------


async def test_submit_ends_the_episode(ctx: ToolContext) -> None:
    message, record = await call(ctx, "submit", {"answer": "42"})
    assert message.content == "answer submitted"
    assert ctx.submitted is True
    assert ctx.submission == "42"
    assert record.ends_episode is True
    assert record.error is None


# --- oversized sources ---------------------------------------------------------------------


async def test_command_above_128_kib_is_a_clear_error(ctx: ToolContext) -> None:
    command = "echo " + "x" * (128 * 1024)
    message, record = await call(ctx, "bash", {"command": command})
    size = len(command)
    assert message.content == (
        f"error: the command is {size} bytes, above the 131072-byte limit; "
        "write long programs to a file with write_file and run the file instead"
    )
    assert record.error == "tool_error"
    assert record.ends_episode is False

    code = "print(1)\n" + "#" * (200 * 1024)
    message, record = await call(ctx, "python", {"code": code})
    assert message.content.startswith(f"error: the program is {len(code)} bytes, above")
    assert record.error == "tool_error"

    # The sandbox is unharmed, and the largest allowed command does run.
    largest = "echo ok #" + "x" * (MAX_SOURCE_BYTES - len("echo ok #"))
    assert len(largest.encode()) == MAX_SOURCE_BYTES
    assert await content(ctx, "bash", {"command": largest}) == "ok"


async def test_long_program_through_a_file(ctx: ToolContext) -> None:
    name = f"long-{secrets.token_hex(3)}.py"
    program = "total = 0\n" + "total += 1\n" * 20000 + "print(total)\n"
    assert len(program.encode()) > MAX_SOURCE_BYTES
    await call(ctx, "write_file", {"path": name, "content": program})
    assert await content(ctx, "bash", {"command": f"python3 {name}"}) == "20000"


async def test_lone_surrogate_in_a_command(ctx: ToolContext) -> None:
    message, record = await call(ctx, "bash", '{"command": "echo before \\ud800 after"}')
    assert "UnicodeEncodeError" not in message.content
    assert record.error is None
    assert message.content.startswith("before ")


# --- a sandbox that died -------------------------------------------------------------------


async def _kill(client: docker.DockerClient, container_id: str) -> None:
    container = await asyncio.to_thread(client.containers.get, container_id)
    await asyncio.to_thread(container.kill)


async def test_sandbox_killed_from_outside(
    own_sandbox: Sandbox, docker_client: docker.DockerClient
) -> None:
    ctx = make_ctx(own_sandbox)
    assert await content(ctx, "bash", {"command": "echo up"}) == "up"
    await _kill(docker_client, own_sandbox.id)

    for name, arguments in [
        ("bash", {"command": "echo hi"}),
        ("python", {"code": "print(1)"}),
        ("read_file", {"path": "x.txt"}),
        ("write_file", {"path": "x.txt", "content": "x"}),
    ]:
        message, record = await call(ctx, name, arguments)
        assert message.content.startswith("sandbox error"), message.content
        assert "The sandbox cannot run further tool calls." in message.content
        assert "out-of-memory" not in message.content, message.content
        assert record.error == "sandbox_error"
        assert record.ends_episode is True

    # Closing still removes the stopped container from the host.
    await own_sandbox.close()
    with pytest.raises(docker.errors.NotFound):
        await asyncio.to_thread(docker_client.containers.get, own_sandbox.id)


async def test_kill_after_an_earlier_oom_is_not_reported_as_oom(
    own_sandbox: Sandbox, docker_client: docker.DockerClient
) -> None:
    ctx = make_ctx(own_sandbox)
    oom, record = await call(ctx, "python", {"code": "b = bytearray(600 * 1024 * 1024)"})
    assert "out of memory" in oom.content
    assert record.error == "out_of_memory"
    assert await content(ctx, "bash", {"command": "echo still up"}) == "still up"

    await _kill(docker_client, own_sandbox.id)
    message, record = await call(ctx, "bash", {"command": "echo hi"})
    assert message.content.startswith("sandbox error")
    assert record.error == "sandbox_error"
    assert "out of memory" not in message.content, message.content
