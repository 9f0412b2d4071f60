"""The in-sandbox agent: the container's main process, executing requests sent over stdin.

Stdlib only, and never imported by the server: the server reads this file's source and sends it
to the bootstrap one-liner (`BOOTSTRAP`) that the container starts with, so no image has to
carry it and no host path is mounted. Frames both ways are a 4-byte big-endian length followed
by a UTF-8 JSON object. Each request other than cancel and ping runs in its own thread; a command
runs in a new session so that a timeout, a cancel or its normal end kills its whole process group.

Privilege separation: the agent runs as uid 0 holding only CAP_SETUID, CAP_SETGID, CAP_KILL and
CAP_SETPCAP; every tool process, session and file operation runs as the tool uid (argv[1],
``UID:GID``) with no capabilities at all. Its channel (the attach FIFOs, owned by uid 0, mode 0600),
its pipes and its process are therefore out of a tool's reach under any runtime: opening them needs
uid 0, signalling it needs CAP_KILL, neither of which a tool can ever hold.
"""

import contextlib
import json
import os
import resource
import selectors
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

Request = dict[str, Any]
Reply = dict[str, Any]

PROTOCOL_VERSION = 1
MAX_REQUEST_BYTES = 64 * 1024 * 1024
# After a command's leader exits, how long to keep draining pipes held open by its leftovers.
DRAIN_GRACE_S = 0.2
CHUNK = 65536

_write_lock = threading.Lock()
_calls_lock = threading.Lock()
_sweep_lock = threading.RLock()
"""Held while every tool process is being killed: no tool process may start meanwhile."""
_calls: dict[Any, tuple[subprocess.Popen[bytes], Request]] = {}
"""Request id -> (Popen, request) of a running command."""
_sessions: dict[str, "Session"] = {}
"""Session name ("bash", "python") -> its long-lived process."""
_sessions_lock = threading.Lock()


def send(obj: Reply) -> None:
    """Write one frame to stdout; frames from concurrent threads never interleave."""
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")
    with _write_lock:
        out = sys.stdout.buffer
        out.write(struct.pack(">I", len(data)) + data)
        out.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """The next request from the server, or None at end of input."""
    header = stream.read(4)
    if len(header) < 4:
        return None
    (size,) = struct.unpack(">I", header)
    if size > MAX_REQUEST_BYTES:
        return None
    body = stream.read(size)
    if len(body) < size:
        return None
    return json.loads(body.decode("utf-8"))


TOOL_UID = 65534
TOOL_GID = 65534
"""The uid and gid every tool process runs as; set from argv by `configure`."""
_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_LAST_CAP = 63


MEMORY_BUDGET: int | None = None
"""Bytes the sandbox may use, enforced by the agent's watchdog where the kernel's own limit would
kill the whole sandbox (gVisor); None where the container's cgroup enforces it (runc)."""


def configure(argv: list[str]) -> None:
    """Take the tool user (``UID[:GID]``) and an optional ``memory=BYTES`` budget from ``argv``;
    a tool user of uid 0 is refused."""
    global TOOL_UID, TOOL_GID, MEMORY_BUDGET
    for arg in argv:
        key, _, value = arg.rpartition("=")
        if key == "memory":
            MEMORY_BUDGET = int(value)
        else:
            uid, _, gid = value.partition(":")
            TOOL_UID, TOOL_GID = int(uid), int(gid or uid)
    if TOOL_UID == 0 or TOOL_GID == 0:
        raise SystemExit("runtime-agent: tools never run as root")


_prctl: Any = None
"""libc's prctl, looked up once at start: a forked child must not enter the dynamic loader."""


def harden_self() -> None:
    """Drop the agent's supplementary groups and make it non-dumpable (a second lock on
    /proc/1 under runc; the uid boundary is what holds under every runtime)."""
    global _prctl
    import ctypes

    _prctl = ctypes.CDLL(None, use_errno=True).prctl
    if os.getuid() == 0:
        with contextlib.suppress(OSError):
            os.setgroups([])
    _prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def drop_privileges() -> None:
    """Become the tool user for good, with no capabilities left in any set.

    Runs in a forked child before it runs anything of the model's. Fails (raises) rather than
    go on with any privilege: a child that cannot drop them must not run the tool.
    """
    if os.getuid() == 0:
        # The bounding set first, while CAP_SETPCAP is held: then nothing the child execs can
        # ever regain a capability (no-new-privileges already blocks setuid and file caps).
        # Past the last capability the kernel answers EINVAL, which ends the loop.
        for cap in range(_LAST_CAP + 1):
            if _prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                break
        os.setgroups([])
        os.setgid(TOOL_GID)
        os.setuid(TOOL_UID)
    if os.getuid() != TOOL_UID or os.geteuid() != TOOL_UID or os.getegid() != TOOL_GID:
        raise PermissionError("could not become the tool user")


