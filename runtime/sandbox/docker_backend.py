"""Docker sandboxes: one hardened container per episode, driven through the in-sandbox agent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import docker
import docker.errors

from runtime.errors import (
    CommandNotRunError,
    FailedPreconditionError,
    SandboxError,
    UnavailableError,
)
from runtime.sandbox import labels
from runtime.sandbox.backend import ExecResult, FileResult, Sandbox, SandboxBackend
from runtime.sandbox.channel import BOOTSTRAP, AgentChannel
from runtime.sandbox.spec import SandboxSpec, parse_size

log = logging.getLogger(__name__)
T = TypeVar("T")

# The agent enforces call timeouts itself; this is how much longer the server waits for it.
_REPLY_GRACE_S = 10.0
_TOOL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
AGENT_CAPABILITIES = ("SETUID", "SETGID", "KILL", "SETPCAP")
"""The agent's whole capability set: become the tool user, signal tools, drop their bounding set."""


def gvisor_memory_headroom(memory: int) -> int:
    """Memory the container's cgroup gets above the sandbox's budget under gVisor: for its
    kernel and host processes, and the watchdog's reaction time."""
    return 768 * 1024 * 1024 + memory // 4


def gvisor_host_pids(pids_limit: int) -> int:
    """The host pids limit of a gVisor sandbox whose tools may hold ``pids_limit`` processes."""
    return pids_limit * 64 + 1024


def container_options(spec: SandboxSpec, labels_: dict[str, str]) -> dict[str, Any]:
    """Every Docker option a sandbox container gets: the one place hardening is decided."""
    memory = spec.memory_bytes
    uid, _, gid = spec.user.partition(":")
    owner = f"uid={uid},gid={gid or uid}"
    work_opts = ",".join(
        ["rw", "exec", f"size={parse_size(spec.workdir_size)}", "mode=0755", owner]
    )
    gvisor = spec.isolation == "gvisor"
    if gvisor:
        # gVisor's kernel, its host processes and the tools share the container's cgroup, and
        # reaching its limit kills the whole sandbox: the cgroup gets headroom above the budget,
        # and the agent enforces the budget itself, killing tool processes as an OOM killer would.
        memory += gvisor_memory_headroom(memory)
    host_config: dict[str, Any] = {
        "network_mode": "none",
        "read_only": True,
        # The agent (uid 0) keeps exactly what it needs to start tools as the tool user and to
        # kill them, and to empty their capability bounding set; tools exec with none.
        "cap_drop": ["ALL"],
        "cap_add": list(AGENT_CAPABILITIES),
        "security_opt": ["no-new-privileges"],
        "mem_limit": memory,
        "memswap_limit": memory,
        # Under gVisor the host limit also counts the sandbox kernel's threads and a host
        # process per address space it keeps (tens per tool process after a fork bomb): a far
        # roomier ceiling there, and the agent enforces the tools' limit inside (RLIMIT_NPROC).
        "pids_limit": gvisor_host_pids(spec.tool_process_limit) if gvisor else spec.pids_limit,
        "nano_cpus": int(spec.cpus * 1e9),
        "tmpfs": {
            spec.workdir: work_opts,
            "/tmp": f"rw,exec,size={parse_size(spec.tmp_size)},mode=1777",
        },
        "ipc_mode": "private",
        # Tool output must not be copied to the host's disk by a logging driver.
        "log_config": {"type": "none", "config": {}},
        "init": False,
    }
    agent_args = [f"user={uid}:{gid or uid}"]
    if gvisor:
        host_config["runtime"] = "runsc"
        agent_args.append(f"memory={spec.memory_bytes}")
    return {
        "image": spec.image,
        "command": ["python3", "-I", "-c", BOOTSTRAP, *agent_args],
        # The agent runs as uid 0 so that no tool (always the spec's user) can reach it.
        "user": "0:0",
        "working_dir": spec.workdir,
        "environment": {"PATH": _TOOL_PATH, "HOME": spec.workdir, "LANG": "C.UTF-8"},
        "labels": labels_,
        "stdin_open": True,
        "detach": False,  # with stdin_open: StdinOnce, so the agent sees EOF when we disconnect
        "network_disabled": True,
        "host_config": host_config,
    }


