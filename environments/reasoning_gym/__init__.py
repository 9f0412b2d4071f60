"""reasoning_gym: procedural tasks of the `reasoning-gym` package, graded by its own checkers.

The dataset is generated at load time with ``reasoning_gym.create_dataset(task, size=size,
seed=seed)`` for each task and interleaved; the same params always give the same examples. The
model answers inside ``<answer>…</answer>`` tags (single turn by default, no sandbox); the answer
is graded by the task's own ``score_answer``, after the task's audited answer grammar
(`grammar.py`); partial credit is off unless asked for. See README.md.
"""

from __future__ import annotations

import asyncio
import copy
import difflib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runtime.env import (
    Action,
    Environment,
    Episode,
    EpisodeContext,
    Message,
    RewardResult,
    Rubric,
    SandboxSpec,
    StepResult,
    TaskExample,
    ToolCall,
    XMLParser,
    answer_tool_calls,
    params,
    reward,
)
from runtime.errors import InvalidArgumentError

from .grammar import AUDITED_TASKS, check_grammar
from .guard import GUARDED_TASKS, REFERENCE_EVAL_TASKS, check_answer

if TYPE_CHECKING:
    from reasoning_gym.dataset import ProceduralDataset

__all__ = [
    "ANSWER_INSTRUCTION",
    "AUDITED_TASKS",
    "DEFAULT_TASKS",
    "TOOLS_SYSTEM_PROMPT",
    "Grade",
    "ReasoningGymEnv",
    "available_tasks",
    "extract_answer",
    "load_environment",
]

DEFAULT_TASKS: tuple[str, ...] = (
    "basic_arithmetic",
    "chain_sum",
    "leg_counting",
    "gcd",
    "letter_counting",
)
"""Cheap tasks that need no network, whose checkers never evaluate the answer as code, and
which are audited (`AUDITED_TASKS`)."""
MAX_SIZE = 10_000
"""Most examples per task."""
MAX_ANSWER_CHARS = 20_000
"""Longer answers are graded 0 without calling the checker (unless the reference is longer)."""
CHECKER_TIMEOUT_S = 10.0
"""A checker that takes longer scores 0 (its thread cannot be stopped; it finishes on its own)."""

ANSWER_INSTRUCTION = (
    "When you are done, give only your final answer inside <answer></answer> tags, "
    "for example <answer>your answer</answer>. Only the last <answer> block is graded."
)
TOOLS_SYSTEM_PROMPT = """\
You solve reasoning problems. You have two tools:
- python: runs Python 3 code in a persistent interpreter (variables carry over between calls) \
and returns its output; print() what you need.
- submit: submits your final answer and ends the episode.
Call submit with only the final answer, in exactly the format the problem asks for."""

PARSER = XMLParser(fields=["answer"])
"""Finds the ``<answer>`` block of the final text."""
_THINK_CLOSE = "</think>"
_GRADE_KEY = "reasoning_gym.grade"


def _reasoning_gym() -> Any:
    try:
        import reasoning_gym
    except ImportError as exc:
        raise RuntimeError(
            "the reasoning_gym environment needs the `reasoning-gym` package: "
            "pip install 'reasoning-gym>=0.1.25' (or the project's `environments` extra)"
        ) from exc
    return reasoning_gym


def available_tasks() -> list[str]:
    """Every task name the installed `reasoning-gym` registers, sorted."""
    _reasoning_gym()
    from reasoning_gym.factory import DATASETS

    return sorted(DATASETS)


def _answer_section(text: str) -> str:
    """The text after the last ``</think>``: reasoning may quote tags, the answer comes after."""
    cut = text.rfind(_THINK_CLOSE)
    return text if cut < 0 else text[cut + len(_THINK_CLOSE) :]


def extract_answer(episode: Episode) -> tuple[str | None, float]:
    """The model's answer and the format score (1 when the ``<answer>`` block is well formed).

    A submission (``use_tools=True``) is the answer itself, tags optional; otherwise the answer
    is the last ``<answer>`` block of the final assistant text (after any ``</think>``).
    """
    if episode.submitted:
        submitted = "" if episode.submission is None else str(episode.submission)
        if "<answer>" in submitted:
            answer = PARSER.parse_answer(submitted)
        else:
            answer = submitted.strip() or None
        return answer, 1.0 if answer else 0.0
    section = _answer_section(episode.final_response_text or "")
    return PARSER.parse_answer(section), PARSER.format_score(section)


