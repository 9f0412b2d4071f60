"""The shell_tasks framework: a task's setup, its checker, and the probes checkers inspect with.

A checker never trusts what the model wrote except the state under test: it runs after every
process of the model was killed (`Probe.freeze`), inspects with one-shot commands by absolute
path (`/usr/bin/python3 -I -S`, so nothing in /work or $HOME is imported), reads git through a
copy of the repository's ``.git`` with a blank config (no hooks, fsmonitor, filters or pagers of
the model run), and runs scripts the model wrote in a *fresh* sandbox on inputs it makes itself.
"""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from runtime.env import EpisodeContext
from runtime.sandbox.backend import ExecResult, Sandbox

PYTHON = "/usr/bin/python3 -I -S"
"""How checkers run Python in a sandbox: isolated, without site, never importing from /work."""
SETUP_MARK = "@@"
"""Setup stdout lines ``@@key=value`` are recorded in ``expected["setup"]``."""
MAX_READ_BYTES = 1 << 20
SCRIPT_TIMEOUT_S = 10.0
"""Time one run of a script under test may take in the fresh sandbox."""

SNAPSHOT = r"""
import hashlib, json, os, stat, sys
root, limit = sys.argv[1], 2000
out, todo = {}, [""]
while todo and len(out) < limit:
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
        try:
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as handle:
                entry["h"] = hashlib.sha256(handle.read(1 << 22)).hexdigest()
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
print(json.dumps({"entries": out, "complete": not todo}))
"""
"""Lists a tree without following symlinks: type, permission bits, size, mtime, sha256."""

FREEZE = r"""
import os, signal, time
me = os.getpid()
for attempt in range(100):
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass
    alive = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in (1, me):
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
"""Kills every process of the sandbox's user but the agent (PID 1) and itself, until none is
left; run with ``exec`` so that it has no shell parent to kill."""


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


def _parse_snapshot(result: ExecResult) -> dict[str, dict[str, Any]] | None:
    if result.exit_code != 0 or result.stdout_truncated:
        return None
    try:
        data = json.loads(result.stdout)
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

    async def python(self, code: str, *args: str, stdin: str = "") -> ExecResult:
        """Run trusted Python isolated from /work (``python3 -I -S``)."""
        argv = " ".join(shlex.quote(a) for a in args)
        return await self.sh(f"exec {PYTHON} -c {shlex.quote(code)} {argv}", stdin=stdin)

    async def read(self, path: str, max_bytes: int = MAX_READ_BYTES) -> str | None:
        """A regular file's text (not through a final symlink), or None."""
        result = await self.sandbox.read_file(path, max_bytes=max_bytes)
        if not result.ok or result.truncated:
            return None
        return result.content

    async def write(self, files: dict[str, str]) -> None:
        """Create files (relative to /work); a failure is the environment's bug."""
        for path, content in files.items():
            written = await self.sandbox.write_file(path, content)
            if not written.ok:
                raise RuntimeError(f"could not write {path}: {written.error}")

    async def snapshot(self, root: str) -> dict[str, dict[str, Any]] | None:
        """Every entry below ``/work/root`` by relative path (``.`` for root), or None."""
        return _parse_snapshot(await self.python(SNAPSHOT, f"/work/{root}"))