def oom_kills() -> int | None:
    """The OOM-kill counter: the watchdog's where it enforces the budget, else the container
    cgroup's, or None where the kernel does not expose it."""
    if MEMORY_BUDGET is not None:
        return _watchdog_kills["memory"]
    for path, key in (
        ("/sys/fs/cgroup/memory.events", "oom_kill"),
        ("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill"),
    ):
        try:
            with open(path) as handle:
                for line in handle:
                    name, _, value = line.partition(" ")
                    if name == key:
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def _child_setup(nproc: int | None = None) -> None:
    # The OOM killer must pick the tool's processes, never the agent.
    try:
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
        os.write(fd, b"1000")
        os.close(fd)
    except OSError:
        pass
    if nproc:
        # Under gVisor the host's pids limit also counts the sandbox kernel's own threads, so
        # the process limit is enforced inside, per user, where it counts only tool processes
        # (the agent, another uid, keeps its threads whatever the tools do).
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    drop_privileges()


def _setup_for(req: Request) -> Callable[[], None]:
    nproc = req.get("nproc")
    limit = nproc if isinstance(nproc, int) and nproc > 0 else None
    if limit is not None and _nproc_limit[-1:] != [limit]:
        _nproc_limit[:] = [limit]
    return lambda: _child_setup(limit)


_last_group_kill = [0.0]
"""When the agent last killed a group that still had processes: their zombies count against
the process limit until they are reaped, which the watchdog must not take for a fork bomb."""


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # A fork bomb can fork between one killpg and the next: repeat until the group is empty
    # (or only zombies are left), within a bound.
    killed = False
    try:
        for _ in range(200):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                return
            killed = True
            if not _group_alive(proc.pid):
                return
            time.sleep(0.001)
    finally:
        if killed:
            _last_group_kill[0] = time.monotonic()


def _group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is left in process group ``pgid``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields and fields[0] != "Z" and fields[2] == str(pgid):
            return True
    return False


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name: state, ppid, pgrp, session, ..."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return []
    # The command name may hold spaces and parentheses; the fields after its last ')' do not.
    return data[data.rfind(b")") + 2 :].decode("ascii", "replace").split()


def run_command(req: Request) -> Reply:
    """Run one bash script or Python program with a timeout and capped output capture."""
    kind = req.get("kind", "bash")
    code = req["code"]
    # -I: the work dir (the model's files) is not on the import path, nor are PYTHON* variables.
    argv = ["python3", "-I", "-c", code] if kind == "python" else ["bash", "-c", code]
    cap = int(req.get("cap", 65536))
    timeout = float(req.get("timeout", 30.0))
    env = dict(req.get("env") or {})
    oom_before = oom_kills()
    started = time.monotonic()
    # Spawn under the lock so the orphan reaper never reaps a child before we track it.
    with _sweep_lock, _calls_lock:
        # Counted once no sweep runs: one finishing as this call began did not touch it.
        limit_before = process_limit_kills()
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=req.get("cwd") or None,
                env=env,
                start_new_session=True,
                preexec_fn=_setup_for(req),
            )
        except OSError as exc:
            return {"ok": False, "error": f"could not start the command: {exc.strerror}"}
        _calls[req["id"]] = (proc, req)
    try:
        reply = _supervise(proc, req, cap, timeout, started, oom_before)
        reply["process_limit"] = process_limit_kills() > limit_before
        return reply
    finally:
        _kill_group(proc)
        with _calls_lock:
            _calls.pop(req["id"], None)
        settle()


def _feed(pipe: IO[bytes], data: bytes) -> None:
    """Write a command's stdin and close it; its own thread, so a command that does not read
    its input (or fills its output pipes first) cannot stall the supervision of its timeout."""
    with contextlib.suppress(OSError):
        pipe.write(data)
    with contextlib.suppress(OSError):
        pipe.close()


