"""reasoning_gym's audited tasks: the laziest answers that the package's checkers pay for score 0
here, correct answers score 1, partial credit is off unless asked for, and tasks whose checkers
were not audited are refused unless explicitly allowed."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from runtime.env import (
    Action,
    Environment,
    Episode,
    EpisodeContext,
    Message,
    TaskExample,
    Turn,
)
from runtime.env.loader import load_environment, resolve_module
from runtime.errors import InvalidArgumentError

reasoning_gym = pytest.importorskip("reasoning_gym", reason="pip install 'reasoning-gym>=0.1.25'")

ENV_DIR = Path(__file__).resolve().parents[1] / "environments" / "reasoning_gym"


@pytest.fixture(scope="module")
def mod() -> ModuleType:
    return resolve_module(str(ENV_DIR))


async def score(env: Environment, example: TaskExample, answer: str) -> tuple[float, str]:
    """The score and reason of a one-turn episode answering ``<answer>{answer}</answer>``."""
    text = f"<answer>{answer}</answer>"
    turn = Turn(
        number=1,
        action=Action(message=Message(role="assistant", content=text)),
        observations=[],
        calls=[],
        done=True,
        truncated=False,
        duration_s=0.0,
    )
    episode = Episode(
        id="ep",
        environment_id="reasoning_gym",
        example=example,
        max_turns=1,
        turns=[turn],
        done=True,
        status="done",
        final_response_text=text,
    )
    ctx = EpisodeContext(
        episode_id="ep", sandbox=None, seed=None, timeout_s=10.0, output_cap_bytes=65536
    )
    result = await env.score_episode(example, episode, ctx)
    return result.score, result.reason


def upstream(task: str, size: int, seed: int, index: int, answer: str) -> float:
    """What the package's own checker pays for ``answer`` (the hole being closed)."""
    dataset = reasoning_gym.create_dataset(task, size=size, seed=seed)
    return float(dataset.score_answer(answer, dataset[index]))


def countdown_cheat(entry: dict[str, Any]) -> str:
    """Every given number times (E - E), plus the target built from sympy's name ``E``."""
    numbers = "+".join(str(n) for n in entry["metadata"]["numbers"])
    return f"({numbers})*(E-E) + " + "+".join(["E/E"] * entry["metadata"]["target"])


SIZE, SEED = 3, 0


def cheats(task: str, entry: dict[str, Any]) -> list[str]:
    """The laziest answers that the task's upstream checker pays more than 0 for."""
    reference = str(entry["answer"])
    if task == "puzzle24":
        # 6*4*1*1: the checker counts four numbers in range, never which; the second is
        # worth 73/3 and int() makes it 24 (puzzle 2 of seed 0 is [9, 9, 3, 8]).
        return ["6*4*1*1"] + (
            ["(((9*9)-8)/3)"] if entry["metadata"]["numbers"] == [9, 9, 3, 8] else []
        )
    if task == "countdown":
        numbers = entry["metadata"]["numbers"]
        return [countdown_cheat(entry), "+".join(str(n) for n in numbers)]
    if task == "string_insertion":
        # The checker's eval() fallback pays 0.1 for its own local's name and for a list.
        return ["oracle_answer", repr(list(reference))]
    if task == "letter_counting":
        return ["0123456789", reference + "0"]
    return [reference + "0", f"{reference} {reference}"]


AUDITED = [
    "basic_arithmetic",
    "chain_sum",
    "countdown",
    "gcd",
    "leg_counting",
    "letter_counting",
    "puzzle24",
    "string_insertion",
]


def test_the_audited_tasks_are_listed_and_include_the_defaults(mod: ModuleType) -> None:
    assert sorted(mod.AUDITED_TASKS) == AUDITED
    assert set(mod.DEFAULT_TASKS) <= set(AUDITED)
    readme = (ENV_DIR / "README.md").read_text()
    section = readme.split("## Audited tasks", 1)[1].split("\n## ", 1)[0]
    assert sorted(re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE)) == AUDITED


@pytest.mark.parametrize("task", AUDITED)
async def test_cheats_score_zero_and_correct_answers_one(mod: ModuleType, task: str) -> None:
    env = mod.load_environment(tasks=[task], size=SIZE, seed=SEED)
    played = 0
    for index, example in enumerate(env.examples):
        entry = reasoning_gym.create_dataset(task, size=SIZE, seed=SEED)[index]
        value, reason = await score(env, example, str(example.output))
        assert value == 1.0, (task, example.output, reason)
        for cheat in cheats(task, entry):
            paid = upstream(task, SIZE, SEED, index, cheat)
            assert paid > 0.0, (task, cheat)  # the package's checker pays for it
            value, reason = await score(env, example, cheat)
            assert value == 0.0, (task, cheat, reason)
            played += 1
    assert played >= SIZE


