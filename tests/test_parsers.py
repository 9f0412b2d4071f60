"""Parsers: think, XML fields and tool calls on well-formed, malformed and adversarial text."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from runtime.env import (
    Action,
    Environment,
    Episode,
    Parser,
    ThinkParser,
    ToolCallParser,
    Turn,
    XMLParser,
)
from runtime.env.action_parser import MAX_CALLS, parse_tool_call_blocks
from runtime.env.types import TaskExample

T = TypeVar("T")
MB = 1 << 20


def bounded(func: Callable[[], T], timeout_s: float = 10.0) -> T:
    """Run ``func`` in a thread; fail if it has not returned after ``timeout_s`` (a hang)."""
    out: list[Any] = []

    def target() -> None:
        try:
            out.append(("ok", func()))
        except BaseException as exc:
            out.append(("error", exc))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    assert not thread.is_alive(), f"did not finish within {timeout_s} s"
    kind, value = out[0]
    if kind == "error":
        raise value
    result: T = value
    return result


# --- ThinkParser -------------------------------------------------------------------------------


def test_think_well_formed() -> None:
    parser = ThinkParser()
    result = parser.parse("<think>\n6*7 is 42\n</think>\n\n42\n")
    assert result.answer == "42"
    assert result.get("think") == "6*7 is 42"
    assert result.well_formed
    assert result.problems == ()
    assert parser.parse_answer("  <think>x</think>y") == "y"
    assert parser.format_score("<think>x</think>y") == 1.0


@pytest.mark.parametrize(
    ("text", "answer", "think"),
    [
        ("just an answer", "just an answer", None),
        ("", None, None),
        ("<think>never closed, 42", None, "never closed, 42"),
        ("<think>a</think>", None, "a"),
        ("<think>a</think>   \n", None, "a"),
        ("<think>a</think>first<think>b</think>second", "second", "a</think>first<think>b"),
        ("<think>a</think>answer<think>reconsidering", None, "a"),
        ("<think>a<think>b</think>c</think>final", "final", "a<think>b</think>c"),
        ("stray close</think>after", "after", "stray close"),
        ("preamble <think>x</think>y", "y", "x"),
        ("<THINK>x</THINK>y", "<THINK>x</THINK>y", None),
        ("<think >x</think >y", "<think >x</think >y", None),
    ],
)
def test_think_malformed(text: str, answer: str | None, think: str | None) -> None:
    result = ThinkParser().parse(text)
    assert result.answer == answer
    assert result.get("think") == think
    assert not result.well_formed
    assert result.problems
    assert ThinkParser().format_score(text) == 0.0


def test_think_prefilled_template() -> None:
    parser = ThinkParser(prefilled=True)
    assert parser.parse("reasoning here</think>42").well_formed
    assert parser.parse("reasoning here</think>42").get("think") == "reasoning here"
    assert parser.parse("<think>r</think>42").well_formed
    still_thinking = parser.parse("no closing tag yet")
    assert still_thinking.answer is None
    assert still_thinking.get("think") == "no closing tag yet"
    assert not parser.parse("a</think>b</think>c").well_formed


def test_think_format_reward_is_a_rubric_function() -> None:
    reward = ThinkParser().format_reward()
    assert reward.__name__ == "think_format"
    assert reward(completion="<think>x</think>y") == 1.0
    assert reward(completion=None) == 0.0
    assert ThinkParser().format_reward(name="fmt").__name__ == "fmt"


def test_parsers_accept_non_text_without_raising() -> None:
    for parser in (ThinkParser(), XMLParser(), ToolCallParser()):
        assert parser.parse(None).answer is None  # type: ignore[arg-type]
        assert parser.format_score(None) == 0.0 or isinstance(parser, ToolCallParser)  # type: ignore[arg-type]
    assert ThinkParser().parse(42).answer == "42"  # type: ignore[arg-type]
    assert XMLParser().parse(42).answer is None  # type: ignore[arg-type]


# --- XMLParser ---------------------------------------------------------------------------------


def test_xml_well_formed() -> None:
    parser = XMLParser(["reasoning", "answer"])
    text = "<reasoning>\n6 times 7\n</reasoning>\n<answer> 42 </answer>"
    result = parser.parse(text)
    assert result.fields == {"reasoning": "6 times 7", "answer": "42"}
    assert result.answer == "42"
    assert result.well_formed
    assert parser.format_score(text) == 1.0
    assert parser.parse_answer(text) == "42"


def test_xml_last_occurrence_wins_and_missing_is_none() -> None:
    parser = XMLParser(["reasoning", "answer"])
    result = parser.parse("<answer>1</answer> wait <answer>2</answer>")
    assert result.answer == "2"
    assert result.get("reasoning") is None
    assert not result.well_formed
    assert any("occurs 2 times" in p for p in result.problems)
    assert any("<reasoning> missing" in p for p in result.problems)
    assert parser.format_score("<answer>1</answer> wait <answer>2</answer>") == 0.0


@pytest.mark.parametrize(
    ("text", "answer", "score"),
    [
        ("<reasoning>r</reasoning><answer>42", None, 0.5),
        ("<reasoning>r</reasoning>42</answer>", None, 0.5),
        ("<reasoning>r</reasoning><answer></answer>", None, 0.5),
        (
            "<reasoning>r</reasoning><answer>x<answer>y</answer>z</answer>",
            "x<answer>y</answer>z",
            0.5,
        ),
        ("<Reasoning>r</Reasoning><ANSWER>42</ANSWER>", None, 0.0),
        ('<reasoning>r</reasoning><answer id="1">42</answer>', None, 0.5),
        ("<reasoning>r</reasoning><answer>42</answer></answer>", "42", 0.5),
        ("<reasoning>r</reasoning><answer>42</answer><answer>open", "42", 0.5),
        ("<answer><reasoning>r</reasoning></answer>", "<reasoning>r</reasoning>", 1.0),
    ],
)
def test_xml_malformed(text: str, answer: str | None, score: float) -> None:
    parser = XMLParser(["reasoning", "answer"])
    assert parser.parse(text).answer == answer
    assert parser.format_score(text) == score
    assert parser.format_reward()(completion=text) == score


def test_xml_configuration() -> None:
    assert XMLParser(["plan", "code"]).answer_field == "code"
    assert XMLParser("answer").fields == ("answer",)
    assert XMLParser(["a", "b"], answer_field="a").parse("<a>1</a><b>2</b>").answer == "1"
    with pytest.raises(ValueError, match="valid tag"):
        XMLParser(["has space"])
    with pytest.raises(ValueError, match="duplicate"):
        XMLParser(["a", "a"])
    with pytest.raises(ValueError, match="answer_field"):
        XMLParser(["a"], answer_field="b")
    with pytest.raises(ValueError, match="at least one"):
        XMLParser([])
    assert XMLParser(["a.b"]).parse("<a.b>1</a.b><aXb>2</aXb>").answer == "1"


# --- ToolCallParser ----------------------------------------------------------------------------

CALL = '<tool_call>{"name": "python", "arguments": {"code": "print(1)"}}</tool_call>'


def test_tool_call_parser_is_the_action_parser() -> None:
    parser = ToolCallParser()
    assert isinstance(parser, Parser)
    message = parser(f"let me compute {CALL}")
    assert message == parse_tool_call_blocks(f"let me compute {CALL}")
    assert message.tool_calls[0].name == "python"
    assert json.loads(message.tool_calls[0].arguments) == {"code": "print(1)"}

    class Env(Environment):
        action_parser = ToolCallParser()

    assert Env().action_parser(CALL).tool_calls[0].name == "python"


def test_tool_call_parse_and_format() -> None:
    parser = ToolCallParser()
    good = parser.parse(f"thinking {CALL} {CALL}")
    assert good.well_formed
    assert good.answer == "thinking"
    assert good.message is not None
    assert len(good.message.tool_calls) == 2
    assert parser.format_score("plain answer") == 1.0
    assert parser.format_score(f"{CALL}<tool_call>not json</tool_call>") == 0.5
    assert parser.format_score(f"{CALL}<tool_call>{{}}</tool_call>") == 0.5
    unclosed = f'{CALL}<tool_call>{{"name": "python", "arguments": {{}}}}'
    assert parser.format_score(unclosed) == 0.5
    assert not parser.parse(unclosed).well_formed
    too_many = parser.parse(CALL * (MAX_CALLS + 1))
    assert not too_many.well_formed
    assert too_many.message is not None
    assert len(too_many.message.tool_calls) == MAX_CALLS


def _turn(number: int, raw_text: str | None) -> Turn:
    action = Action(message=parse_tool_call_blocks(raw_text or ""), raw_text=raw_text)
    return Turn(number, action, [], [], False, False, 0.0)


def test_tool_call_format_reward_averages_raw_turns() -> None:
    reward = ToolCallParser().format_reward()
    assert reward.__name__ == "tool_call_format"
    episode = Episode(id="e", environment_id="x", example=TaskExample(input="q"), max_turns=3)
    assert reward(episode=episode) == 0.0
    episode.turns = [_turn(1, CALL), _turn(2, "<tool_call>oops"), _turn(3, None)]
    assert reward(episode=episode) == pytest.approx(2 / 3)


# --- adversarial input: nothing hangs, nothing raises ------------------------------------------

ADVERSARIAL = [
    "<think>" * (MB // 7),
    "</think>" * (MB // 8),
    "<answer" * (MB // 7),
    "<answer>" * (MB // 8),
    "</answer>" * (MB // 9),
    "<answer>" * (MB // 16) + "</answer>" * (MB // 18),
    "<reasoning><answer>" * (MB // 19),
    "<tool_call>" * (MB // 11),
    "<tool_call>" + "[" * MB,
    "<" * MB,
    "<think>" + "x" * MB,
    ("<think>a</think>" * (MB // 16)) + "<think>",
]


@pytest.mark.parametrize("index", range(len(ADVERSARIAL)))
def test_adversarial_text_does_not_hang_or_raise(index: int) -> None:
    text = ADVERSARIAL[index]
    parsers: list[Parser] = [
        ThinkParser(),
        ThinkParser(prefilled=True),
        XMLParser(),
        ToolCallParser(),
    ]
    for parser in parsers:
        result = bounded(functools.partial(parser.parse, text))
        score = bounded(functools.partial(parser.format_score, text))
        assert 0.0 <= score <= 1.0
        assert result.answer is None or isinstance(result.answer, str)


def test_deeply_nested_tags_are_matched_by_depth() -> None:
    depth = 100_000
    text = "<answer>" * depth + "42" + "</answer>" * depth
    result = bounded(lambda: XMLParser(["answer"]).parse(text))
    assert result.answer is not None
    assert result.answer.startswith("<answer>" * (depth - 1) + "42")
    assert not result.well_formed
    think = bounded(lambda: ThinkParser().parse("<think>" * depth + "</think>" * depth + "ok"))
    assert think.answer == "ok"
    assert not think.well_formed