def _json_copy(value: Any) -> Any:
    """A plain-JSON copy of ``value``, or None if it is not JSON-serialisable."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        return None


@dataclass(frozen=True)
class Grade:
    """What the checker made of an answer."""

    score: float
    answer: str | None
    note: str


class ReasoningGymEnv(Environment):
    """reasoning-gym tasks: answer in ``<answer>`` tags; graded by the task's own checker.

    The object keeps the generated entries (to grade with the exact entry the model saw) and
    one dataset object per task (its ``score_answer``); nothing per episode.
    """

    id = "reasoning_gym"
    description = (
        "Procedural reasoning tasks from the reasoning-gym package (arithmetic, counting, "
        "puzzles, ...); the answer goes in <answer> tags and is graded by the package's checker."
    )

    def __init__(
        self,
        *,
        tasks: Sequence[str],
        size: int,
        seed: int,
        max_turns: int = 1,
        use_tools: bool = False,
        call_timeout_s: float = 10.0,
        partial_credit: bool = False,
        allow_unaudited: bool = False,
    ) -> None:
        rg = _reasoning_gym()
        self.tasks = tuple(tasks)
        self.partial_credit = partial_credit
        self.allow_unaudited = allow_unaudited
        self.size = size
        self.seed = seed
        self.max_turns = max_turns
        self.use_tools = use_tools
        self._datasets: dict[str, ProceduralDataset] = {}
        self._entries: list[dict[str, Any]] = []
        built: dict[str, ProceduralDataset] = {}
        for task in self.tasks:
            try:
                built[task] = rg.create_dataset(task, size=size, seed=seed)
            except Exception as exc:
                raise ValueError(
                    f"reasoning-gym task {task!r} cannot be built from size and seed alone: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        self._datasets.update(built)
        records: list[dict[str, Any]] = []
        for position in range(size):
            for task in self.tasks:
                try:
                    entry = built[task][position]
                except Exception as exc:
                    raise ValueError(
                        f"reasoning-gym task {task!r} failed to generate entry {position}: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                records.append(self._record(task, position, entry))
                self._entries.append(entry)
        self.dataset = records
        if use_tools:
            self.tools = ["python", "submit"]
            self.sandbox = SandboxSpec(call_timeout_s=call_timeout_s)
            self.system_prompt = TOOLS_SYSTEM_PROMPT
        else:
            self.tools = ()
            self.sandbox = None
            self.system_prompt = None
        self.rubric = Rubric(
            [
                reward(self._correctness, name="correctness", weight=1.0),
                reward(self._format, name="format", weight=0.0),
            ],
            threshold=1.0,
        )

    def _record(self, task: str, position: int, entry: Mapping[str, Any]) -> dict[str, Any]:
        question = str(entry.get("question", ""))
        answer = entry.get("answer")
        metadata: dict[str, Any] = {
            "task": task,
            "entry_index": position,
            "seed": self.seed,
            "size": self.size,
            "question": question,
        }
        entry_metadata = _json_copy(entry.get("metadata", {}))
        if entry_metadata is not None:
            metadata["entry_metadata"] = entry_metadata
        return {
            "input": f"{question.rstrip()}\n\n{ANSWER_INSTRUCTION}",
            "output": None if answer is None else str(answer),
            "metadata": metadata,
        }

    # --- the dataset objects and entries -------------------------------------------------

    def _dataset(self, task: str) -> ProceduralDataset:
        """The task's dataset object (built lazily for a task outside `tasks`)."""
        found = self._datasets.get(task)
        if found is None:
            found = _reasoning_gym().create_dataset(task, size=1, seed=self.seed)
            self._datasets[task] = found
        return found

    def _inline_task(self, example: TaskExample) -> str:
        task = example.metadata.get("task")
        if not isinstance(task, str) or task not in available_tasks():
            raise InvalidArgumentError(
                "an inline reasoning_gym example needs metadata.task naming a reasoning-gym "
                f"task, got {task!r}"
            )
        if task in REFERENCE_EVAL_TASKS:
            raise InvalidArgumentError(
                f"inline examples of task {task!r} are not accepted: its checker evaluates the "
                "reference as code; play it by example index"
            )
        if task not in AUDITED_TASKS and not self.allow_unaudited:
            raise InvalidArgumentError(
                f"inline examples of task {task!r} are not accepted: its checker is not "
                "audited (load the environment with allow_unaudited=true to allow it)"
            )
        return task

    def _entry(self, example: TaskExample) -> tuple[str, dict[str, Any]]:
        """The task name and the entry to grade against: the generated one for a dataset row,
        one rebuilt from the record for an inline example."""
        index = example.index
        if index is not None and 0 <= index < len(self._entries):
            task = str(example.metadata.get("task"))
            return task, self._entries[index]
        task = self._inline_task(example)
        entry_metadata = example.metadata.get("entry_metadata")
        question = example.metadata.get("question", example.input)
        return task, {
            "question": str(question),
            "answer": None if example.output is None else str(example.output),
            "metadata": dict(entry_metadata) if isinstance(entry_metadata, Mapping) else {},
        }

    # --- hooks ---------------------------------------------------------------------------

    def gold_actions(self, example: TaskExample) -> list[Message] | None:
        """The turn that answers ``example`` with its gold ``output``: a `submit` call of the
        answer with ``use_tools`` (the submission is what is graded), else a message whose
        content is ``<answer>{gold}</answer>``. None for a row without gold (the tasks whose
        checker verifies a solution, e.g. ``graph_color``): `env test` fails such rows."""
        if example.output is None:
            return None
        gold = str(example.output)
        if self.use_tools:
            arguments = json.dumps({"answer": gold}, ensure_ascii=False)
            call = ToolCall(id="gold_submit", name="submit", arguments=arguments)
            return [Message(role="assistant", tool_calls=[call])]
        return [Message(role="assistant", content=f"<answer>{gold}</answer>")]

    async def start_episode(self, example: TaskExample, ctx: EpisodeContext) -> list[Message]:
        """The question with the answer-format instruction (added to inline inputs too)."""
        if example.index is None:
            self._inline_task(example)
        messages = await super().start_episode(example, ctx)
        last = messages[-1]
        if last.role == "user" and ANSWER_INSTRUCTION not in (last.content or ""):
            text = (last.content or "").rstrip()
            messages[-1] = last.model_copy(update={"content": f"{text}\n\n{ANSWER_INSTRUCTION}"})
        return messages

    async def step_episode(
        self,
        example: TaskExample,
        messages: list[Message],
        action: Action,
        ctx: EpisodeContext,
    ) -> StepResult:
        """With tools, the default (run calls; a reply without calls ends the episode).
        Without, every reply ends the episode; stray tool calls are answered, not run."""
        if self.use_tools:
            return await super().step_episode(example, messages, action, ctx)
        replies = answer_tool_calls(action, "error: this environment has no tools; answer in text")
        return StepResult(done=True, messages=replies, final_response_text=action.message.content)

    # --- reward --------------------------------------------------------------------------

    async def grade(self, example: TaskExample, episode: Episode) -> Grade:
        """Run the task's checker on the episode's answer (never raises)."""
        answer, _ = extract_answer(episode)
        if answer is None:
            return Grade(0.0, None, "no answer in <answer></answer> tags")
        try:
            task, entry = self._entry(example)
        except InvalidArgumentError as exc:
            return Grade(0.0, answer, str(exc))
        reference = entry.get("answer")
        limit = max(MAX_ANSWER_CHARS, 2 * len(str(reference or "")))
        if len(answer) > limit:
            return Grade(0.0, answer, f"the answer is longer than {limit} characters")
        if task in AUDITED_TASKS:
            refused = check_grammar(task, answer, entry)
            if refused is not None:
                return Grade(0.0, answer, f"not checked: {refused}")
        elif not self.allow_unaudited:
            return Grade(0.0, answer, f"not checked: task {task!r} is not audited")
        if task in GUARDED_TASKS:
            refused = check_answer(task, answer)
            if refused is not None:
                return Grade(0.0, answer, f"not checked: {refused}")
        try:
            dataset = self._dataset(task)
        except Exception as exc:
            return Grade(0.0, answer, f"task {task!r} is unavailable: {exc}")
        try:
            value = await asyncio.wait_for(
                asyncio.to_thread(dataset.score_answer, answer, copy.deepcopy(entry)),
                CHECKER_TIMEOUT_S,
            )
        except TimeoutError:
            return Grade(0.0, answer, f"the checker took over {CHECKER_TIMEOUT_S:g} s")
        except Exception as exc:
            # Checkers raise on some malformed answers (e.g. int("abc")): the model's mistake.
            return Grade(0.0, answer, f"the checker rejected it: {type(exc).__name__}: {exc}")
        try:
            score = float(value)
        except (TypeError, ValueError):
            return Grade(0.0, answer, f"the checker returned {value!r}, not a number")
        if not math.isfinite(score):
            return Grade(0.0, answer, f"the checker returned {score}")
        if score < 1.0 and not self.partial_credit:
            return Grade(0.0, answer, f"checker score {score:.4g}; partial credit is off")
        return Grade(min(1.0, max(0.0, score)), answer, f"checker score {score:.4g}")

    async def _correctness(
        self, example: TaskExample, episode: Episode, scratch: dict[str, Any]
    ) -> float:
        found = await self.grade(example, episode)
        scratch[_GRADE_KEY] = found
        return found.score

    @staticmethod
    def _format(episode: Episode) -> float:
        return extract_answer(episode)[1]

    async def score_episode(
        self, example: TaskExample, episode: Episode, ctx: EpisodeContext
    ) -> RewardResult:
        """The rubric (correctness, weight 1; format, a metric) plus what was graded."""
        assert self.rubric is not None
        result = await self.rubric.score(example, episode, ctx)
        found = ctx.scratch.pop(_GRADE_KEY, None)
        turns = episode.turn_count
        metadata = dict(result.metadata)
        metadata.update(
            {
                "task": example.metadata.get("task"),
                "entry_index": example.metadata.get("entry_index"),
                "reference": example.output,
                "answer": None if found is None or found.answer is None else found.answer[:500],
                "per_turn_rewards": [0.0] * max(0, turns - 1) + ([result.score] if turns else []),
            }
        )
        note = found.note if found is not None else "not graded"
        return result.model_copy(
            update={"metadata": metadata, "reason": f"{note}; {result.reason}"[:1000]}
        )


