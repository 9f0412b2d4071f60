"""How command results read to the model: output first, then one bracketed line per condition."""

from __future__ import annotations

from runtime.sandbox.backend import ExecResult


def _mib(value: int) -> str:
    return f"{value / (1024 * 1024):.0f} MiB"


def format_exec(
    result: ExecResult, *, timeout_s: float, cap: int, memory_bytes: int, pids_limit: int
) -> str:
    """The tool message text for one command's result."""
    parts: list[str] = []
    if result.stdout:
        parts.append(result.stdout.rstrip("\n"))
    if result.stderr:
        parts.append("[stderr]\n" + result.stderr.rstrip("\n"))
    for name, truncated, total in (
        ("stdout", result.stdout_truncated, result.stdout_bytes),
        ("stderr", result.stderr_truncated, result.stderr_bytes),
    ):
        if truncated:
            parts.append(
                f"[output truncated: {name} was {total} bytes; only the first {cap} are shown]"
            )
    if result.timed_out:
        parts.append(
            f"[timed out after {timeout_s:g} s: the command and every process it started "
            "were killed]"
        )
    elif result.process_limit:
        parts.append(
            f"[process limit: the sandbox's limit of {pids_limit} processes was reached and "
            "held, so every process the tools had started was killed]"
        )
    elif result.oom_killed:
        parts.append(
            f"[out of memory: a process exceeded the sandbox's {_mib(memory_bytes)} memory "
            "limit and was killed]"
        )
    elif result.exit_code is not None and result.exit_code < 0:
        parts.append(f"[killed by signal {-result.exit_code}]")
    elif result.exit_code:
        parts.append(f"[exit code: {result.exit_code}]")
    if result.session_reset:
        parts.append(
            "[the session was restarted: the next call starts fresh, without the previous "
            "working directory, variables or background jobs]"
        )
    return "\n".join(parts) if parts else "(no output)"


def exec_error_kind(result: ExecResult) -> str | None:
    """The machine-readable failure kind of a command's result, None when it succeeded."""
    if result.timed_out:
        return "timeout"
    if result.process_limit:
        return "process_limit"
    if result.oom_killed:
        return "out_of_memory"
    if result.exit_code != 0:
        return "nonzero_exit"
    if result.output_truncated:
        return "output_truncated"
    return None
