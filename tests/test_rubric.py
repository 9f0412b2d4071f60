"""Rubrics: weighting, metrics, argument injection, failing and async functions (no Docker)."""

from __future__ import annotations

import asyncio
import functools
import json
import math
from typing import Any

import pytest

from runtime.env import (
    Environment,
    Episode,
    EpisodeContext,
    ParseResult,
    RewardFunc,
    RewardResult,
    Rubric,
    TaskExample,
    ThinkParser,
    XMLParser,
    reward,
)
from runtime.env.rubric import INJECTABLE, completion_text
from runtime.tools.messages import Message

EXAMPLE = TaskExample(input="What is 6*7?", output="42", metadata={"family": "arithmetic"})


def make_episode(
    example: TaskExample = EXAMPLE,
    *,
    submission: Any = None,
    submitted: bool = False,
    final_text: str | None = None,
) -> tuple[Episode, EpisodeContext]:
    episode = Episode(
        id="ep-1",
        environment_id="test",
        example=example,
        max_turns=4,
        messages=[Message(role="user", content=str(example.input))],
        done=True,
        status="done",
        final_response_text=final_text,
        submission=submission,
        submitted=submitted,
    )
    ctx = EpisodeContext(
        episode_id="ep-1", sandbox=None, seed=None, timeout_s=10.0, output_cap_bytes=65536
    )
    return episode, ctx


async def run(rubric: Rubric, **kwargs: Any) -> RewardResult:
    episode, ctx = make_episode(**kwargs)
    return await rubric.score(EXAMPLE, episode, ctx)


def correct(completion: str | None, answer: Any) -> float:
    return 1.0 if completion is not None and completion.strip() == str(answer) else 0.0


def brevity(completion: str | None) -> float:
    return 0.5


def length(completion: str | None) -> int:
    return len(completion or "")


# --- weighting and metrics ---------------------------------------------------------------------


async def test_weighted_sum_with_a_metric_that_is_not_summed() -> None:
    rubric = Rubric([(correct, 0.7), (brevity, 0.3), (length, 0.0)])
    result = await run(rubric, final_text="42")
    assert result.score == pytest.approx(0.7 * 1.0 + 0.3 * 0.5)
    assert result.components == {"correct": 1.0, "brevity": 0.5, "length": 2.0}
    assert result.metadata["metrics"] == ["length"]
    assert result.metadata["weights"] == {"correct": 0.7, "brevity": 0.3, "length": 0.0}
    assert result.metadata["errors"] == {}
    assert result.threshold == 1.0
    assert result.success is False
    assert "correct" in result.reason
    assert "length" not in result.reason


async def test_score_is_not_normalised_and_weights_may_be_given_separately() -> None:
    rubric = Rubric([correct, brevity], weights=[2.0, -1.0], threshold=1.5)
    result = await run(rubric, final_text="42")
    assert result.score == pytest.approx(2.0 - 0.5)
    assert result.success is True
    assert Rubric([correct, brevity]).weights == {"correct": 1.0, "brevity": 1.0}


async def test_reward_helper_names_and_weighs() -> None:
    @reward(name="exact", weight=0.25)
    def is_exact(completion: str | None) -> bool:
        return completion == "42"

    @reward
    def turns_used(turns: int) -> int:
        return turns

    assert isinstance(is_exact, RewardFunc)
    assert is_exact(completion="42") is True
    metric = reward(length, weight=0)
    rubric = Rubric([is_exact, turns_used, metric, (reward(brevity, name="b", weight=9), 0.5)])
    assert rubric.names == ["exact", "turns_used", "length", "b"]
    assert rubric.weights == {"exact": 0.25, "turns_used": 1.0, "length": 0.0, "b": 0.5}
    result = await run(rubric, final_text="42")
    assert result.components["exact"] == 1.0
    assert result.score == pytest.approx(0.25 + 0.0 + 0.25)


def test_construction_errors() -> None:
    with pytest.raises(ValueError, match="named 'correct'"):
        Rubric([correct, correct])
    with pytest.raises(ValueError, match="at least one"):
        Rubric([])
    with pytest.raises(ValueError, match="2 reward functions but 1 weights"):
        Rubric([correct, brevity], weights=[1.0])
    with pytest.raises(ValueError, match="either"):
        Rubric([(correct, 1.0)], weights=[1.0])
    with pytest.raises(ValueError, match="finite"):
        Rubric([(correct, math.inf)])
    with pytest.raises(TypeError, match="number"):
        Rubric([(correct, "1")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="callable"):
        Rubric([42])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="finite"):
        Rubric([correct], threshold=math.nan)


