"""The shell_tasks framework: a task's setup, its checker, and the probes checkers inspect with.

A checker treats everything in the model's sandbox as data. It runs after every process of the
model was killed (`Probe.freeze`), inspects with one-shot commands by absolute path
(`/usr/bin/python3 -I -S`, so nothing in /work or $HOME is imported), reads files and trees
without following symlinks, reads git only from copied objects in a *fresh* sandbox with every
config source pinned (`gitview`), and runs scripts the model wrote in a fresh sandbox on inputs
it makes itself.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import secrets
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runtime.env import EpisodeContext
from runtime.errors import CommandNotRunError, SandboxError
from runtime.sandbox.backend import ExecResult, Sandbox

if TYPE_CHECKING:
    from .gitview import GitView

PYTHON = "/usr/bin/python3 -I -S"
"""How checkers run Python in a sandbox: isolated, without site, never importing from /work."""
SETUP_MARK = "@@"
"""Setup stdout lines ``@@key=value`` are recorded in ``expected["setup"]``."""
MAX_READ_BYTES = 32 << 10
"""Largest file a checker reads (answers, scripts, configs are far smaller)."""
SCRIPT_TIMEOUT_S = 10.0
"""Time one run of a script under test may take in the fresh sandbox."""

SNAPSHOT = r"""
import hashlib, json, os, stat, sys
root, limit, budget = sys.argv[1], 2000, 64 << 20
out, todo, complete = {}, [""], True
while todo:
    if len(out) >= limit:
        complete = False
        break
    rel = todo.pop()
    full = os.path.join(root, rel) if rel else root
    try:
        st = os.lstat(full)
    except OSError:
        continue
    mode = st.st_mode
    kind = "d" if stat.S_ISDIR(mode) else "f" if stat.S_ISREG(mode) else "o"
    kind = "l" if stat.S_ISLNK(mode) else kind
    entry = {"t": kind, "m": stat.S_IMODE(mode), "s": st.st_size, "mt": int(st.st_mtime)}
    if kind == "f":
        digest = hashlib.sha256()
        try:
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    budget -= len(chunk)
                    if budget < 0:
                        complete = False
                        break
                    digest.update(chunk)
            entry["h"] = digest.hexdigest()
        except OSError:
            entry["h"] = None
    elif kind == "l":
        entry["to"] = os.readlink(full)
    elif kind == "d":
        try:
            todo.extend(os.path.join(rel, name) for name in os.listdir(full))
        except OSError:
            entry["unreadable"] = True
    out[rel or "."] = entry
print(json.dumps({"entries": out, "complete": complete and not todo}))
"""
"""Lists a tree without following symlinks: type, permission bits, size, mtime, and the sha256
of every regular file's whole content."""

READ = r"""
import base64, json, os, stat, sys
root, rel, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
parts = [p for p in rel.split("/") if p not in ("", ".")]
def answer(**kw):
    print(json.dumps(kw))
    sys.exit(0)
if not parts or ".." in parts:
    answer(error="bad path")
try:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    for part in parts[:-1]:
        nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        os.close(fd)
        fd = nxt
    leaf = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    os.close(fd)
    info = os.fstat(leaf)
    if not stat.S_ISREG(info.st_mode):
        answer(error="not a regular file")
    with os.fdopen(leaf, "rb") as handle:
        data = handle.read(limit + 1)
except OSError as exc:
    answer(error=exc.strerror or str(exc))
if len(data) > limit:
    answer(error="too large")
answer(data=base64.b64encode(data).decode())
"""
"""Reads one regular file below a root: no symlink anywhere on the path, no FIFO, size-capped."""

CHUNK = r"""
import base64, os, sys
path, offset, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
with os.fdopen(fd, "rb") as handle:
    handle.seek(offset)
    sys.stdout.write(base64.b64encode(handle.read(size)).decode())
"""
"""Prints one base64 slice of a file: how checkers fetch more than one call's output cap."""

MAX_FETCH_BYTES = 8 << 20

FREEZE = r"""
import os, signal, time
me, uid = os.getpid(), os.getuid()

def real_uid(pid):
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None

for attempt in range(100):
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass
    alive = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in (1, me) or real_uid(name) != uid:
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in (b"Z", b"X"):
            alive.append(name)
    if not alive:
        print("FROZEN", attempt)
        break
    time.sleep(0.02)
else:
    print("ALIVE", " ".join(alive))
"""
"""Kills every process of the tool user but itself, until none of that uid is left (by the
real uid in /proc/PID/status, which a non-dumpable process cannot hide); run with ``exec`` so
that it has no shell parent to kill. The agent's own `kill_all` runs first."""


class UncheckableError(RuntimeError):
    """The state cannot be checked because of something the model did (a script under test
    that broke its fresh sandbox, a path it turned into a symlink out of /work): the check
    fails with this message instead of the scoring call failing."""


