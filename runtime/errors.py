"""The package's exception family: one root, one class per client-visible failure kind.

Each class also inherits the matching builtin so callers can catch either, and carries the
``kind`` the server maps to a gRPC status code (the only place that mapping lives is the server).
"""

from __future__ import annotations

from enum import Enum


class ErrorKind(Enum):
    """What went wrong, in terms a transport can map to its own status codes."""

    NOT_FOUND = "not_found"
    INVALID_ARGUMENT = "invalid_argument"
    FAILED_PRECONDITION = "failed_precondition"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    UNAVAILABLE = "unavailable"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    INTERNAL = "internal"


class RuntimeServiceError(Exception):
    """Root of every error this package raises on purpose."""

    kind: ErrorKind = ErrorKind.INTERNAL


class NotFoundError(RuntimeServiceError, LookupError):
    """An episode, environment or example that does not exist."""

    kind = ErrorKind.NOT_FOUND


class InvalidArgumentError(RuntimeServiceError, ValueError):
    """A malformed request: bad JSON, out-of-range values, limits above the server's caps."""

    kind = ErrorKind.INVALID_ARGUMENT


class FailedPreconditionError(RuntimeServiceError):
    """A valid request in the wrong state: stepping a finished or closed episode."""

    kind = ErrorKind.FAILED_PRECONDITION


class ResourceExhaustedError(RuntimeServiceError):
    """The server is at one of its capacity limits."""

    kind = ErrorKind.RESOURCE_EXHAUSTED


class UnavailableError(RuntimeServiceError, ConnectionError):
    """A dependency (the Docker daemon, a sandbox) cannot be reached; retrying later may work."""

    kind = ErrorKind.UNAVAILABLE


class SandboxError(UnavailableError):
    """A sandbox could not be created, reached or used (its container died, its agent channel
    broke). Not the Docker engine being unreachable: where an episode's sandbox is lost, the
    engine answers FAILED_PRECONDITION (`SandboxLostError`), never UNAVAILABLE."""


class SandboxLostError(FailedPreconditionError):
    """An episode's sandbox is gone (its container died or its agent stopped answering), so
    what needs it (scoring that reads the sandbox) cannot run; retrying will not help."""


class CommandNotRunError(RuntimeServiceError):
    """The sandbox is alive but could not run a command (e.g. it is out of processes)."""


class DeadlineExceededError(RuntimeServiceError, TimeoutError):
    """A deadline passed before the work finished (e.g. an environment's slow load)."""

    kind = ErrorKind.DEADLINE_EXCEEDED


class SandboxTimeoutError(DeadlineExceededError):
    """The caller's deadline passed before a sandbox operation finished."""


class EnvironmentHookError(RuntimeServiceError):
    """An environment hook raised: the environment's bug, not the model's or the client's."""

    kind = ErrorKind.INTERNAL
