"""double_check: answer, get asked to verify, answer again; the final answer is graded.

Two turns, no tools, no sandbox. Turn 1: the model answers a question in ``<answer>`` tags.
The environment replies with `VERIFY_PROMPT`. Turn 2: the model answers again and the episode
ends. The reward is whether the final (turn-2) answer matches the reference after
normalisation (`normalize_answer`); the first answer, whether it was revised and whether the
revision fixed it are reported as metrics. See README.md.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from runtime.env import (
    Action,
    Environment,
    Episode,
    EpisodeContext,
    Message,
    RewardResult,
    Rubric,
    StepResult,
    TaskExample,
    XMLParser,
    answer_tool_calls,
    params,
    reward,
)
from runtime.env.answers import canonical_number, parse_number
from runtime.env.dataset import read_jsonl

__all__ = [
    "DATA_FILE",
    "KINDS",
    "SYSTEM_PROMPT",
    "VERIFY_PROMPT",
    "DoubleCheckEnv",
    "answers_match",
    "load_environment",
    "normalize_answer",
    "turn_answers",
]

DATA_FILE = Path(__file__).resolve().parent / "data.jsonl"
KINDS = ("arithmetic", "fact")

SYSTEM_PROMPT = (
    "Answer the user's question. You may reason first; then give your final answer inside "
    "<answer></answer> tags, for example <answer>42</answer>. Only the last <answer> block "
    "counts."
)
VERIFY_PROMPT = (
    "Please verify your answer step by step and give your final answer again in "
    "<answer></answer> tags."
)
TURNS = 2

PARSER = XMLParser(fields=["answer"])
MAX_NUMBER_CHARS = 200
"""Longer strings are never parsed as numbers (keeps hostile input cheap to grade)."""
_THINK_CLOSE = "</think>"
_TURN_KEY = "double_check.turn"
_STRIP = " \t\n\r`'\"*$"
_SPACES = re.compile(r"\s+")


def normalize_answer(text: object) -> str | None:
    """The form answers are compared in; None for no answer.

    Whitespace, quotes, backticks, ``*``, ``$`` and a trailing period around the answer are
    dropped. A number becomes its exact value (``"1,440"``, ``"1440.0"`` -> ``"1440"``;
    ``"0.5"``, ``"1/2"`` -> ``"1/2"``). Text is case-folded, inner whitespace collapsed, and a
    leading "the " dropped.
    """
    if text is None:
        return None
    value, before = str(text), None
    while value != before:
        before = value
        value = value.strip(_STRIP).removesuffix(".")
    if not value:
        return None
    number = parse_number(value, max_chars=MAX_NUMBER_CHARS)
    if number is not None:
        return canonical_number(number)
    value = _SPACES.sub(" ", value).casefold()
    if value.startswith("the "):
        value = value[4:]
    return value or None


def accepted_answers(example: TaskExample) -> set[str]:
    """The normalised reference and its aliases (``metadata.aliases``)."""
    aliases = example.metadata.get("aliases") or []
    if isinstance(aliases, str):
        aliases = [aliases]
    candidates = [example.output, *(aliases if isinstance(aliases, list) else [])]
    found = {normalize_answer(c) for c in candidates if c is not None}
    found.discard(None)
    return {c for c in found if c is not None}


def answers_match(answer: str | None, example: TaskExample) -> bool:
    """Whether ``answer`` equals the reference, or an alias, once normalised."""
    normalised = normalize_answer(answer)
    return normalised is not None and normalised in accepted_answers(example)


def _extract(text: str | None) -> str | None:
    """The last ``<answer>`` block's content, after any ``</think>``."""
    text = text or ""
    cut = text.rfind(_THINK_CLOSE)
    if cut >= 0:
        text = text[cut + len(_THINK_CLOSE) :]
    return PARSER.parse_answer(text)


def turn_answers(episode: Episode) -> list[str | None]:
    """The answer the model gave in each turn played (None where it gave none)."""
    return [_extract(turn.action.message.content) for turn in episode.turns]


def first_correct(example: TaskExample, episode: Episode) -> float:
    """1 when the turn-1 answer is right."""
    answers = turn_answers(episode)
    return 1.0 if answers and answers_match(answers[0], example) else 0.0


def final_correct(example: TaskExample, episode: Episode) -> float:
    """1 when the latest answer (turn 2's once played) is right."""
    answers = turn_answers(episode)
    return 1.0 if answers and answers_match(answers[-1], example) else 0.0


def revised(episode: Episode) -> float:
    """1 when the turn-2 answer differs from the turn-1 answer (after normalisation)."""
    answers = turn_answers(episode)
    if len(answers) < 2:
        return 0.0
    return 1.0 if normalize_answer(answers[0]) != normalize_answer(answers[1]) else 0.0


