"""Parsers: pull the structured parts out of model text, and score its format.

Every parser offers `parse(text) -> ParseResult`, `parse_answer(text)` and `format_reward()`,
a reward function for a `Rubric`. The family:

- `ThinkParser`: ``<think>…</think>`` reasoning, then the answer.
- `XMLParser`: named fields such as ``<reasoning>…</reasoning><answer>…</answer>``.
- `ToolCallParser`: ``<tool_call>`` JSON blocks; calling it is the default action parser.

Tags are case-sensitive, exactly ``<name>`` / ``</name>`` (no attributes, no inner spaces).
Parsing is a linear scan (``str.find`` and literal regexes, no backtracking) and never
raises: malformed or missing tags give ``None`` parts and ``well_formed=False``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from runtime.env.action_parser import MAX_CALLS, parse_tool_call_blocks
from runtime.env.types import Episode
from runtime.tools.messages import Message

FormatReward = Callable[..., float]
"""A reward function a `Rubric` accepts (its parameters are injectable names)."""

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_TOOL_BLOCK = re.compile(r"<tool_call>.*?(</tool_call>|\Z)", re.DOTALL)


@dataclass(frozen=True)
class ParseResult:
    """What a parser found: the answer, named parts, and whether the format was followed."""

    answer: str | None = None
    """The final answer, stripped; None when missing or empty."""
    fields: Mapping[str, str | None] = field(default_factory=dict)
    """Named parts, stripped (``think`` for `ThinkParser`, each field for `XMLParser`)."""
    well_formed: bool = False
    problems: tuple[str, ...] = ()
    """Readable notes on what deviates from the format."""
    message: Message | None = None
    """The assistant message (`ToolCallParser` only)."""

    def get(self, name: str) -> str | None:
        """A field's value, or None."""
        return self.fields.get(name)


def _text(value: object) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


class Parser:
    """Base class: subclasses implement `parse`; the rest derives from it."""

    name: str = "parser"
    """Prefix of the format reward's component name (``<name>_format``)."""

    def parse(self, text: str) -> ParseResult:
        """Split ``text`` into its parts; never raises."""
        raise NotImplementedError

    def parse_answer(self, text: str) -> str | None:
        """Just the answer."""
        return self.parse(text).answer

    def format_score(self, text: str) -> float:
        """How well ``text`` follows the format, in [0, 1]; default 1 when well-formed."""
        return 1.0 if self.parse(_text(text)).well_formed else 0.0

    def format_reward(self, *, name: str | None = None) -> FormatReward:
        """A reward function scoring the episode's `completion` with `format_score`."""
        score = self.format_score

        def format_reward(completion: str | None) -> float:
            return score(_text(completion))

        format_reward.__name__ = format_reward.__qualname__ = name or f"{self.name}_format"
        return format_reward


class ThinkParser(Parser):
    """``<think>reasoning</think> answer``: the answer is the text after the last ``</think>``.

    No tags at all: the whole text is the answer (no reasoning). An unclosed ``<think>`` (also
    one after the last ``</think>``) means no answer. Nested or repeated blocks are parsed
    (reasoning = from the first ``<think>`` to the last ``</think>``) but not well-formed.
    ``prefilled=True`` is for chat templates that open ``<think>`` in the prompt: the text
    starts inside the reasoning, so a leading ``<think>`` is optional.
    Well-formed: one leading think block (only whitespace before it), a non-empty answer.
    """

    name = "think"
    OPEN = "<think>"
    CLOSE = "</think>"

    def __init__(self, *, prefilled: bool = False) -> None:
        self.prefilled = prefilled

    def parse(self, text: str) -> ParseResult:
        """Reasoning in ``fields["think"]``, the rest in ``answer``."""
        text = _text(text)
        first_open, last_close = text.find(self.OPEN), text.rfind(self.CLOSE)
        opens, closes = text.count(self.OPEN), text.count(self.CLOSE)
        problems: list[str] = []
        think: str | None
        answer: str | None
        if last_close < 0:
            if first_open < 0 and not self.prefilled:
                think, answer = None, text.strip() or None
                problems.append("no <think> block")
            else:
                start = first_open + len(self.OPEN) if first_open >= 0 else 0
                think, answer = text[start:].strip(), None
                problems.append("unclosed <think>: no answer")
        else:
            start = first_open + len(self.OPEN) if 0 <= first_open < last_close else 0
            if start == 0 and not self.prefilled:
                problems.append("</think> without <think>")
            think = text[start:last_close].strip()
            tail = text[last_close + len(self.CLOSE) :]
            if self.OPEN in tail:
                answer = None
                problems.append("unclosed <think> after the last </think>: no answer")
            else:
                answer = tail.strip() or None
                if answer is None:
                    problems.append("empty answer")
        if closes > 1 or opens > 1:
            problems.append(f"{opens} <think> and {closes} </think> tags, expected one block")
        if first_open > 0 and text[:first_open].strip():
            problems.append("text before <think>")
        return ParseResult(
            answer=answer,
            fields={"think": think},
            well_formed=not problems,
            problems=tuple(problems),
        )


@dataclass
class _FieldScan:
    value: str | None = None
    complete: int = 0
    stray_closes: int = 0
    nested: bool = False
    unclosed: bool = False

    @property
    def ok(self) -> bool:
        return (
            self.complete == 1
            and not (self.stray_closes or self.nested or self.unclosed)
            and bool(self.value)
        )