async def test_puzzle24_truncation_and_any_four_numbers_are_caught(mod: ModuleType) -> None:
    env = mod.load_environment(tasks=["puzzle24"], size=SIZE, seed=SEED)
    example = env.examples[2]
    assert example.metadata["entry_metadata"]["numbers"] == [9, 9, 3, 8]
    assert upstream("puzzle24", SIZE, SEED, 2, "(((9*9)-8)/3)") == 1.0
    value, reason = await score(env, example, "(((9*9)-8)/3)")
    assert value == 0.0
    assert "equals 73/3, not 24" in reason
    value, reason = await score(env, example, "6*4*1*1")
    assert value == 0.0
    assert "exactly the numbers [3, 8, 9, 9]" in reason
    assert (await score(env, example, "9 * 8 * 3 / 9"))[0] == 1.0


async def test_arithmetic_answers_may_hold_no_names(mod: ModuleType) -> None:
    env = mod.load_environment(tasks=["countdown"], size=1, seed=SEED)
    example = env.examples[0]
    entry = reasoning_gym.create_dataset("countdown", size=1, seed=SEED)[0]
    assert upstream("countdown", 1, SEED, 0, countdown_cheat(entry)) == 1.0
    for answer in (countdown_cheat(entry), f"{example.output} + 0*pi", f"{example.output} + x - x"):
        value, reason = await score(env, example, answer)
        assert value == 0.0
        assert "no names" in reason


async def test_partial_credit_is_off_unless_asked_for(mod: ModuleType) -> None:
    """With partial_credit=True the checker's partial credit is kept for answers that fit the
    grammar; the grammar still refuses the forged ones."""
    off = mod.load_environment(tasks=["gcd"], size=1)
    on = mod.load_environment(tasks=["gcd", "letter_counting"], size=1, partial_credit=True)
    gcd = off.examples[0]
    near = f"{gcd.output}{gcd.output}"
    assert (await score(off, gcd, near))[0] == 0.0
    assert (await score(on, on.examples[0], near))[0] == pytest.approx(0.5)
    letters = on.examples[1]
    assert upstream("letter_counting", 1, 0, 0, "0123456789") == pytest.approx(0.1)
    value, reason = await score(on, letters, "0123456789")
    assert value == 0.0
    assert "not checked" in reason


async def test_string_insertion_answer_never_reaches_eval_as_a_name(mod: ModuleType) -> None:
    env = mod.load_environment(tasks=["string_insertion"], size=1, partial_credit=True)
    example = env.examples[0]
    assert upstream("string_insertion", 1, 0, 0, "oracle_answer") == pytest.approx(0.1)
    value, reason = await score(env, example, "oracle_answer")
    assert value == 0.0
    assert "letters A-E" in reason


def test_unaudited_tasks_are_refused_unless_allowed(mod: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"not audited.*allow_unaudited"):
        mod.load_environment(tasks=["chain_sum", "number_sorting"], size=1)
    with pytest.raises(InvalidArgumentError, match="not audited"):
        load_environment(str(ENV_DIR), {"tasks": ["number_sorting"], "size": 1})
    env = mod.load_environment(tasks=["number_sorting"], size=1, allow_unaudited=True)
    assert [e.metadata["task"] for e in env.examples] == ["number_sorting"]


async def test_inline_examples_of_unaudited_tasks_are_refused(mod: ModuleType) -> None:
    ctx = EpisodeContext(episode_id="e", sandbox=None, seed=None, timeout_s=1, output_cap_bytes=256)
    inline = TaskExample(
        input="Spell 'cat' backward", output="tac", metadata={"task": "spell_backward"}
    )
    strict = mod.load_environment(size=1)
    with pytest.raises(InvalidArgumentError, match="not audited"):
        await strict.start_episode(inline, ctx)
    assert (await score(strict, inline, "tac"))[0] == 0.0
    allowed = mod.load_environment(size=1, allow_unaudited=True)
    assert len(await allowed.start_episode(inline, ctx)) == 1
    assert (await score(allowed, inline, "tac"))[0] == 1.0


REFERENCES_CHECKED = {"puzzle24": 100, "countdown": 200}
"""Fewer for the two generators that take ~0.1 s per entry (1000 for the others)."""


@pytest.mark.slow
@pytest.mark.parametrize("task", AUDITED)
def test_every_reference_answer_fits_its_grammar(mod: ModuleType, task: str) -> None:
    """A correct answer is never refused: the package's reference answers all fit."""
    check_grammar = mod.grammar.check_grammar
    size = REFERENCES_CHECKED.get(task, 1000)
    for entry in reasoning_gym.create_dataset(task, size=size, seed=1):
        assert check_grammar(task, entry["answer"], entry) is None, (task, entry["answer"])