@dataclass(frozen=True)
class Setup:
    """What a task prepares: files written first, then a bash script; all before turn one."""

    files: dict[str, str] = field(default_factory=dict)
    """Paths relative to /work, written with mode 644 (the script may change that)."""
    script: str = ""
    """Bash run once in /work (one-shot). ``@@key=value`` lines of its stdout are recorded."""
    expected: dict[str, Any] = field(default_factory=dict)
    """Host-side facts for the checker; the model never sees them."""
    snapshot: tuple[str, ...] = ()
    """Trees (relative to /work) listed after the setup, kept as ``expected["before"][root]``."""


@dataclass(frozen=True)
class Check:
    """One checked property of the final state."""

    name: str
    ok: bool
    detail: str = ""


Checker = Callable[["Probe", dict[str, Any]], Awaitable[list[Check]]]


@dataclass(frozen=True)
class ShellTask:
    """One terminal task: the instruction, how to prepare the sandbox, how to check it."""

    id: str
    category: str
    instruction: str
    setup: Callable[[random.Random], Setup]
    check: Checker
    solution: str
    """A reference bash solution, for the tests and the gold turns (`gold_turns`); never shown
    to a model."""


def lines(text: str | None) -> list[str]:
    """Non-blank lines of ``text``, stripped (a leading ``./`` too)."""
    if text is None:
        return []
    out = []
    for line in text.splitlines():
        item = line.strip()
        if item.startswith("./"):
            item = item[2:]
        if item:
            out.append(item)
    return out


def same_set(name: str, got: list[str], want: Iterable[str]) -> Check:
    """The lines equal the expected ones, in any order and without duplicates."""
    wanted = sorted(set(want))
    if len(got) != len(set(got)):
        return Check(name, False, "the list has duplicate lines")
    if sorted(got) == wanted:
        return Check(name, True)
    missing = sorted(set(wanted) - set(got))[:5]
    extra = sorted(set(got) - set(wanted))[:5]
    return Check(name, False, f"missing {missing}, unexpected {extra}")


def same_text(name: str, got: str | None, want: str) -> Check:
    """The text equals the expected one, up to trailing whitespace at the end of the file."""
    if got is None:
        return Check(name, False, "the file is missing or not a regular file")
    if got.rstrip() == want.rstrip():
        return Check(name, True)
    got_lines, want_lines = got.rstrip().splitlines(), want.rstrip().splitlines()
    for number, (a, b) in enumerate(zip(got_lines, want_lines, strict=False), 1):
        if a != b:
            return Check(name, False, f"line {number} is {a[:80]!r}, expected {b[:80]!r}")
    return Check(name, False, f"{len(got_lines)} lines, expected {len(want_lines)}")


def _parse_snapshot(output: str | None) -> dict[str, dict[str, Any]] | None:
    if output is None:
        return None
    try:
        data = json.loads(output)
    except ValueError:
        return None
    if not isinstance(data, dict) or not data.get("complete"):
        return None
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else None