def improved(example: TaskExample, episode: Episode) -> float:
    """1 when a wrong first answer was revised into a right one."""
    answers = turn_answers(episode)
    if len(answers) < 2:
        return 0.0
    fixed = answers_match(answers[1], example) and not answers_match(answers[0], example)
    return 1.0 if fixed else 0.0


RUBRIC = Rubric(
    [
        reward(final_correct, weight=1.0),
        reward(first_correct, weight=0.0),
        reward(revised, weight=0.0),
        reward(improved, weight=0.0),
    ],
    threshold=1.0,
)


@cache
def _read_records() -> tuple[dict[str, Any], ...]:
    return tuple(read_jsonl(DATA_FILE))


class DoubleCheckEnv(Environment):
    """Answer, verify on request, answer again; reward 1 when the final answer is right."""

    id = "double_check"
    description = (
        "Factual and arithmetic questions; after the first answer the environment asks the "
        "model to verify it and answer again, and the final answer is graded."
    )
    system_prompt = SYSTEM_PROMPT
    tools = ()
    sandbox = None
    max_turns = TURNS
    rubric = RUBRIC

    def __init__(self, *, dataset: str | Sequence[dict[str, Any]] = "data.jsonl") -> None:
        self.dataset = dataset

    def max_episode_turns(self, example: TaskExample) -> int:
        """Always two: the answer and the verified answer."""
        return TURNS

    def gold_actions(self, example: TaskExample) -> list[Message] | None:
        """The gold turns for `env test`: the reference answer, in tags, both times."""
        if example.output is None:
            return None
        turn = Message(role="assistant", content=f"<answer>{example.output}</answer>")
        return [turn, turn.model_copy()]

    async def step_episode(
        self,
        example: TaskExample,
        messages: list[Message],
        action: Action,
        ctx: EpisodeContext,
    ) -> StepResult:
        """Turn 1: ask for verification. Turn 2: done. Tool calls are answered, never run."""
        turn = int(ctx.scratch.get(_TURN_KEY, 0)) + 1
        ctx.scratch[_TURN_KEY] = turn
        replies = answer_tool_calls(action, "error: this environment has no tools; answer in text")
        text = action.message.content
        if turn < TURNS:
            replies.append(Message(role="user", content=VERIFY_PROMPT))
            return StepResult(done=False, messages=replies, final_response_text=text)
        return StepResult(done=True, messages=replies, final_response_text=text)

    async def score_episode(
        self, example: TaskExample, episode: Episode, ctx: EpisodeContext
    ) -> RewardResult:
        """The rubric, with each turn's answer and per-turn correctness in the metadata."""
        result = await RUBRIC.score(example, episode, ctx)
        answers = turn_answers(episode)
        correct = [1.0 if answers_match(a, example) else 0.0 for a in answers]
        metadata = dict(result.metadata)
        metadata.update(
            {
                "reference": example.output,
                "answers": [None if a is None else a[:200] for a in answers],
                "per_turn_rewards": correct,
            }
        )
        if not answers:
            reason = "no turn played"
        elif answers[-1] is None:
            reason = "no final answer in <answer></answer> tags"
        else:
            verdict = "correct" if correct[-1] else f"incorrect (expected {example.output!r})"
            reason = f"final answer {answers[-1][:100]!r} is {verdict}"
        return result.model_copy(
            update={"metadata": metadata, "reason": f"{reason}; {result.reason}"[:1000]}
        )


def load_environment(
    num_examples: int | None = None,
    kinds: list[str] | None = None,
) -> DoubleCheckEnv:
    """The double_check environment.

    Args:
        num_examples: Keep only the first N questions (after kind filtering, in file order,
            which alternates the kinds); None keeps all.
        kinds: Keep only these kinds of question (``"fact"``, ``"arithmetic"``); None keeps
            both.
    """
    params.optional_integer("num_examples", num_examples)
    if kinds is None and num_examples is None:
        return DoubleCheckEnv()
    records = list(_read_records())
    if kinds is not None:
        wanted = [kinds] if isinstance(kinds, str) else list(kinds)
        if not wanted:
            raise ValueError(f"kinds must not be empty; valid kinds: {list(KINDS)}")
        unknown = sorted({str(k) for k in wanted} - set(KINDS))
        if unknown:
            raise ValueError(f"unknown kinds {unknown}; valid kinds: {list(KINDS)}")
        records = [r for r in records if r["metadata"]["kind"] in wanted]
    if num_examples is not None:
        records = records[:num_examples]
    return DoubleCheckEnv(dataset=copy.deepcopy(records))