class Probe(Box):
    """The checker's view of the episode's sandbox, plus fresh sandboxes for running scripts."""

    def __init__(self, sandbox: Sandbox, ctx: EpisodeContext, timeout_s: float) -> None:
        super().__init__(sandbox, timeout_s)
        self.ctx = ctx
        self._git_dir: str | None = None
        self._git_error = ""

    async def freeze(self) -> bool:
        """Kill every process the model left running (background jobs, daemons, its shells)."""
        result = await self.sh(f"exec {PYTHON} -c {shlex.quote(FREEZE)}")
        return result.stdout.startswith("FROZEN")

    async def mode(self, path: str) -> int | None:
        """Permission bits of ``/work/path`` (not following a final symlink), or None."""
        result = await self.sh(f"/usr/bin/stat -c %a -- {shlex.quote('/work/' + path)}")
        text = result.stdout.strip()
        if result.exit_code != 0 or not text.isdigit():
            return None
        return int(text, 8)

    async def git(self, *args: str, repo: str = "repo") -> ExecResult:
        """Git on a copy of ``/work/repo/.git`` with a blank config, the work tree attached.

        The copy has no config, hooks, ``info/attributes`` or ``info/exclude`` of the model's,
        and no global or system config applies: no program of the model's runs (fsmonitor,
        pager, filters, diff drivers) and only committed or worktree ``.gitignore`` files count.
        """
        if self._git_dir is None:
            folder = f"/tmp/.check-{secrets.token_hex(6)}"
            source = f"/work/{repo}/.git"
            prepared = await self.sh(
                f"set -e; src={shlex.quote(source)}; dst={folder}/git\n"
                '[ -d "$src" ] && [ ! -L "$src" ] || { echo "no .git directory"; exit 3; }\n'
                f"/usr/bin/mkdir -p {folder}\n"
                '/usr/bin/cp -R --no-dereference "$src" "$dst"\n'
                '/usr/bin/rm -rf "$dst/config" "$dst/hooks" "$dst/info/attributes" '
                '"$dst/info/exclude"\n'
                "printf '[core]\\n\\trepositoryformatversion = 0\\n\\tbare = false\\n' "
                '> "$dst/config"\n'
            )
            if prepared.exit_code != 0:
                self._git_error = (prepared.stdout + prepared.stderr).strip()[:200]
                self._git_dir = ""
            else:
                self._git_dir = f"{folder}/git"
        if not self._git_dir:
            return ExecResult(exit_code=128, stdout="", stderr=self._git_error, duration_s=0.0)
        env = (
            "env -i PATH=/usr/bin:/bin HOME=/nonexistent LANG=C.UTF-8 GIT_CONFIG_NOSYSTEM=1 "
            "GIT_CONFIG_GLOBAL=/dev/null GIT_ATTR_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 "
            "GIT_OPTIONAL_LOCKS=0 GIT_NO_REPLACE_OBJECTS=1"
        )
        argv = " ".join(shlex.quote(a) for a in args)
        return await self.sh(
            f"cd /work/{shlex.quote(repo)} 2>/dev/null || cd /work; exec {env} /usr/bin/git "
            f"--no-pager --git-dir={self._git_dir} --work-tree=/work/{shlex.quote(repo)} {argv}"
        )

    async def rev(self, spec: str) -> str | None:
        """The object name ``spec`` resolves to, or None."""
        result = await self.git("rev-parse", "--verify", "--quiet", "--end-of-options", spec)
        text = result.stdout.strip()
        return text if result.exit_code == 0 and len(text) == 40 else None

    async def is_ancestor(self, older: str, newer: str) -> bool:
        """Whether commit ``older`` is an ancestor of (or equal to) ``newer``."""
        result = await self.git("merge-base", "--is-ancestor", older, newer)
        return result.exit_code == 0

    async def clean_tree(self) -> Check:
        """The work tree has no changes and no untracked files (ignored ones excepted)."""
        result = await self.git("status", "--porcelain", "--untracked-files=all")
        if result.exit_code != 0:
            return Check("clean_work_tree", False, "git status failed")
        if result.stdout.strip():
            changes = ", ".join(lines(result.stdout))
            return Check("clean_work_tree", False, f"git status: {changes[:200]}")
        return Check("clean_work_tree", True)

    @contextlib.asynccontextmanager
    async def fresh(self) -> AsyncIterator[Box]:
        """A new sandbox the model never touched, removed after the block; each command in it
        (one run of a script under test) gets `SCRIPT_TIMEOUT_S`."""
        async with self.ctx.fresh_sandbox() as sandbox:
            yield Box(sandbox, SCRIPT_TIMEOUT_S)


def parse_setup_output(stdout: str) -> dict[str, str]:
    """The ``@@key=value`` lines a setup script printed."""
    found: dict[str, str] = {}
    for line in stdout.splitlines():
        if line.startswith(SETUP_MARK) and "=" in line:
            key, _, value = line[len(SETUP_MARK) :].partition("=")
            found[key.strip()] = value.strip()
    return found
