"""shell_tasks: 37 terminal tasks (text processing with find/grep/sed/awk, permissions, small
scripts, git, fixing broken scripts) graded by the final state of the sandbox.

Each task (`tasks.TASKS`) prepares the episode's sandbox before the first turn and checks the
state after the last one, from outside the model's reach; see README.md and `core`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from runtime.env import (
    Environment,
    Episode,
    EpisodeContext,
    Message,
    RewardResult,
    SandboxSpec,
    TaskExample,
    ToolCall,
    params,
)
from runtime.errors import InvalidArgumentError
from runtime.sandbox.backend import Sandbox

from .core import Box, Check, Probe, ShellTask, UncheckableError, parse_setup_output
from .tasks import CATEGORIES, TASKS

__all__ = [
    "CATEGORIES",
    "SYSTEM_PROMPT",
    "TASKS",
    "ShellTasksEnv",
    "gold_turns",
    "load_environment",
    "prepare",
    "task_by_id",
]

SYSTEM_PROMPT = """\
You work in a Linux sandbox through a bash shell. GNU coreutils, findutils, grep, sed, gawk, \
git and python3 are installed; there is no network and no root access. The working \
directory /work is also $HOME. Tools:
- bash: a persistent shell (the directory and variables carry over between calls);
- read_file / write_file: read or create files below /work;
- submit: end the episode when the task is done.
Complete the task by changing files in the sandbox. You are graded on the final state of the \
sandbox, checked after you submit (the text you pass to submit is not graded); scripts you \
are asked to write are run on new inputs."""

SCRATCH_KEY = "shell_tasks"
SETUP_TIMEOUT_S = 60.0

_BY_ID: dict[str, ShellTask] = {task.id: task for task in TASKS}
if len(_BY_ID) != len(TASKS):  # pragma: no cover - a bug in the task list
    raise RuntimeError("two shell tasks share an id")


def task_by_id(task_id: str) -> ShellTask:
    """The task with this id; `KeyError` if there is none."""
    return _BY_ID[task_id]


def _record(task: ShellTask) -> dict[str, Any]:
    return {
        "input": task.instruction,
        "output": task.id,
        "metadata": {"task_id": task.id, "category": task.category},
    }


def _call(call_id: str, name: str, **arguments: str) -> Message:
    arguments_text = json.dumps(arguments, ensure_ascii=False)
    call = ToolCall(id=call_id, name=name, arguments=arguments_text)
    return Message(role="assistant", tool_calls=[call])


def gold_turns(task: ShellTask) -> list[Message]:
    """The assistant turns that solve ``task``: one `bash` call running its reference solution
    in /work (the solution reads whatever the seeded setup made, so it fits every seed), then
    a `submit` call."""
    return [
        _call("gold_bash", "bash", command=task.solution),
        _call("gold_submit", "submit", answer="done"),
    ]


async def prepare(task: ShellTask, sandbox: Sandbox, ctx: EpisodeContext) -> dict[str, Any]:
    """Run ``task``'s setup in ``sandbox`` (untouched so far) and return what its checker
    expects: the setup's facts, the ``@@key=value`` lines of its script (``setup``) and the
    listings of its snapshot roots (``before``). A failure is the environment's bug."""
    plan = task.setup(ctx.rng)
    box = Box(sandbox, SETUP_TIMEOUT_S)
    await box.write(plan.files)
    recorded: dict[str, str] = {}
    if plan.script:
        result = await box.sh(plan.script, timeout_s=SETUP_TIMEOUT_S)
        if result.exit_code != 0:
            raise RuntimeError(
                f"setup of shell task {task.id!r} failed with exit {result.exit_code}: "
                f"{(result.stderr or result.stdout)[-500:]}"
            )
        recorded = parse_setup_output(result.stdout)
    before = {}
    for root in plan.snapshot:
        listing = await box.snapshot(root)
        if listing is None:
            raise RuntimeError(f"setup of shell task {task.id!r}: cannot list /work/{root}")
        before[root] = listing
    return {**plan.expected, "setup": recorded, "before": before}