class Box:
    """Commands, files and listings of one sandbox, for setups and checkers."""

    def __init__(self, sandbox: Sandbox, timeout_s: float) -> None:
        self.sandbox = sandbox
        self.timeout_s = timeout_s

    async def sh(
        self, script: str, *, stdin: str = "", timeout_s: float | None = None
    ) -> ExecResult:
        """Run a bash script as a one-shot process in /work."""
        return await self.sandbox.exec(
            script, timeout_s=timeout_s or self.timeout_s, stdin=stdin, kind="bash"
        )

    async def run_subject(self, script: str) -> ExecResult:
        """Run a command whose subject is a program of the model's (in a fresh sandbox), then
        kill whatever it left running, so that nothing of it outlives its own run."""
        try:
            try:
                return await self.sh(script)
            finally:
                await self.sandbox.kill_all()
        except (SandboxError, CommandNotRunError) as exc:
            raise UncheckableError(f"the program under test broke its sandbox: {exc}") from exc

    async def python(self, code: str, *args: str, stdin: str = "") -> ExecResult:
        """Run trusted Python isolated from /work (``python3 -I -S``)."""
        argv = " ".join(shlex.quote(a) for a in args)
        return await self.sh(f"exec {PYTHON} -c {shlex.quote(code)} {argv}", stdin=stdin)

    async def fetch(self, path: str, size: int) -> bytes | None:
        """The first ``size`` bytes of the file ``path`` (one we wrote), in slices that fit
        the sandbox's output cap (a client may set it as low as 256 bytes)."""
        if size > MAX_FETCH_BYTES:
            return None
        step = max(96, (self.sandbox.spec.output_cap_bytes // 4) * 3 - 96)
        parts = []
        for offset in range(0, size, step):
            chunk = await self.python(CHUNK, path, str(offset), str(step))
            if chunk.exit_code != 0 or chunk.stdout_truncated:
                return None
            parts.append(base64.b64decode(chunk.stdout))
        return b"".join(parts)

    async def python_output(self, code: str, *args: str) -> str | None:
        """The whole stdout of trusted Python (None if it failed): when it is larger than the
        output cap, it is written to a file of ours in /tmp and fetched in slices."""
        result = await self.python(code, *args)
        if result.exit_code == 0 and not result.stdout_truncated:
            return result.stdout
        if result.exit_code != 0 and not result.stdout_truncated:
            return None
        spot = f"/tmp/.score-{secrets.token_hex(8)}"
        argv = " ".join(shlex.quote(a) for a in args)
        try:
            ran = await self.sh(
                f"set -o noclobber; exec {PYTHON} -c {shlex.quote(code)} {argv} > {spot}"
            )
            size = await self.sh(f"exec /usr/bin/wc -c < {spot}")
            if ran.exit_code != 0 or not size.stdout.strip().isdigit():
                return None
            data = await self.fetch(spot, int(size.stdout.strip()))
        finally:
            await self.sh(f"/usr/bin/rm -f {spot}")
        return None if data is None else data.decode("utf-8", "replace")

    async def read(self, path: str, max_bytes: int = MAX_READ_BYTES) -> str | None:
        """The text of the regular file ``/work/path``, or None when it is missing, is not a
        regular file, has a symlink anywhere on its path, or is larger than ``max_bytes``."""
        output = await self.python_output(READ, "/work", path, str(max_bytes))
        if output is None:
            return None
        try:
            reply = json.loads(output)
            data = base64.b64decode(reply["data"]) if "data" in reply else None
        except (ValueError, KeyError, TypeError):
            return None
        return None if data is None else data.decode("utf-8", "replace")

    async def write(self, files: dict[str, str]) -> None:
        """Create files (relative to /work); a failure is the environment's bug."""
        for path, content in files.items():
            written = await self.sandbox.write_file(path, content)
            if not written.ok:
                raise UncheckableError(f"could not write {path}: {written.error}")

    async def snapshot(self, root: str) -> dict[str, dict[str, Any]] | None:
        """Every entry below ``/work/root`` by relative path (``.`` for root), or None."""
        return _parse_snapshot(await self.python_output(SNAPSHOT, f"/work/{root}"))


class Probe(Box):
    """The checker's view of the episode's sandbox, plus fresh sandboxes for running scripts
    and for reading git."""

    def __init__(self, sandbox: Sandbox, ctx: EpisodeContext, timeout_s: float) -> None:
        super().__init__(sandbox, timeout_s)
        self.ctx = ctx

    async def freeze(self) -> bool:
        """Kill every process the model left running (background jobs, daemons, its shells)."""
        await self.sandbox.kill_all()
        result = await self.sh(f"exec {PYTHON} -c {shlex.quote(FREEZE)}")
        return result.stdout.startswith("FROZEN")

    @contextlib.asynccontextmanager
    async def repo(self, path: str = "repo") -> AsyncIterator[GitView]:
        """The git repository ``/work/path``, copied as data into a fresh sandbox (`gitview`);
        `GitView.error` says why it could not be read."""
        from .gitview import open_repository

        async with open_repository(self, path) as view:
            yield view

    @contextlib.asynccontextmanager
    async def fresh(self) -> AsyncIterator[Box]:
        """A new sandbox the model never touched, removed after the block; each command in it
        (one run of a script under test) gets `SCRIPT_TIMEOUT_S`."""
        async with fresh_sandbox(self.ctx) as sandbox:
            yield Box(sandbox, SCRIPT_TIMEOUT_S)


FRESH_OUTPUT_CAP = 64 << 10
"""Output cap of the checker's fresh sandboxes (ours: the episode's cap may be tiny)."""


@contextlib.asynccontextmanager
async def fresh_sandbox(ctx: EpisodeContext) -> AsyncIterator[Sandbox]:
    """A fresh sandbox like the episode's, with an output cap of at least `FRESH_OUTPUT_CAP`."""
    spec = ctx.spec
    if spec is not None and spec.output_cap_bytes < FRESH_OUTPUT_CAP:
        spec = spec.model_copy(update={"output_cap_bytes": FRESH_OUTPUT_CAP})
    async with ctx.fresh_sandbox(spec) as sandbox:
        yield sandbox


def parse_setup_output(stdout: str) -> dict[str, str]:
    """The ``@@key=value`` lines a setup script printed."""
    found: dict[str, str] = {}
    for line in stdout.splitlines():
        if line.startswith(SETUP_MARK) and "=" in line:
            key, _, value = line[len(SETUP_MARK) :].partition("=")
            found[key.strip()] = value.strip()
    return found