class DockerSandbox(Sandbox):
    """A started container whose agent answers over the attached socket."""

    def __init__(
        self,
        backend: DockerBackend,
        container_id: str,
        spec: SandboxSpec,
        channel: AgentChannel,
        keepalive: Any,
    ) -> None:
        self.id = container_id
        self.spec = spec
        self._backend = backend
        self._channel = channel
        self._keepalive = keepalive  # the SDK's socket wrapper; dropping it may close the socket
        self._closed = False
        self._saw_oom = False
        self.episode_id = ""
        self._env = self._base_env(spec)

    @property
    def healthy(self) -> bool:
        """The agent channel still works (a pooled sandbox may have died while waiting)."""
        return not self._closed and self._channel.broken is None

    def assign(self, spec: SandboxSpec, episode_id: str) -> None:
        """Hand a pooled sandbox to an episode, with that episode's per-call limits."""
        self.spec = spec
        self.episode_id = episode_id
        self._env = self._base_env(spec)

    @staticmethod
    def _base_env(spec: SandboxSpec) -> dict[str, str]:
        env = {"PATH": _TOOL_PATH, "HOME": spec.workdir, "LANG": "C.UTF-8", "TERM": "dumb"}
        env.update(dict(spec.env))
        return env

    async def exec(
        self,
        command: str,
        *,
        timeout_s: float,
        stdin: str = "",
        kind: str = "bash",
        session: bool = False,
    ) -> ExecResult:
        """Run a bash script or Python program through the agent."""
        started = time.monotonic()
        reply = await self._request(
            "exec",
            {
                "kind": kind,
                "session": session,
                "code": command,
                "stdin": stdin,
                "timeout": timeout_s,
                "cap": self.spec.output_cap_bytes,
                "cwd": self.spec.workdir,
                "env": self._env,
                "nproc": self.spec.tool_process_limit if self.spec.isolation == "gvisor" else None,
            },
            timeout_s + _REPLY_GRACE_S,
        )
        if not reply.get("ok"):
            # The agent answered, so the sandbox lives: the model can clean up and retry.
            raise CommandNotRunError(str(reply.get("error", "the command could not be run"))[:1000])
        cap = self.spec.output_cap_bytes
        exit_code = reply.get("exit_code")
        self._saw_oom = self._saw_oom or reply.get("oom_killed") is True
        return ExecResult(
            exit_code=exit_code if isinstance(exit_code, int) else None,
            stdout=str(reply.get("stdout", ""))[:cap],
            stderr=str(reply.get("stderr", ""))[:cap],
            duration_s=time.monotonic() - started,
            timed_out=reply.get("timed_out") is True,
            oom_killed=reply.get("oom_killed") is True,
            stdout_truncated=reply.get("stdout_truncated") is True,
            stderr_truncated=reply.get("stderr_truncated") is True,
            stdout_bytes=_int(reply.get("stdout_bytes")),
            stderr_bytes=_int(reply.get("stderr_bytes")),
            process_limit=reply.get("process_limit") is True,
            session_reset=reply.get("session_reset") is True,
        )

    async def read_file(self, path: str, *, max_bytes: int) -> FileResult:
        """Read a file below the work dir through the agent."""
        reply = await self._request(
            "read_file", {"path": path, "workdir": self.spec.workdir, "max_bytes": max_bytes}, 30.0
        )
        return _file_result(reply, max_bytes)

    async def write_file(self, path: str, content: str) -> FileResult:
        """Write a file below the work dir through the agent."""
        reply = await self._request(
            "write_file", {"path": path, "workdir": self.spec.workdir, "content": content}, 30.0
        )
        return _file_result(reply, 0)

    async def kill_all(self) -> None:
        """Kill every process the tools started, through the agent."""
        await self._request("kill_all", {}, 30.0)

    async def close(self) -> None:
        """Disconnect the agent and force-remove the container. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._channel.close()
        await self._backend.remove(self.id)

    async def _request(self, op: str, payload: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        if self._closed:
            raise SandboxError("the sandbox was already removed")
        try:
            return await self._channel.request(op, payload, timeout_s)
        except SandboxError as exc:
            explained = await self._backend.explain_failure(
                self.id, str(exc), earlier_oom=self._saw_oom
            )
            raise SandboxError(explained) from exc


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def _file_result(reply: dict[str, Any], max_bytes: int) -> FileResult:
    if not reply.get("ok"):
        return FileResult(ok=False, error=str(reply.get("error", "file operation failed"))[:1000])
    content = str(reply.get("content", ""))
    return FileResult(
        ok=True,
        content=content[:max_bytes] if max_bytes else "",
        truncated=reply.get("truncated") is True,
        size=_int(reply.get("size")),
    )


class DockerBackend(SandboxBackend):
    """Creates and removes labelled sandbox containers on one Docker daemon."""

    def __init__(self, *, owner: str, boot_id: str, max_workers: int = 16) -> None:
        self.owner = owner
        self.boot_id = boot_id
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="docker")
        self._client: docker.DockerClient | None = None
        self._live: dict[str, DockerSandbox] = {}
        self._inflight: set[asyncio.Future[Any]] = set()
        self._cleanups: set[asyncio.Task[None]] = set()

    @property
    def live_count(self) -> int:
        """Sandboxes created by this backend and not yet removed."""
        return len(self._live)

    async def create(self, spec: SandboxSpec, *, episode_id: str) -> DockerSandbox:
        """Create, attach and start a container, then hand the agent its program."""
        options = container_options(
            spec, labels.container_labels(self.owner, self.boot_id, episode_id)
        )
        container_id, sock, keepalive = await self._create_container(options)
        try:
            channel = await AgentChannel.open(sock)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.remove(container_id)
            raise
        sandbox = DockerSandbox(self, container_id, spec, channel, keepalive)
        sandbox.episode_id = episode_id
        self._live[container_id] = sandbox
        return sandbox

    async def _create_container(self, options: dict[str, Any]) -> tuple[str, socket.socket, Any]:
        # The Docker call runs on in a thread even if we are cancelled; whatever it creates
        # then is removed when it finishes, so a cancelled start never leaks a container.
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._create_started, options)
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)
        try:
            result: tuple[str, socket.socket, Any] = await self._mapped(asyncio.shield(future))
        except asyncio.CancelledError:
            future.add_done_callback(self._discard_created)
            raise
        return result

    def _discard_created(self, future: asyncio.Future[tuple[str, socket.socket, Any]]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        container_id, sock, _ = future.result()
        sock.close()
        task = asyncio.get_running_loop().create_task(self.remove(container_id))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def remove(self, container_id: str) -> None:
        """Force-remove one container; a container already gone is fine."""
        self._live.pop(container_id, None)
        await self._call(self._remove, container_id)

    async def remove_owned(self) -> int:
        """Remove every container labelled with this instance's name, an earlier run's too."""
        removed: int = await self._call(self._remove_owned)
        return removed

    async def explain_failure(
        self, container_id: str, reason: str, *, earlier_oom: bool = False
    ) -> str:
        """Turn a channel failure into a sentence naming what happened to the container.

        Docker's `OOMKilled` flag says the container's cgroup hit its limit at some point, not
        why it stopped. It names the cause only when no tool call had already reported an
        out-of-memory kill (``earlier_oom``): then nothing but the sandbox's own end set it.
        No time window is involved, so the answer does not depend on the machine's load.
        """
        try:
            state = await self._call(self._state, container_id)
        except Exception:
            return reason
        if state is None:
            return f"{reason}: the sandbox container no longer exists"
        if state.get("Running", False):
            # The channel broke a moment before Docker recorded the exit: look once more.
            await asyncio.sleep(0.2)
            with contextlib.suppress(Exception):
                state = await self._call(self._state, container_id) or state
        if state.get("Running", False):
            return reason
        code = state.get("ExitCode")
        if state.get("OOMKilled") and not earlier_oom:
            return f"{reason}: the sandbox ran out of memory and was killed (exit code {code})"
        earlier = "; an earlier call's process was killed for memory" if earlier_oom else ""
        return f"{reason}: the sandbox container stopped (exit code {code}){earlier}"

    async def ping(self) -> None:
        """Raise `UnavailableError` unless the Docker daemon answers."""
        await self._call(lambda: self._docker().ping())

    async def close(self) -> None:
        """Remove every sandbox still live, then release the client and threads.

        Creations still under way are waited for, and a last sweep by this process's labels
        removes anything that slipped through.
        """
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=60)
        if self._cleanups:
            await asyncio.wait(list(self._cleanups), timeout=60)
        live = list(self._live.values())
        await asyncio.gather(*(sandbox.close() for sandbox in live), return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._call(self._remove_matching, labels.boot_filter(self.owner, self.boot_id))
        if self._client is not None:
            self._client.close()
        self._executor.shutdown(wait=False)

    def _docker(self) -> docker.DockerClient:
        if self._client is None:
            self._client = docker.from_env(timeout=60)
        return self._client

    async def _call(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await self._mapped(loop.run_in_executor(self._executor, fn, *args))

    @staticmethod
    async def _mapped(call: Awaitable[T]) -> T:
        try:
            return await call
        except docker.errors.ImageNotFound as exc:
            raise FailedPreconditionError(
                f"sandbox image not found on this Docker daemon: {exc.explanation}; "
                "build the images with `make images`"
            ) from exc
        except docker.errors.DockerException as exc:
            raise UnavailableError(f"Docker daemon error: {exc}") from exc
        except OSError as exc:
            raise UnavailableError(f"cannot reach the Docker daemon: {exc}") from exc

    def _create_started(self, options: dict[str, Any]) -> tuple[str, socket.socket, Any]:
        api = self._docker().api
        host_config = api.create_host_config(**options.pop("host_config"))
        container = api.create_container(host_config=host_config, **options)
        container_id: str = container["Id"]
        try:
            keepalive = api.attach_socket(
                container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            api.start(container_id)
        except BaseException:
            self._remove(container_id)
            raise
        sock: socket.socket = getattr(keepalive, "_sock", keepalive)
        return container_id, sock, keepalive

    def _remove(self, container_id: str) -> None:
        try:
            self._docker().api.remove_container(container_id, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: removal already in progress
                raise

    def _remove_owned(self) -> int:
        return self._remove_matching(labels.owner_filter(self.owner))

    def _remove_matching(self, filters: dict[str, list[str]]) -> int:
        found = self._docker().api.containers(all=True, quiet=True, filters=filters)
        for item in found:
            self._remove(item["Id"])
        return len(found)

    def _state(self, container_id: str) -> dict[str, Any] | None:
        try:
            info = self._docker().api.inspect_container(container_id)
        except docker.errors.NotFound:
            return None
        state: dict[str, Any] = info.get("State", {})
        return state