class ShellTasksEnv(Environment):
    """Terminal tasks graded by inspecting the sandbox; reward 1 when every check passes."""

    id = "shell_tasks"
    description = (
        "37 terminal tasks in a Linux sandbox: text processing with find/grep/sed/awk, file "
        "permissions, small scripts, git in a repository and fixing broken scripts; graded by "
        "checking the final state (scripts are run on new inputs in a fresh sandbox)."
    )
    system_prompt = SYSTEM_PROMPT
    tools = ["bash", "read_file", "write_file", "submit"]

    def __init__(
        self,
        *,
        tasks: Sequence[ShellTask],
        max_turns: int = 20,
        call_timeout_s: float = 20.0,
    ) -> None:
        self.dataset = [_record(task) for task in tasks]
        self.max_turns = max_turns
        self.sandbox = SandboxSpec(call_timeout_s=call_timeout_s)

    @staticmethod
    def task_of(example: TaskExample) -> ShellTask:
        """The task an example names (by ``metadata.task_id`` or ``output``)."""
        task_id = str(example.metadata.get("task_id") or example.output)
        task = _BY_ID.get(task_id)
        if task is None:
            raise InvalidArgumentError(
                f"unknown shell task {task_id[:80]!r}; an example must name one of "
                f"{sorted(_BY_ID)} in metadata.task_id or output"
            )
        return task

    def gold_actions(self, example: TaskExample) -> list[Message]:
        """The gold turns of the example's task (`gold_turns`), for `env test` and SFT export."""
        return gold_turns(self.task_of(example))

    async def start_episode(self, example: TaskExample, ctx: EpisodeContext) -> list[Message]:
        """Set the task up in the sandbox (one-shot commands), then the system prompt and the
        instruction. What the checker expects stays in ``ctx.scratch``, on the host."""
        task = self.task_of(example)
        if ctx.sandbox is None:
            raise RuntimeError("shell_tasks needs a sandbox")
        ctx.scratch[SCRATCH_KEY] = {
            "task_id": task.id,
            "expected": await prepare(task, ctx.sandbox, ctx),
        }
        return [
            Message(role="system", content=self.system_prompt),
            Message(role="user", content=task.instruction),
        ]

    async def score_episode(
        self, example: TaskExample, episode: Episode, ctx: EpisodeContext
    ) -> RewardResult:
        """1.0 when every check of the task passes on the final state, else 0.0.

        First every process the model left in the sandbox is killed (scoring a running
        episode therefore resets its shell); the submitted text is not graded.
        """
        task = self.task_of(example)
        state = ctx.scratch.get(SCRATCH_KEY)
        meta: dict[str, Any] = {
            "task_id": task.id,
            "category": task.category,
            "submitted": episode.submitted,
        }
        if state is None or state.get("task_id") != task.id:
            raise RuntimeError("the episode was not set up by shell_tasks.start_episode")
        if ctx.sandbox is None:
            return RewardResult(
                score=0.0, reason="the sandbox is gone: nothing to check", metadata=meta
            )
        started = time.monotonic()
        probe = Probe(ctx.sandbox, ctx, timeout_s=30.0)
        if not await probe.freeze():
            checks = [
                Check("processes_stopped", False, "the model's processes could not be stopped")
            ]
        else:
            try:
                checks = await task.check(probe, state["expected"])
            except UncheckableError as exc:
                checks = [Check("checkable", False, str(exc))]
        meta["check_s"] = round(time.monotonic() - started, 3)
        meta["checks"] = [{"name": c.name, "ok": c.ok, "detail": c.detail[:300]} for c in checks]
        failed = [c for c in checks if not c.ok]
        passed = bool(checks) and not failed
        if passed:
            reason = f"all {len(checks)} checks passed"
        else:
            reason = "failed: " + "; ".join(
                f"{c.name}" + (f" ({c.detail[:200]})" if c.detail else "") for c in failed
            )
        return RewardResult(
            score=1.0 if passed else 0.0,
            threshold=1.0,
            reason=reason[:1000],
            components={c.name: 1.0 if c.ok else 0.0 for c in checks},
            metadata=meta,
        )


def load_environment(
    task_ids: list[str] | None = None,
    categories: list[str] | None = None,
    num_examples: int | None = None,
    max_turns: int = 20,
    call_timeout_s: float = 20.0,
) -> ShellTasksEnv:
    """The shell_tasks environment.

    Args:
        task_ids: Keep only these tasks (see `TASKS`), in the order given; None keeps all.
        categories: Keep only tasks of these categories (`CATEGORIES`); None keeps all.
        num_examples: Keep only the first N tasks (after the filters); None keeps all.
        max_turns: Assistant turns before an episode is truncated.
        call_timeout_s: Timeout of each tool call in the sandbox, in seconds.
    """
    params.optional_integer("num_examples", num_examples)
    params.integer("max_turns", max_turns)
    params.seconds("call_timeout_s", call_timeout_s)
    chosen = list(TASKS)
    if task_ids is not None:
        wanted = [task_ids] if isinstance(task_ids, str) else [str(t) for t in task_ids]
        if not wanted:
            raise ValueError("task_ids must not be empty")
        unknown = [t for t in wanted if t not in _BY_ID]
        if unknown:
            raise ValueError(f"unknown task ids {unknown[:5]}; valid ids: {sorted(_BY_ID)}")
        if len(set(wanted)) != len(wanted):
            raise ValueError("task_ids has duplicates")
        chosen = [_BY_ID[t] for t in wanted]
    if categories is not None:
        cats = [categories] if isinstance(categories, str) else [str(c) for c in categories]
        if not cats:
            raise ValueError(f"categories must not be empty; valid categories: {list(CATEGORIES)}")
        unknown = sorted(set(cats) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown categories {unknown}; valid categories: {list(CATEGORIES)}")
        chosen = [t for t in chosen if t.category in cats]
        if not chosen:
            raise ValueError("no task matches both task_ids and categories")
    if num_examples is not None:
        chosen = chosen[:num_examples]
    return ShellTasksEnv(tasks=chosen, max_turns=max_turns, call_timeout_s=float(call_timeout_s))