# --- argument injection ------------------------------------------------------------------------


async def test_each_function_gets_only_the_arguments_it_names() -> None:
    seen: dict[str, Any] = {}

    def inspect_all(
        completion: str | None,
        answer: Any,
        parsed: ParseResult,
        ctx: EpisodeContext,
        turns: int,
        metadata: dict[str, Any],
        messages: list[Message],
        sandbox: Any,
        scratch: dict[str, Any],
        example: TaskExample,
        input: Any,
        reference: Any,
        final_answer: str | None,
        trajectory: Episode,
    ) -> float:
        seen.update(locals())
        return 1.0

    def nothing() -> float:
        return 0.25

    episode, ctx = make_episode(final_text="<think>hmm</think> 42")
    ctx.scratch["k"] = "v"
    rubric = Rubric([inspect_all, nothing], parser=ThinkParser())
    result = await rubric.score(EXAMPLE, episode, ctx)
    assert result.components == {"inspect_all": 1.0, "nothing": 0.25}
    assert seen["completion"] == seen["final_answer"] == "<think>hmm</think> 42"
    assert seen["answer"] == seen["reference"] == "42"
    assert seen["parsed"].answer == "42"
    assert seen["parsed"].get("think") == "hmm"
    assert seen["ctx"] is ctx
    assert seen["turns"] == 0
    assert seen["metadata"] == {"family": "arithmetic"}
    assert seen["messages"] is episode.messages
    assert seen["sandbox"] is None
    assert seen["scratch"] == {"k": "v"}
    assert seen["example"] is EXAMPLE
    assert seen["input"] == "What is 6*7?"
    assert seen["trajectory"] is episode


async def test_completion_prefers_the_submission() -> None:
    episode, _ = make_episode(submission=42, submitted=True, final_text="ignored")
    assert completion_text(episode) == "42"
    episode, _ = make_episode(submitted=False, final_text="text")
    assert completion_text(episode) == "text"
    result = await run(Rubric([correct]), submission="42", submitted=True, final_text="41")
    assert result.score == 1.0


async def test_kwargs_receive_everything_and_defaults_are_kept() -> None:
    got: dict[str, Any] = {}

    def everything(**kwargs: Any) -> float:
        got.update(kwargs)
        return 1.0

    def scaled(completion: str | None, factor: float = 2.0) -> float:
        return factor

    rubric = Rubric([everything, scaled, functools.partial(scaled, factor=3.0)], weights=[1, 1, 0])
    assert rubric.names[2] == "partial"
    result = await run(rubric, final_text="x")
    assert set(got) == set(INJECTABLE) - {"parsed"}
    assert result.components == {"everything": 1.0, "scaled": 2.0, "partial": 3.0}


def test_unknown_parameter_is_a_type_error_at_construction() -> None:
    def typo(completion: str, anwser: str) -> float:
        return 0.0

    with pytest.raises(TypeError, match=r"'typo'.*'anwser'.*completion"):
        Rubric([typo])

    def wants_parsed(parsed: ParseResult) -> float:
        return 0.0

    with pytest.raises(TypeError, match="no parser"):
        Rubric([wants_parsed])

    def parsed_and_kwargs(parsed: ParseResult, **kwargs: Any) -> float:
        return 0.0

    with pytest.raises(TypeError, match="no parser"):
        Rubric([parsed_and_kwargs])

    def parsed_optional(parsed: ParseResult | None = None) -> float:
        return 0.0

    assert Rubric([parsed_optional]).names == ["parsed_optional"]

    def positional(completion: str, /) -> float:
        return 0.0

    with pytest.raises(TypeError, match="positional-only"):
        Rubric([positional])


# --- failures ----------------------------------------------------------------------------------


