"""python_math: arithmetic and word problems solved with the `python` tool, then `submit`.

The dataset (`data.jsonl`, 200 problems in six families) is written by `generate.py`; see
README.md. Only an answer passed to `submit` is graded: an answer typed in a plain message
scores 0. The grader compares the submission with the reference after `normalize_answer`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import Any

from runtime.env import (
    Environment,
    Episode,
    EpisodeContext,
    RewardResult,
    SandboxSpec,
    TaskExample,
    answers,
    params,
)
from runtime.env.dataset import read_jsonl

__all__ = [
    "DATA_FILE",
    "SYSTEM_PROMPT",
    "PythonMathEnv",
    "answers_match",
    "available_families",
    "clean_answer",
    "load_environment",
    "normalize_answer",
    "parse_number",
]

DATA_FILE = Path(__file__).resolve().parent / "data.jsonl"

SYSTEM_PROMPT = """\
You solve math problems with the help of a Python sandbox. You have two tools:
- python: runs Python 3 code in a persistent interpreter (variables and imports carry over \
between calls) and returns its output. Do every computation with it instead of by hand, and \
print() the values you need. Prefer exact arithmetic (integers and fractions.Fraction) over \
floats.
- submit: submits your final answer and ends the episode.
When you have the result, call submit with only the final answer, written in exactly the \
format the problem asks for (for example 1234, -7/12 or 12.50): no words, units, $ signs or \
explanation. Only the submitted answer is graded; an answer written in a message without \
calling submit scores zero."""

MAX_NUMBER_CHARS = 1_000
"""Longer strings are never parsed as numbers (keeps hostile input cheap to grade)."""
_WRAPPERS = "`$"


def clean_answer(text: object) -> str:
    """Strip whitespace, a trailing period and surrounding ``$`` / backticks, repeatedly."""
    value = "" if text is None else str(text)
    while True:
        before = value
        value = value.strip().strip(_WRAPPERS)
        if value.endswith("."):
            value = value[:-1]
        if value == before:
            return value


def parse_number(text: str) -> Fraction | None:
    """The exact value of a cleaned answer (``42``, ``-3.50``, ``1,234``, ``3/6``), or None."""
    return answers.parse_number(text, max_chars=MAX_NUMBER_CHARS)


def normalize_answer(text: object) -> str:
    """The canonical form answers are compared in.

    The text is cleaned (`clean_answer`); a number becomes its exact value, written ``n`` when
    whole and ``n/d`` in lowest terms otherwise (``"42.0"`` -> ``"42"``, ``"3/6"`` ->
    ``"1/2"``, ``"1,234"`` -> ``"1234"``, ``"12.50"`` -> ``"25/2"``); anything else is kept
    as cleaned, so it must match exactly (case and inner spacing included).
    """
    cleaned = clean_answer(text)
    number = parse_number(cleaned)
    return cleaned if number is None else answers.canonical_number(number)


def answers_match(submitted: object, reference: object) -> bool:
    """Whether a submission equals the reference once both are normalised."""
    return normalize_answer(submitted) == normalize_answer(reference)


@cache
def _read_records() -> tuple[dict[str, Any], ...]:
    return tuple(read_jsonl(DATA_FILE))


def available_families() -> list[str]:
    """The problem families in the shipped dataset, sorted."""
    return sorted({str(r["metadata"]["family"]) for r in _read_records()})


class PythonMathEnv(Environment):
    """Math problems: compute with `python`, answer with `submit`; reward 1 for a match."""

    id = "python_math"
    description = (
        "Arithmetic, modular arithmetic, series, word problems, number theory and exact "
        "fractions; the model computes with the python tool and submits the final answer."
    )
    system_prompt = SYSTEM_PROMPT
    tools = ["python", "submit"]

    def __init__(
        self,
        *,
        dataset: str | Sequence[dict[str, Any]] = "data.jsonl",
        max_turns: int = 8,
        call_timeout_s: float = 10.0,
    ) -> None:
        self.dataset = dataset
        self.max_turns = max_turns
        self.sandbox = SandboxSpec(call_timeout_s=call_timeout_s)

    async def score_episode(
        self, example: TaskExample, episode: Episode, ctx: EpisodeContext
    ) -> RewardResult:
        """1.0 when the submitted answer equals the reference after normalisation, else 0.0.

        Only `submit` counts: the final assistant text is ignored when nothing was submitted.
        """
        reference = "" if example.output is None else str(example.output)
        if not episode.submitted:
            return RewardResult(
                score=0.0,
                reason="no answer submitted",
                components={"correct": 0.0, "submitted": 0.0},
                metadata={"reference": reference},
            )
        submitted = "" if episode.submission is None else str(episode.submission)
        got, want = normalize_answer(submitted), normalize_answer(reference)
        correct = got == want
        if correct:
            reason = f"correct: submitted {submitted[:200]!r}, reference {reference!r}"
        else:
            reason = f"incorrect: expected {reference!r}, got {submitted[:200]!r}"
        return RewardResult(
            score=1.0 if correct else 0.0,
            threshold=1.0,
            reason=reason,
            components={"correct": 1.0 if correct else 0.0, "submitted": 1.0},
            metadata={
                "reference": reference,
                "normalized_submission": got[:200],
                "normalized_reference": want,
            },
        )


def load_environment(
    num_examples: int | None = None,
    families: list[str] | None = None,
    max_turns: int = 8,
    call_timeout_s: float = 10.0,
) -> PythonMathEnv:
    """The python_math environment.

    Args:
        num_examples: Keep only the first N problems (of the selected families, in file
            order, which interleaves the families); None keeps all. More than there are
            keeps all.
        families: Keep only these families (see `available_families()`); None keeps all.
        max_turns: Assistant turns before an episode is truncated.
        call_timeout_s: Timeout of each tool call in the sandbox, in seconds.
    """
    params.optional_integer("num_examples", num_examples)
    params.integer("max_turns", max_turns)
    params.seconds("call_timeout_s", call_timeout_s)

    dataset: str | list[dict[str, Any]] = "data.jsonl"
    if families is not None or num_examples is not None:
        records = list(_read_records())
        if families is not None:
            wanted = [families] if isinstance(families, str) else list(families)
            valid = available_families()
            if not wanted:
                raise ValueError(f"families must not be empty; valid families: {valid}")
            unknown = sorted({str(f) for f in wanted} - set(valid))
            if unknown:
                raise ValueError(f"unknown families {unknown}; valid families: {valid}")
            records = [r for r in records if r["metadata"]["family"] in wanted]
        if num_examples is not None:
            records = records[:num_examples]
        dataset = copy.deepcopy(records)
    return PythonMathEnv(dataset=dataset, max_turns=max_turns, call_timeout_s=call_timeout_s)