class XMLParser(Parser):
    """Named fields, ``<answer>…</answer>``; the last complete occurrence of a field wins.

    A missing field is None; content is stripped, tags inside it are kept as text. Same-name
    nesting is matched by depth (the outer element wins). A field is well-formed when it
    occurs exactly once, closed, not nested, with non-empty content; the format score is the
    fraction of fields that are. The answer is ``answer_field`` (default ``"answer"`` if it is
    a field, else the last field).
    """

    name = "xml"

    def __init__(
        self, fields: Sequence[str] = ("reasoning", "answer"), *, answer_field: str | None = None
    ) -> None:
        names = [fields] if isinstance(fields, str) else list(fields)
        if not names:
            raise ValueError("XMLParser needs at least one field")
        for item in names:
            if not isinstance(item, str) or not _FIELD_NAME.fullmatch(item):
                raise ValueError(f"not a valid tag name: {item!r}")
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate field names in {names}")
        if answer_field is None:
            answer_field = "answer" if "answer" in names else names[-1]
        if answer_field not in names:
            raise ValueError(f"answer_field {answer_field!r} is not one of the fields {names}")
        self.fields: tuple[str, ...] = tuple(names)
        self.answer_field = answer_field
        self._tags = {name: re.compile(rf"<(/?){re.escape(name)}>") for name in names}

    def _scan(self, text: str, name: str) -> _FieldScan:
        scan = _FieldScan()
        depth, start = 0, 0
        for match in self._tags[name].finditer(text):
            if match.group(1):
                if depth == 0:
                    scan.stray_closes += 1
                    continue
                depth -= 1
                if depth == 0:
                    scan.value = text[start : match.start()].strip()
                    scan.complete += 1
            else:
                if depth == 0:
                    start = match.end()
                else:
                    scan.nested = True
                depth += 1
        scan.unclosed = depth > 0
        return scan

    def parse(self, text: str) -> ParseResult:
        """Every field's value (None when missing) and the answer field."""
        text = _text(text)
        values: dict[str, str | None] = {}
        problems: list[str] = []
        for name in self.fields:
            scan = self._scan(text, name)
            values[name] = scan.value
            if scan.complete == 0:
                problems.append(f"<{name}> missing" + (" (unclosed)" if scan.unclosed else ""))
                continue
            if scan.complete > 1:
                problems.append(f"<{name}> occurs {scan.complete} times")
            if scan.nested:
                problems.append(f"<{name}> nested in itself")
            if scan.unclosed:
                problems.append(f"unclosed <{name}>")
            if scan.stray_closes:
                problems.append(f"</{name}> without <{name}>")
            if not scan.value:
                problems.append(f"<{name}> is empty")
        return ParseResult(
            answer=values[self.answer_field] or None,
            fields=values,
            well_formed=not problems,
            problems=tuple(problems),
        )

    def format_score(self, text: str) -> float:
        """The fraction of fields present once, closed, not nested and non-empty."""
        text = _text(text)
        return sum(self._scan(text, name).ok for name in self.fields) / len(self.fields)


class ToolCallParser(Parser):
    """The action parser in the family: ``<tool_call>{"name": …, "arguments": …}</tool_call>``.

    Calling it returns the assistant message (`parse_tool_call_blocks`), so an instance can be
    an `Environment.action_parser`. Well-formed: every block closed and valid JSON with a name,
    at most `MAX_CALLS` blocks; text without blocks is a well-formed plain answer.
    """

    name = "tool_call"

    def __call__(self, text: str) -> Message:
        """The assistant message: blocks become tool calls, the rest the content."""
        return parse_tool_call_blocks(_text(text))

    def _check(self, text: str) -> tuple[Message, int, int]:
        message = self(text)
        closed = [m.group(1) != "" for m in _TOOL_BLOCK.finditer(text)]
        good = sum(bool(call.name) and closed[i] for i, call in enumerate(message.tool_calls))
        return message, len(closed), good

    def parse(self, text: str) -> ParseResult:
        """The message in ``message``, its text content in ``answer``."""
        text = _text(text)
        message, blocks, good = self._check(text)
        problems: list[str] = []
        if good < len(message.tool_calls):
            problems.append(f"{len(message.tool_calls) - good} malformed or unclosed blocks")
        if blocks > MAX_CALLS:
            problems.append(f"{blocks} blocks; only the first {MAX_CALLS} are used")
        return ParseResult(
            answer=message.content,
            well_formed=not problems,
            problems=tuple(problems),
            message=message,
        )

    def format_score(self, text: str) -> float:
        """The fraction of well-formed blocks among all blocks; 1 for text without blocks."""
        _, blocks, good = self._check(_text(text))
        return 1.0 if blocks == 0 else good / blocks

    def format_reward(self, *, name: str | None = None) -> FormatReward:
        """A reward function: the mean `format_score` over the episode's raw-text turns.

        Turns sent as structured messages count 1 (nothing to parse); no turns scores 0.
        """
        score = self.format_score

        def format_reward(episode: Episode) -> float:
            if not episode.turns:
                return 0.0
            raw = [turn.action.raw_text for turn in episode.turns]
            return sum(1.0 if t is None else score(t) for t in raw) / len(raw)

        format_reward.__name__ = format_reward.__qualname__ = name or f"{self.name}_format"
        return format_reward