def _supervise(
    proc: subprocess.Popen[bytes],
    req: Request,
    cap: int,
    timeout: float,
    started: float,
    oom_before: int | None,
) -> Reply:
    # All three are pipes (stdin, stdout and stderr are PIPE in run_command).
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    stdin_data = req.get("stdin") or ""
    if stdin_data:
        data = stdin_data.encode("utf-8", "replace")
        threading.Thread(target=_feed, args=(proc.stdin, data), daemon=True).start()
    else:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    kept: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
    total: dict[str, int] = {"stdout": 0, "stderr": 0}
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
    sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
    deadline = started + timeout
    timed_out = False
    drain_until: float | None = None
    while sel.get_map():
        now = time.monotonic()
        if proc.poll() is not None:
            if drain_until is None:
                # The leader is done: its background children go with it.
                _kill_group(proc)
                drain_until = now + DRAIN_GRACE_S
            elif now >= drain_until:
                break
        elif now >= deadline:
            timed_out = True
            _kill_group(proc)
            drain_until = now + DRAIN_GRACE_S
        wait = 0.05 if drain_until is not None else min(0.5, max(deadline - now, 0.001))
        for key, _ in sel.select(wait):
            chunk = os.read(key.fd, CHUNK)
            name = key.data
            if not chunk:
                sel.unregister(key.fileobj)
                continue
            total[name] += len(chunk)
            room = cap - len(kept[name])
            if room > 0:
                kept[name] += chunk[:room]
    sel.close()
    proc.stdout.close()
    proc.stderr.close()
    if proc.poll() is None and not timed_out:
        # The leader closed its stdout and stderr but still runs: it has until its deadline.
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            timed_out = True
    if proc.poll() is None:
        _kill_group(proc)
    try:
        exit_code = proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        exit_code = None
    oom_after = oom_kills()
    oom = oom_before is not None and oom_after is not None and oom_after > oom_before
    return {
        "ok": True,
        "exit_code": exit_code,
        "stdout": kept["stdout"].decode("utf-8", "replace"),
        "stderr": kept["stderr"].decode("utf-8", "replace"),
        "stdout_bytes": total["stdout"],
        "stderr_bytes": total["stderr"],
        "stdout_truncated": total["stdout"] > cap,
        "stderr_truncated": total["stderr"] > cap,
        "timed_out": timed_out,
        "cancelled": bool(req.get("_cancelled")),
        "oom_killed": oom,
        "duration": time.monotonic() - started,
    }


BASH_DRIVER = r"""
while IFS= read -r __rt_tag; do
  IFS= read -r -d '' __rt_code
  eval "$__rt_code" </dev/null
  __rt_rc=$?
  printf '\n%s %d\n' "$__rt_tag" "$__rt_rc"
  printf '\n%s\n' "$__rt_tag" >&2
done
"""
"""The persistent shell's loop: each call is a tag line and NUL-terminated source, evaluated in
the shell itself so `cd`, variables and background jobs outlive the call."""

PYTHON_DRIVER = r"""
import ast, os, sys, traceback
ctl = os.fdopen(os.dup(0), "rb")
null = os.open(os.devnull, os.O_RDONLY)
os.dup2(null, 0)
sys.stdin = open(os.devnull)
ns = {"__name__": "__main__", "__builtins__": __builtins__}
me = os.getpid()
while True:
    header = ctl.readline()
    if not header:
        break
    tag, size = header.split()
    source = ctl.read(int(size)).decode("utf-8", "replace")
    rc = 0
    try:
        tree = ast.parse(source, "<cell>", "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        exec(compile(tree, "<cell>", "exec"), ns)
        if last is not None:
            value = eval(compile(last, "<cell>", "eval"), ns)
            if value is not None:
                print(repr(value))
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, (int, type(None))):
            print(exc.code, file=sys.stderr)
    except SyntaxError as exc:
        traceback.print_exception(type(exc), exc, None)
        rc = 1
    except BaseException as exc:
        # Drop the driver's own frame: the model should see only its cell.
        traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)
        rc = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    if os.getpid() != me:
        os._exit(rc)  # a process the cell forked: only the interpreter itself serves the loop
    os.write(1, b"\n" + tag + b" " + str(rc).encode() + b"\n")
    os.write(2, b"\n" + tag + b"\n")
"""
"""The persistent interpreter's loop: one namespace for the episode; a trailing expression is
echoed like a REPL would."""


class _Marked:
    """One output stream of a session call: capped capture up to the call's end marker."""

    def __init__(self, marker: bytes, cap: int, wants_code: bool) -> None:
        self.marker = marker
        self.cap = cap
        self.wants_code = wants_code
        self.pending = bytearray()
        self.kept = bytearray()
        self.total = 0
        self.done = False
        self.code: int | None = None

    def feed(self, chunk: bytes) -> None:
        """Take a chunk; output before the marker is kept (capped), the marker ends the call."""
        if self.done:
            return
        self.pending += chunk
        at = self.pending.find(self.marker)
        if at < 0:
            keep_back = len(self.marker) - 1
            if len(self.pending) > keep_back:
                self._commit(bytes(self.pending[: len(self.pending) - keep_back]))
                del self.pending[: len(self.pending) - keep_back]
            return
        rest = self.pending[at + len(self.marker) :]
        if self.wants_code:
            end = rest.find(b"\n")
            if end < 0:
                return  # the exit code has not fully arrived yet
            with contextlib.suppress(ValueError):
                self.code = int(rest[:end].strip() or b"0")
        self._commit(bytes(self.pending[:at]))
        self.pending.clear()
        self.done = True

    def flush(self) -> None:
        """The stream ended without a marker: keep what came."""
        self._commit(bytes(self.pending))
        self.pending.clear()

    def _commit(self, data: bytes) -> None:
        self.total += len(data)
        room = self.cap - len(self.kept)
        if room > 0:
            self.kept += data[:room]


