"""The built-in tools: shell, Python, file access in the work dir, and `submit`.

Each runs inside the episode's sandbox through `ToolContext`; none touches the host.
"""

from __future__ import annotations

from runtime.sandbox.backend import ExecResult
from runtime.tools.context import ToolContext, ToolError, ToolOutput
from runtime.tools.format import exec_error_kind, format_exec
from runtime.tools.schema import Tool, tool

# Linux refuses a single argv string above 128 KiB; say so before the kernel does.
MAX_SOURCE_BYTES = 128 * 1024 - 1


def _exec_output(result: ExecResult, ctx: ToolContext) -> ToolOutput:
    sandbox = ctx.require_sandbox()
    return ToolOutput(
        content=format_exec(
            result,
            timeout_s=ctx.timeout_s,
            cap=sandbox.spec.output_cap_bytes,
            memory_bytes=sandbox.spec.memory_bytes,
            pids_limit=sandbox.spec.tool_process_limit,
        ),
        exit_code=result.exit_code,
        duration_s=result.duration_s,
        timed_out=result.timed_out,
        output_truncated=result.output_truncated,
        error=exec_error_kind(result),
    )


def _check_size(source: str, what: str) -> None:
    size = len(source.encode("utf-8", "replace"))
    if size > MAX_SOURCE_BYTES:
        raise ToolError(
            f"the {what} is {size} bytes, above the {MAX_SOURCE_BYTES + 1}-byte limit; "
            "write long programs to a file with write_file and run the file instead"
        )


@tool
async def bash(command: str, ctx: ToolContext) -> ToolOutput:
    """Run bash commands in a persistent shell in the sandbox and return their output.

    The working directory, variables and background jobs carry over to the next call.

    Args:
        command: The bash script to run. If it times out, it and every process the shell
            started are killed and the shell restarts fresh.
    """
    _check_size(command, "command")
    result = await ctx.require_sandbox().exec(
        command, timeout_s=ctx.timeout_s, kind="bash", session=True
    )
    return _exec_output(result, ctx)


@tool
async def python(code: str, ctx: ToolContext) -> ToolOutput:
    """Run Python 3 code in a persistent interpreter in the sandbox and return its output.

    Variables, imports and functions carry over to the next call; the value of a final
    expression is printed, as in a REPL.

    Args:
        code: The source to run. Use print() to show results.
    """
    _check_size(code, "program")
    result = await ctx.require_sandbox().exec(
        code, timeout_s=ctx.timeout_s, kind="python", session=True
    )
    return _exec_output(result, ctx)


@tool
async def read_file(path: str, ctx: ToolContext) -> ToolOutput:
    """Read a text file from the work directory.

    Args:
        path: File path, relative to the work directory.
    """
    result = await ctx.require_sandbox().read_file(path, max_bytes=ctx.output_cap_bytes)
    if not result.ok:
        raise ToolError(result.error)
    content = result.content
    if result.truncated:
        content += (
            f"\n[output truncated: the file is {result.size} bytes; only the first "
            f"{ctx.output_cap_bytes} are shown]"
        )
    return ToolOutput(content=content or "(empty file)", output_truncated=result.truncated)


@tool
async def write_file(path: str, content: str, ctx: ToolContext) -> ToolOutput:
    """Create or overwrite a text file in the work directory, creating parent folders.

    Args:
        path: File path, relative to the work directory.
        content: The complete new content of the file.
    """
    result = await ctx.require_sandbox().write_file(path, content)
    if not result.ok:
        raise ToolError(result.error)
    return ToolOutput(content=f"wrote {result.size} bytes to {path}")


@tool
async def submit(answer: str, ctx: ToolContext) -> ToolOutput:
    """Submit your final answer. This ends the episode.

    Args:
        answer: The final answer, exactly as it should be graded.
    """
    ctx.submission = answer
    ctx.submitted = True
    return ToolOutput(content="answer submitted", ends_episode=True)


BUILTIN_TOOLS: dict[str, Tool] = {t.name: t for t in (bash, python, read_file, write_file, submit)}
"""Built-in tools by name."""