def load_environment(
    tasks: Sequence[str] | None = DEFAULT_TASKS,
    size: int = 50,
    seed: int = 0,
    max_turns: int = 1,
    use_tools: bool = False,
    call_timeout_s: float = 10.0,
    partial_credit: bool = False,
    allow_unaudited: bool = False,
) -> ReasoningGymEnv:
    """The reasoning_gym environment.

    Args:
        tasks: reasoning-gym task names (see `available_tasks()`); None means `DEFAULT_TASKS`.
            A single name is taken as a one-task list.
        size: Examples per task; the dataset interleaves the tasks (``len(tasks) * size`` rows).
        seed: Seed of every task's generator; the same params give the same dataset.
        max_turns: Assistant turns before truncation (raise it with ``use_tools``).
        use_tools: Give the model `python` and `submit` in a sandbox; the submission is graded.
        call_timeout_s: Per tool call timeout with ``use_tools``, in seconds.
        partial_credit: Keep the checkers' partial credit (scores below 1). Off by default:
            it pays answers that merely contain the reference, or any answer at all.
        allow_unaudited: Allow tasks outside `AUDITED_TASKS`, whose checkers have not been
            audited against forged answers (they still pass the code-execution guard).
    """
    names: list[str]
    if tasks is None:
        names = list(DEFAULT_TASKS)
    elif isinstance(tasks, str):
        names = [tasks]
    elif isinstance(tasks, list | tuple):
        names = list(tasks)
    else:
        raise TypeError(f"tasks must be a list of task names, got {tasks!r}")
    valid = available_tasks()
    if not names:
        raise ValueError(f"tasks must not be empty; valid tasks: {', '.join(valid)}")
    if not all(isinstance(name, str) for name in names):
        raise TypeError(f"tasks must be strings, got {names!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"tasks contains duplicates: {names}")
    unknown = [name for name in names if name not in valid]
    if unknown:
        hints = sorted({m for n in unknown for m in difflib.get_close_matches(n, valid, n=3)})
        hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
        raise ValueError(
            f"unknown reasoning-gym tasks {unknown}{hint}; valid tasks: {', '.join(valid)}"
        )
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_SIZE:
        raise ValueError(f"size must be an integer in [1, {MAX_SIZE}], got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    params.integer("max_turns", max_turns)
    if not isinstance(use_tools, bool):
        raise TypeError(f"use_tools must be true or false, got {use_tools!r}")
    params.seconds("call_timeout_s", call_timeout_s)
    for name, flag in (("partial_credit", partial_credit), ("allow_unaudited", allow_unaudited)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be true or false, got {flag!r}")
    unaudited = [name for name in names if name not in AUDITED_TASKS]
    if unaudited and not allow_unaudited:
        raise ValueError(
            f"tasks {unaudited} are not audited: their checkers may pay answers that do not do "
            "the task; pass allow_unaudited=true to use them anyway (audited tasks: "
            f"{', '.join(sorted(AUDITED_TASKS))})"
        )
    return ReasoningGymEnv(
        tasks=names,
        size=size,
        seed=seed,
        max_turns=max_turns,
        use_tools=use_tools,
        call_timeout_s=float(call_timeout_s),
        partial_credit=partial_credit,
        allow_unaudited=allow_unaudited,
    )