class Session:
    """A long-lived bash or Python process that keeps state between calls of one episode."""

    def __init__(self, kind: str, req: Request) -> None:
        self.kind = kind
        self.lock = threading.Lock()
        driver = ["python3", "-u", "-c", PYTHON_DRIVER] if kind == "python" else None
        argv = driver or ["bash", "--noprofile", "--norc", "-c", BASH_DRIVER]
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=req.get("cwd") or None,
            env=dict(req.get("env") or {}),
            start_new_session=True,
            preexec_fn=_setup_for(req),
        )
        self.pid = self.proc.pid
        self.killed = False

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.proc.poll() is None

    def kill(self) -> None:
        """Kill the session and everything it started."""
        self.killed = True
        _kill_group(self.proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def run(self, req: Request, cap: int, timeout: float) -> Reply:
        """Run one call in the session; on timeout the session is killed and restarts later."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        tag = b"__RT_END_" + os.urandom(8).hex().encode()
        source = req["code"].replace("\0", "").encode("utf-8", "replace")
        if self.kind == "python":
            message = tag + b" " + str(len(source)).encode() + b"\n" + source
        else:
            message = tag + b"\n" + source + b"\0"
        out = _Marked(b"\n" + tag + b" ", cap, wants_code=True)
        err = _Marked(b"\n" + tag + b"\n", cap, wants_code=False)
        oom_before = oom_kills()
        with _sweep_lock:  # a sweep finishing as this call began did not touch it
            limit_before = process_limit_kills()
        started = time.monotonic()
        try:
            threading.Thread(
                target=_write_all, args=(self.proc.stdin, message), daemon=True
            ).start()
        except RuntimeError:  # no thread to be had: write inline (the pipe takes small calls)
            _write_all(self.proc.stdin, message)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ, out)
        sel.register(self.proc.stderr, selectors.EVENT_READ, err)
        deadline = started + timeout
        timed_out = False
        while not (out.done and err.done) and sel.get_map():
            now = time.monotonic()
            if now >= deadline or req.get("_cancelled"):
                timed_out = True
                break
            for key, _ in sel.select(min(0.5, deadline - now)):
                chunk = os.read(key.fd, CHUNK)
                if not chunk:
                    sel.unregister(key.fileobj)
                    key.data.flush()
                    continue
                key.data.feed(chunk)
        sel.close()
        reset = timed_out or not (out.done and err.done)
        exit_code = out.code
        if reset:
            self.kill()
            exit_code = self.proc.returncode if not timed_out else -9
        oom_after = oom_kills()
        return {
            "ok": True,
            "exit_code": exit_code,
            "stdout": out.kept.decode("utf-8", "replace"),
            "stderr": err.kept.decode("utf-8", "replace"),
            "stdout_bytes": out.total,
            "stderr_bytes": err.total,
            "stdout_truncated": out.total > cap,
            "stderr_truncated": err.total > cap,
            "timed_out": timed_out and not req.get("_cancelled"),
            "cancelled": bool(req.get("_cancelled")),
            "oom_killed": oom_before is not None
            and oom_after is not None
            and oom_after > oom_before,
            "session_reset": reset,
            "process_limit": process_limit_kills() > limit_before,
            "duration": time.monotonic() - started,
        }


def _write_all(pipe: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(OSError, ValueError):
        pipe.write(data)
        pipe.flush()


def run_in_session(req: Request) -> Reply:
    """Run a call in the episode's persistent bash or Python session, starting it if needed."""
    name = "python" if req.get("kind") == "python" else "bash"
    cap = int(req.get("cap", 65536))
    timeout = float(req.get("timeout", 30.0))
    started_one = False
    while True:
        with _sessions_lock:
            session = _sessions.get(name)
            fresh = session is None or session.killed or not session.alive()
            if session is not None and fresh:
                session.kill()
            if fresh:
                # Under the calls lock, like run_command: the reaper must not take the new child.
                with _sweep_lock, _calls_lock:
                    try:
                        session = Session(name, req)
                    except OSError as exc:
                        failure = exc
                        session = None
                if session is None:
                    # Out of processes, most likely: free them and try once more.
                    _sessions_lock.release()
                    try:
                        free_processes()
                    finally:
                        _sessions_lock.acquire()
                    with _sweep_lock, _calls_lock:
                        try:
                            session = Session(name, req)
                        except OSError:
                            return {
                                "ok": False,
                                "error": f"could not start the {name} session: {failure}",
                            }
                _sessions[name] = session
                started_one = True
        assert session is not None
        with session.lock:
            # A call ahead of this one may have killed the session (timeout, cancel) while we
            # waited for the lock: then start over with a fresh one.
            if session.killed or not session.alive():
                continue
            with _calls_lock:
                _calls[req["id"]] = (session.proc, req)
            try:
                reply = session.run(req, cap, timeout)
            finally:
                with _calls_lock:
                    _calls.pop(req["id"], None)
        break
    reply["session_started"] = started_one
    if started_one and name in _reset_by_recovery:
        _reset_by_recovery.discard(name)
        reply["stderr"] = _RECOVERY_NOTICE + str(reply.get("stderr", ""))
    settle()
    return reply


def resolve(path: str, workdir: str) -> str | None:
    """``path`` made absolute against the work dir, or None if it escapes it (symlinks included)."""
    root = os.path.realpath(workdir)
    try:
        full = os.path.realpath(os.path.join(root, path))
    except OSError:  # a link the tool user may not even read (/proc/1/root): not below root
        return None
    if full != root and not full.startswith(root + os.sep):
        return None
    return full


def read_file(req: Request) -> Reply:
    """Read up to ``max_bytes`` of a file below the work dir."""
    path = resolve(req["path"], req["workdir"])
    if path is None:
        return {"ok": False, "error": f"path is outside the work directory {req['workdir']}"}
    limit = int(req.get("max_bytes", 65536))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return {"ok": False, "error": f"not a regular file: {req['path']}"}
            size = info.st_size
            data = os.read(fd, limit + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        return {"ok": False, "error": f"{exc.strerror or exc}: {req['path']}"}
    return {
        "ok": True,
        "content": data[:limit].decode("utf-8", "replace"),
        "truncated": len(data) > limit,
        "size": size,
    }


def write_file(req: Request) -> Reply:
    """Create or replace a file below the work dir, creating parent folders."""
    path = resolve(req["path"], req["workdir"])
    if path is None:
        return {"ok": False, "error": f"path is outside the work directory {req['workdir']}"}
    data = req.get("content", "").encode("utf-8", "replace")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # O_NONBLOCK: a FIFO planted at the path fails (ENXIO) instead of blocking the open.
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK
        fd = os.open(path, flags, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    except OSError as exc:
        return {"ok": False, "error": f"{exc.strerror or exc}: {req['path']}"}
    return {"ok": True, "size": len(data)}


_MAX_FILE_REPLY = 64 * 1024 * 1024
_file_children: set[int] = set()
"""Pids of file-operation children, which the reaper must leave to the thread that waits."""


def as_tool_user(operation: Callable[[Request], Reply]) -> Callable[[Request], Reply]:
    """``operation`` run in a child forked for it that becomes the tool user first, so a file
    tool can read or write exactly what a tool process could, never what only the agent can."""

    def run(req: Request) -> Reply:
        try:
            return _fork_as_tool_user(operation, req)
        except OSError:
            free_processes()  # out of processes, most likely: free them and try once more
            try:
                return _fork_as_tool_user(operation, req)
            except OSError as exc:
                return {"ok": False, "error": f"could not start the file operation: {exc}"}

    return run


def _fork_as_tool_user(operation: Callable[[Request], Reply], req: Request) -> Reply:
    read_end, write_end = os.pipe()
    try:
        # Not during a sweep; and the reaper must not take the child before it is registered.
        with _sweep_lock, _calls_lock:
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child
                _file_child(operation, req, write_end)
            _file_children.add(pid)
    except BaseException:
        os.close(read_end)
        os.close(write_end)
        raise
    os.close(write_end)
    data = bytearray()
    try:
        while len(data) <= _MAX_FILE_REPLY:
            chunk = os.read(read_end, CHUNK)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(read_end)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        with _calls_lock:
            _file_children.discard(pid)
    try:
        reply = json.loads(bytes(data))
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        return {"ok": False, "error": "the file operation failed"}
    return reply


def _file_child(operation: Callable[[Request], Reply], req: Request, out: int) -> None:
    """The forked child: keep only the reply pipe, become the tool user, run, exit."""
    code = 0
    try:
        os.closerange(0, out)
        os.closerange(out + 1, 65536)
        drop_privileges()
        reply = operation(req)
    except BaseException as exc:
        reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        code = 1
    try:
        view = memoryview(json.dumps(reply, ensure_ascii=False).encode("utf-8", "replace"))
        while view:
            view = view[os.write(out, view) :]
    except BaseException:
        code = 2
    os._exit(code)


def cancel(req: Request) -> Reply:
    """Kill the process group of a running command."""
    with _calls_lock:
        entry = _calls.get(req.get("target"))
    if entry is not None:
        entry[1]["_cancelled"] = True
        _kill_group(entry[0])
    return {"ok": True, "found": entry is not None}


def reap_once() -> None:
    """As PID 1 the agent inherits every orphan; reap those that no running call will wait for."""
    if os.getpid() != 1:
        return
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None:
            return
        with _calls_lock:
            if info.si_pid in _owned_pids():
                return
            with contextlib.suppress(ChildProcessError):
                os.waitpid(info.si_pid, os.WNOHANG)


def _owned_pids() -> set[int]:
    """Pids the agent itself waits for: running calls and sessions (hold ``_calls_lock``)."""
    owned = {proc.pid for proc, _ in _calls.values()}
    owned.update(session.pid for session in list(_sessions.values()))
    owned.update(_file_children)
    return owned


def kill_strays() -> int:
    """Kill processes that escaped their call's process group (``setsid``, daemons).

    Orphans end up as children of the agent (PID 1) without being a call or a session it
    started; a session's descendant that moved to another process session escaped too.
    Background jobs of a live shell session stay in its session and survive.
    """
    if os.getpid() != 1:
        return 0
    found = 0
    with _calls_lock:
        sessions = {session.pid for session in list(_sessions.values())}
        owned = _owned_pids()
        table: dict[int, list[str]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != 1:
                fields = _stat_fields(int(entry))
                if fields:
                    table[int(entry)] = fields
        for pid, fields in table.items():
            if pid in owned or (fields[0] == "Z" and int(fields[1]) != 1):
                continue
            orphan = int(fields[1]) == 1
            # A session's background jobs stay in the shell's session; whatever left it
            # (setsid, daemons) is killed like an orphan, even while its parent lives.
            escaped = not orphan and _escaped_session(pid, table, sessions)
            if orphan or escaped:
                found += 1
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
    return found


def _escaped_session(pid: int, table: dict[int, list[str]], sessions: set[int]) -> bool:
    """Whether ``pid`` descends from a persistent session but runs in another process session."""
    ancestor = int(table[pid][1])
    for _ in range(64):
        if ancestor in sessions:
            return table[pid][3] != str(ancestor)
        if ancestor not in table:
            return False
        ancestor = int(table[ancestor][1])
    return False


def settle(limit_s: float = 0.5) -> None:
    """After a call: kill strays and reap them, so the next call sees no leftovers, not even
    zombies (bounded, in case something refuses to die)."""
    until = time.monotonic() + limit_s
    while kill_strays() and time.monotonic() < until:
        reap_once()
        time.sleep(0.005)
    reap_once()


def reap_forever() -> None:
    """Background reaping for orphans that exit between calls."""
    while True:
        time.sleep(0.5)
        reap_once()


def execute(req: Request) -> Reply:
    """Run a command: in the named persistent session, or as a one-shot process.

    A sandbox found at its process limit (what an earlier call's fork bomb leaves running) is
    cleared first, so the call runs, in a fresh session that says why.
    """
    _setup_for(req)  # learn the process limit before looking at it
    if at_process_limit() or fork_failures() > _failures_seen[0]:
        free_processes(notify=True)
    try:
        return run_in_session(req) if req.get("session") else run_command(req)
    finally:
        _failures_seen[0] = fork_failures()


_failures_seen = [0]
"""Forks refused at the process limit as of the end of the last call: more by the next call
means something left running (a fork bomb in the background) is still at the limit."""


def fork_failures() -> int:
    """Forks the container's pids cgroup has refused (runc); 0 where it has no such count."""
    for path in ("/sys/fs/cgroup/pids.events", "/sys/fs/cgroup/pids/pids.events"):
        try:
            with open(path, "rb") as handle:
                for line in handle:
                    if line.startswith(b"max "):
                        return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return 0


def kill_all(req: Request) -> Reply:
    """Kill every session and every process a tool started (before an environment inspects
    the final state, nothing the model left running may still change it)."""
    with _sessions_lock:
        sessions = list(_sessions.values())
    for session in sessions:
        session.kill()
    with _calls_lock:
        running = [proc for proc, _ in _calls.values()]
    for proc in running:
        _kill_group(proc)
    kill_tool_user()
    settle()
    return {"ok": True}


def _real_uid(pid: int) -> int | None:
    """The real uid of ``pid`` from its status (not the owner of /proc/PID, which a process
    that makes itself non-dumpable hands to root)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


_sweeps = [0]
"""How many sweeps of every tool process have finished."""


def kill_tool_user(rounds: int = 50) -> None:
    """SIGKILL every process of the tool uid, over and over (a fork bomb forks between two
    sweeps), within a bound. Only tools run under that uid, never the agent.

    The sweep is `kill(-1)` from a child that has become the tool user: one system call reaches
    every such process, where reading /proc process by process is far too slow while a fork
    bomb churns (under gVisor, seconds). A look through /proc then catches any stragglers.
    """
    if os.getuid() == TOOL_UID:
        return
    with _sweep_lock:
        try:
            with _calls_lock:  # the reaper must not take the child before it is registered
                pid = os.fork()
                if pid == 0:  # pragma: no cover - the child
                    _sweep_child(rounds)
                _file_children.add(pid)
        except OSError:
            pass
        else:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            with _calls_lock:
                _file_children.discard(pid)
        for pid in _tool_processes():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        reap_once()
        _sweeps[0] += 1


def _sweep_child(rounds: int) -> None:
    """The forked sweeper: become the tool user, kill(-1) until no one is left, exit."""
    code = 0
    try:
        os.closerange(0, 65536)
        drop_privileges()
        for _ in range(rounds):
            os.kill(-1, signal.SIGKILL)  # every process of this uid but the caller
            time.sleep(0.002)
    except ProcessLookupError:
        pass  # none left to signal
    except BaseException:
        code = 1
    os._exit(code)


# --- the watchdog: memory (where the agent enforces it) and the process limit ------------------

WATCH_BUSY_S = 0.05
WATCH_IDLE_S = 0.5
PROCESS_LIMIT_SAMPLES = 4
"""How many more of the watchdog's looks must find the tools at the process limit than not
before all their processes are killed: enough for a program that meets the limit and handles
it, few enough that a fork bomb's churn ends before it costs the sandbox (gVisor keeps a host
process for every address space; while it churns, the agent gets few looks)."""
KILL_SETTLE_S = 1.0
"""After the agent kills a call's group, how long its zombies are not taken for pressure."""
_watchdog_kills = {"memory": 0, "processes": 0}
_nproc_limit: list[int] = []
"""The tool user's process limit, as the last request that carried one set it (gVisor)."""


def memory_used() -> int:
    """Bytes in use in the whole sandbox (processes and tmpfs), from its kernel's meminfo."""
    total = free = 0
    with open("/proc/meminfo", "rb") as handle:
        for line in handle:
            if line.startswith(b"MemTotal:"):
                total = int(line.split()[1]) * 1024
            elif line.startswith(b"MemFree:"):
                free = int(line.split()[1]) * 1024
                break
    return total - free


def _tool_processes() -> list[int]:
    """Pids of the live processes of the tool user."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _real_uid(int(entry)) == TOOL_UID:
            fields = _stat_fields(int(entry))
            if fields and fields[0] != "Z":
                found.append(int(entry))
    return found


def _resident(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            return int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def kill_largest(budget: int) -> None:
    """What a kernel OOM killer does: SIGKILL the tool process with the most resident memory,
    then wait (boundedly) until its memory is given back, so that one excess costs one process,
    not also the next one to start while the first is still being torn down (gVisor gives
    memory back some time after the process is gone, the longer the busier it is)."""
    victims = sorted(_tool_processes(), key=_resident, reverse=True)
    if not victims:
        return
    freed = _resident(victims[0]) * os.sysconf("SC_PAGE_SIZE") // 2
    before = memory_used()
    _watchdog_kills["memory"] += 1
    with contextlib.suppress(OSError):
        os.kill(victims[0], signal.SIGKILL)
    until = time.monotonic() + 2.0
    while time.monotonic() < until:
        time.sleep(0.01)
        used = memory_used()
        if used <= budget or before - used >= freed:
            return


def at_process_limit() -> bool:
    """Whether the tools have (nearly) used up the sandbox's process limit. One cheap look: a
    fork bomb's orphans arrive faster than they can be reaped, so no reaping here (the reaper
    thread does that, and the watchdog's grace outlasts the teardown of a killed call)."""
    for current_file, max_file in (
        ("/sys/fs/cgroup/pids.current", "/sys/fs/cgroup/pids.max"),
        ("/sys/fs/cgroup/pids/pids.current", "/sys/fs/cgroup/pids/pids.max"),
    ):
        try:
            with open(current_file) as current, open(max_file) as most:
                used, cap = current.read().strip(), most.read().strip()
        except OSError:
            continue
        return cap.isdigit() and int(used) >= int(cap) - 2
    if not _nproc_limit:
        return False
    # Every process but the agent and its file-operation children is the tool user's: one
    # listing counts them (reading each one's status is far too slow while a fork bomb churns).
    processes = sum(1 for entry in os.listdir("/proc") if entry.isdigit())
    tools = processes - 1 - len(_file_children)
    # gVisor counts exiting tasks against the limit while /proc no longer lists them: a fork
    # bomb meets it with about two thirds of the limit listed.
    return tools >= _nproc_limit[-1] // 2


def watchdog() -> None:
    """End process-limit exhaustion and enforce the memory budget (where set), forever.

    Looks that find the tools at the limit count up, looks that do not count down, since a
    fork bomb's churn dips below the limit now and then; a program that meets the limit once
    and goes on never gathers enough.
    """
    pressure = 0
    while True:
        busy = bool(_calls) or pressure > 0
        time.sleep(WATCH_BUSY_S if busy else WATCH_IDLE_S)
        try:
            settling = time.monotonic() - _last_group_kill[0] < KILL_SETTLE_S
            if at_process_limit() and not settling:
                pressure += 1
            else:
                pressure = max(0, pressure - 1)
            if pressure >= PROCESS_LIMIT_SAMPLES:
                pressure = 0
                free_processes()
            elif MEMORY_BUDGET is not None and memory_used() > MEMORY_BUDGET:
                kill_largest(MEMORY_BUDGET)
        except Exception:  # the watchdog must outlive any odd /proc entry
            continue


def process_limit_kills() -> int:
    """How many times every tool process was killed at the process limit."""
    return _watchdog_kills["processes"]


HANDLERS: dict[str, Callable[[Request], Reply]] = {
    "exec": execute,
    "read_file": as_tool_user(read_file),
    "write_file": as_tool_user(write_file),
    "cancel": cancel,
    "kill_all": kill_all,
    "ping": lambda req: {"ok": True},
}


def handle(req: Request) -> None:
    """Run one request and send its response, whatever happens."""
    try:
        reply = HANDLERS[req["op"]](req)
    except Exception as exc:  # the agent must outlive any single bad request
        reply = {"ok": False, "error": f"agent error: {type(exc).__name__}: {exc}"}
    reply["id"] = req.get("id")
    try:
        send(reply)
    except Exception:
        os._exit(3)


_RECOVERY_NOTICE = (
    "[the sandbox had run out of processes: every session and the processes it started were "
    "killed to free them; this call runs in a fresh session]\n"
)
_reset_by_recovery: set[str] = set()
"""Sessions killed to free processes, each told so once, when its fresh session starts."""


def free_processes(notify: bool | None = None) -> None:
    """Kill every session and every tool process: the way back from a process-limit
    exhaustion. Calls running meanwhile say so in their replies (`process_limit`); each killed
    session's next call says why it is fresh when ``notify`` (default: when no call runs)."""
    swept = _sweeps[0]
    if notify is None:
        notify = not _calls
    with _sessions_lock:  # not under the sweep lock: a session starts under both, this way
        sessions = list(_sessions.items())
    # No tool process starts until this is done (spawns take the sweep lock).
    with _sweep_lock:
        if _sweeps[0] != swept:
            return  # another finished meanwhile: what this one was for is gone
        # Counted before and after: a call that runs while its processes die is told so.
        _watchdog_kills["processes"] += 1
        kill_tool_user()
        for name, session in sessions:
            if not session.killed and notify:
                _reset_by_recovery.add(name)
            session.kill()
        settle()
        _watchdog_kills["processes"] += 1


def start_handler(req: Request) -> None:
    """Handle ``req`` on a new thread; when none can be had (pids limit), free processes first."""
    try:
        threading.Thread(target=handle, args=(req,), daemon=True).start()
    except RuntimeError:
        free_processes()
        threading.Thread(target=handle, args=(req,), daemon=True).start()


def main(stream: IO[bytes], argv: list[str]) -> None:
    """Serve requests until the server closes stdin, then kill what is left and exit."""
    configure(argv)
    harden_self()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    # Not KeyboardInterrupt: as PID 1 with the default action, `kill -INT 1` from a tool is ignored.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if os.getpid() == 1:
        threading.Thread(target=reap_forever, daemon=True).start()
    threading.Thread(target=watchdog, daemon=True).start()
    ready = {"id": 0, "op": "ready", "version": PROTOCOL_VERSION, "pid": os.getpid()}
    send({**ready, "uid": os.getuid()})
    while True:
        try:
            req = read_frame(stream)
        except ValueError:
            req = None
        if req is None:
            break
        if not isinstance(req, dict) or req.get("op") not in HANDLERS:
            send(
                {
                    "id": req.get("id") if isinstance(req, dict) else None,
                    "ok": False,
                    "error": "unknown request",
                }
            )
            continue
        if req["op"] in ("cancel", "ping"):
            handle(req)
        else:
            try:
                start_handler(req)
            except RuntimeError as exc:  # no thread to be had, even after freeing processes
                send(
                    {
                        "id": req.get("id"),
                        "ok": False,
                        "error": f"agent error: {type(exc).__name__}: {exc}",
                    }
                )
    with _calls_lock:
        procs = [proc for proc, _ in _calls.values()]
        procs.extend(session.proc for session in _sessions.values())
    for proc in procs:
        _kill_group(proc)
    os._exit(0)


if __name__ == "__main__":
    main(sys.stdin.buffer, sys.argv[1:])
