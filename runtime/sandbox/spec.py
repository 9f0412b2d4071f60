"""`SandboxSpec`: what one episode's sandbox looks like. Every field has the hardened default."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_SIZE = re.compile(r"^(\d+)([kmg]?)$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(value: str | int) -> int:
    """Bytes in a Docker-style size (``"512m"``, ``"64k"``, ``1048576``)."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(value.strip())
    if match is None:
        raise ValueError(f"not a size: {value!r} (use e.g. '512m', '64k' or a byte count)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


class SandboxSpec(BaseModel):
    """One container's image, limits and isolation. Immutable and hashable, so it can key a pool."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str = "runtime/python:latest"
    """Docker image; it must provide `python3` (the in-sandbox agent runs on it) and `bash`."""
    memory: str = "512m"
    """Memory limit; swap is set equal, so the container gets no extra swap."""
    cpus: float = Field(default=1.0, gt=0, le=64)
    """CPU quota in cores."""
    pids_limit: int = Field(default=256, ge=16, le=65536)
    """Maximum number of processes and threads in the container."""
    network: Literal["none"] = "none"
    """Network mode. Only `none` is supported: sandboxes never reach a network."""
    user: str = "65534:65534"
    """Numeric ``UID:GID`` every tool process and file operation runs as; never root. The agent
    runs as another uid (0, with almost no capabilities), which no tool can ever become."""
    workdir: str = "/work"
    """Writable tmpfs working directory; `read_file` / `write_file` paths stay inside it."""
    workdir_size: str = "256m"
    """Size cap of the work directory tmpfs."""
    tmp_size: str = "64m"
    """Size cap of the /tmp tmpfs."""
    call_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    """Per-call timeout; on expiry the call's whole process tree is killed."""
    output_cap_bytes: int = Field(default=65536, ge=256, le=16 * 1024 * 1024)
    """Bytes of each output stream returned to the model; the rest is dropped and marked."""
    isolation: Literal["runc", "gvisor"] = "runc"
    """Container runtime: `runc`, or gVisor's `runsc` where it is installed."""
    env: tuple[tuple[str, str], ...] = ()
    """Extra environment variables for tool processes (never the server's own environment)."""

    @field_validator("memory", "workdir_size", "tmp_size")
    @classmethod
    def _valid_size(cls, value: str) -> str:
        if parse_size(value) < 4 * 1024 * 1024:
            raise ValueError(f"{value!r} is below the 4 MiB minimum")
        return value

    @field_validator("user")
    @classmethod
    def _not_root(cls, value: str) -> str:
        uid, _, gid = value.partition(":")
        if uid in ("0", "root") or gid in ("0", "root"):
            raise ValueError("sandboxes never run as root")
        if not uid.isdigit() or not (gid or uid).isdigit():
            raise ValueError(f"user must be numeric 'UID:GID' (e.g. '65534:65534'), got {value!r}")
        if int(uid) == 0 or int(gid or uid) == 0:
            raise ValueError("sandboxes never run as root")
        return value

    @field_validator("workdir")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or value in ("/", "/proc", "/sys", "/dev"):
            raise ValueError(f"workdir must be an absolute path below /, got {value!r}")
        return value.rstrip("/")

    @property
    def tool_process_limit(self) -> int:
        """Processes the tools may hold at once. Under gVisor a quarter of `pids_limit`: there
        every address space costs a host process that gVisor keeps, and a fork bomb's churn at
        the full limit starves the sandbox for seconds (measured: about 4,000 host processes and
        up to 10 s per bomb at 256, about 700 and 2 s at 64)."""
        if self.isolation == "gvisor":
            return max(16, self.pids_limit // 4)
        return self.pids_limit

    @property
    def memory_bytes(self) -> int:
        """The memory limit in bytes."""
        return parse_size(self.memory)