async def test_raising_function_scores_zero_and_is_reported() -> None:
    def broken(completion: str | None) -> float:
        raise RuntimeError("grader exploded")

    rubric = Rubric([(correct, 0.5), (broken, 0.5), (reward(length, weight=0), 0)])
    result = await run(rubric, final_text="42")
    assert result.score == pytest.approx(0.5)
    assert result.components == {"correct": 1.0, "broken": 0.0, "length": 2.0}
    assert result.metadata["errors"] == {"broken": "RuntimeError: grader exploded"}
    assert "broken" in result.reason


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, None, "1.0", 10**400, object()])
async def test_bad_return_values_score_zero(value: Any) -> None:
    def bad() -> Any:
        return value

    result = await run(Rubric([bad, brevity]), final_text="x")
    assert result.components == {"bad": 0.0, "brevity": 0.5}
    assert result.score == 0.5
    assert set(result.metadata["errors"]) == {"bad"}


async def test_overflowing_sum_scores_zero_instead_of_failing() -> None:
    def huge() -> float:
        return 1e308

    result = await run(Rubric([(huge, 10.0)]))
    assert result.score == 0.0
    assert "not finite" in result.metadata["score_error"]


async def test_failing_parser_is_a_component_error() -> None:
    class Exploding(ThinkParser):
        def parse(self, text: str) -> ParseResult:
            raise ValueError("bad parser")

    def uses_parsed(parsed: ParseResult) -> float:
        return 1.0

    result = await run(Rubric([uses_parsed, brevity], parser=Exploding()), final_text="x")
    assert result.components == {"uses_parsed": 0.0, "brevity": 0.5}
    assert result.metadata["errors"]["uses_parsed"] == "ValueError: bad parser"


async def test_metadata_is_json_serialisable() -> None:
    def broken() -> float:
        raise KeyError("x")

    result = await run(Rubric([broken, (length, 0)]))
    json.dumps(result.metadata)


# --- async functions ---------------------------------------------------------------------------


async def test_async_functions_are_awaited_in_order() -> None:
    order: list[str] = []

    async def slow_check(completion: str | None, answer: Any) -> float:
        order.append("slow")
        await asyncio.sleep(0.01)
        return 1.0 if completion == answer else 0.0

    async def async_fails() -> float:
        await asyncio.sleep(0)
        raise ValueError("nope")

    def sync_after() -> float:
        order.append("sync")
        return 0.5

    rubric = Rubric([slow_check, async_fails, sync_after], weights=[0.6, 0.2, 0.2])
    result = await run(rubric, final_text="42")
    assert order == ["slow", "sync"]
    assert result.components == {"slow_check": 1.0, "async_fails": 0.0, "sync_after": 0.5}
    assert result.score == pytest.approx(0.7)
    assert result.metadata["errors"] == {"async_fails": "ValueError: nope"}


async def test_format_rewards_of_parsers_plug_into_a_rubric() -> None:
    xml = XMLParser(["reasoning", "answer"])

    def answer_correct(parsed: ParseResult, answer: Any) -> float:
        return 1.0 if parsed.answer == answer else 0.0

    rubric = Rubric([(answer_correct, 0.8), (xml.format_reward(), 0.2)], parser=xml)
    good = await run(rubric, final_text="<reasoning>6*7</reasoning><answer>42</answer>")
    assert good.components == {"answer_correct": 1.0, "xml_format": 1.0}
    assert good.score == pytest.approx(1.0)
    half = await run(rubric, final_text="<answer>42</answer>")
    assert half.components == {"answer_correct": 1.0, "xml_format": 0.5}


# --- Environment integration -------------------------------------------------------------------


class RubricEnv(Environment):
    sandbox = None
    rubric = Rubric([(correct, 0.9), (brevity, 0.1), (length, 0)], threshold=0.9)


async def test_environment_default_score_episode_uses_its_rubric() -> None:
    env = RubricEnv()
    episode, ctx = make_episode(final_text="42")
    result = await env.score_episode(EXAMPLE, episode, ctx)
    assert result.score == pytest.approx(0.95)
    assert result.success is True
    assert result.components == {"correct": 1.0, "brevity": 0.5, "length": 2.0}
    group = await env.score_episodes(EXAMPLE, [episode], [ctx])
    assert group[0].score == pytest.approx(0.95)


async def test_environment_without_rubric_keeps_exact_match() -> None:
    env = Environment()
    episode, ctx = make_episode(final_text=" 42 ")
    result = await env.score_episode(EXAMPLE, episode, ctx)
    assert result.score == 1.0
    assert result.components == {}
    episode, ctx = make_episode()
    assert (await env.score_episode(EXAMPLE, episode, ctx)).reason == "no answer was given"
