"""The sandbox interface the upper layers program against, independent of Docker."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from runtime.sandbox.spec import SandboxSpec


@dataclass(frozen=True)
class ExecResult:
    """What one command run in a sandbox produced, already capped and decoded."""

    exit_code: int | None
    """The process's exit code; negative for a signal; None when it never finished."""
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    """The call hit its timeout and its whole process tree was killed."""
    oom_killed: bool = False
    """The kernel's OOM killer killed a process of this call."""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    stdout_bytes: int = 0
    """Bytes the command wrote to stdout, including what was dropped."""
    stderr_bytes: int = 0
    process_limit: bool = False
    """The sandbox's process limit was reached and stayed reached, so every tool process (this
    call's included, sessions too) was killed: what ends a fork bomb."""
    session_reset: bool = False
    """The call ran in a persistent session that had to be killed (timeout, exit, crash): the
    next call starts a fresh one, without the old working directory, variables or jobs."""

    @property
    def output_truncated(self) -> bool:
        """Either stream was cut at the output cap."""
        return self.stdout_truncated or self.stderr_truncated


@dataclass(frozen=True)
class FileResult:
    """The outcome of a file operation inside the sandbox's work directory."""

    ok: bool
    content: str = ""
    """File text for reads (capped), empty for writes."""
    error: str = ""
    """A model-readable reason when `ok` is false."""
    truncated: bool = False
    size: int = 0


class Sandbox(ABC):
    """One isolated execution environment, owned by exactly one episode."""

    spec: SandboxSpec
    id: str

    @abstractmethod
    async def exec(
        self,
        command: str,
        *,
        timeout_s: float,
        stdin: str = "",
        kind: str = "bash",
        session: bool = False,
    ) -> ExecResult:
        """Run ``command`` (a bash script, or Python source when ``kind='python'``) to completion.

        With ``session`` the call runs in the sandbox's persistent shell or interpreter of that
        kind, so state carries over to the next call; otherwise in a fresh process. The call's
        whole process tree is killed at ``timeout_s``, or when the awaiting task is cancelled.
        Raises `SandboxError` when the sandbox itself is gone or broken.
        """

    @abstractmethod
    async def read_file(self, path: str, *, max_bytes: int) -> FileResult:
        """Read a text file below the work directory."""

    @abstractmethod
    async def write_file(self, path: str, content: str) -> FileResult:
        """Create or replace a file below the work directory, creating parent folders."""

    @abstractmethod
    async def kill_all(self) -> None:
        """Kill every process the tools started, sessions included; files stay as they are."""

    @abstractmethod
    async def close(self) -> None:
        """Destroy the sandbox and everything in it. Idempotent."""


class SandboxBackend(ABC):
    """Creates sandboxes from specs and removes whatever it created."""

    @abstractmethod
    async def create(self, spec: SandboxSpec, *, episode_id: str) -> Sandbox:
        """A fresh, started sandbox for one episode."""

    @abstractmethod
    async def close(self) -> None:
        """Remove every sandbox this backend still owns."""
