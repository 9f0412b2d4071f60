"""Rubrics: weighted reward functions that score an episode.

A `Rubric` holds reward functions, each with a weight. A function is called with only the
arguments its signature names, by keyword, chosen from:

==========================  ===================================================================
``example``                 the `TaskExample`
``input``                   ``example.input``
``output``, ``reference``,  ``example.output`` (the reference answer)
``answer``
``completion``,             the model's answer as text: ``str(episode.submission)`` when it
``final_answer``            submitted, else ``episode.final_response_text``; None if neither
``parsed``                  the rubric's parser's `ParseResult` of the completion (of ``""``
                            when None); naming it in a rubric without a parser is a TypeError
``episode``, ``trajectory`` the `Episode`
``messages``                ``episode.messages``
``ctx``                     the `EpisodeContext` (``ctx.fresh_sandbox()`` for untampered checks)
``sandbox``                 ``ctx.sandbox`` (None for an environment without one)
``scratch``                 ``ctx.scratch``
``metadata``                ``example.metadata``
``turns``                   ``episode.turn_count``
==========================  ===================================================================

Any other parameter is a TypeError when the rubric is built, unless it has a default value (it
keeps it, so `functools.partial` and option keywords work); ``**kwargs`` receives every name.

A function returns a real number (bool, int, float, …). It may be sync or async: functions run
one after another in list order on the event loop; async ones are awaited, sync ones run
inline, so keep them cheap (or make them async, e.g. with `asyncio.to_thread`).

The score is ``Σ weight·value`` over the functions with a non-zero weight: it is *not*
normalised by the sum of the weights (weights may be negative, for penalties). Weight-0
functions are metrics: reported as components and in ``metadata["metrics"]``, never summed.
Every function's value is a component named after it (``__name__``, or `reward(name=...)`).
A function that raises, returns a non-number or a non-finite number scores 0 for its component
and is reported in ``metadata["errors"]`` as ``{name: "ExcType: message"}``; the episode does
not fail.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, overload

from runtime.env.parsers import Parser, ParseResult
from runtime.env.types import Episode, EpisodeContext, RewardResult, TaskExample

log = logging.getLogger(__name__)

INJECTABLE: tuple[str, ...] = (
    "example",
    "input",
    "output",
    "reference",
    "answer",
    "completion",
    "final_answer",
    "parsed",
    "episode",
    "trajectory",
    "messages",
    "ctx",
    "sandbox",
    "scratch",
    "metadata",
    "turns",
)
"""The argument names a reward function may ask for."""
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class RewardFunc:
    """A reward function with its component name and default weight; callable like it."""

    func: Callable[..., Any]
    name: str
    weight: float = 1.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the wrapped function."""
        return self.func(*args, **kwargs)


def _name_of(func: Callable[..., Any]) -> str:
    name = getattr(func, "__name__", None)
    return name if isinstance(name, str) else type(func).__name__


@overload
def reward(
    func: Callable[..., Any], /, *, name: str | None = None, weight: float = 1.0
) -> RewardFunc: ...
@overload
def reward(
    func: None = None, /, *, name: str | None = None, weight: float = 1.0
) -> Callable[[Callable[..., Any]], RewardFunc]: ...
def reward(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    weight: float = 1.0,
) -> RewardFunc | Callable[[Callable[..., Any]], RewardFunc]:
    """Name and weigh a reward function: ``@reward``, ``@reward(weight=0)``, ``reward(f, ...)``."""

    def wrap(inner: Callable[..., Any]) -> RewardFunc:
        if isinstance(inner, RewardFunc):
            return RewardFunc(inner.func, name or inner.name, weight)
        if not callable(inner):
            raise TypeError(f"a reward function must be callable, got {inner!r}")
        return RewardFunc(inner, name or _name_of(inner), weight)

    return wrap if func is None else wrap(func)


@dataclass(frozen=True)
class _Entry:
    func: Callable[..., Any]
    name: str
    weight: float
    params: tuple[str, ...]


def _check_weight(name: str, weight: object) -> float:
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise TypeError(f"the weight of reward function {name!r} must be a number, got {weight!r}")
    if not math.isfinite(weight):
        raise ValueError(f"the weight of reward function {name!r} must be finite, got {weight}")
    return float(weight)


def _params(func: Callable[..., Any], name: str, has_parser: bool) -> tuple[str, ...]:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot read the signature of reward function {name!r}: {exc}") from None
    wanted: list[str] = []
    for param in signature.parameters.values():
        if param.kind is param.VAR_KEYWORD:
            wanted.extend(n for n in INJECTABLE if n not in wanted)
            continue
        if param.kind is param.VAR_POSITIONAL:
            continue
        if param.name not in INJECTABLE:
            problem = (
                f"has a parameter {param.name!r} the rubric cannot supply; parameters may be "
                f"named: {', '.join(INJECTABLE)}"
            )
        elif param.kind is param.POSITIONAL_ONLY:
            problem = f"parameter {param.name!r} is positional-only; arguments go by keyword"
        elif param.name == "parsed" and not has_parser:
            problem = "asks for 'parsed' but the rubric has no parser"
        else:
            if param.name not in wanted:
                wanted.append(param.name)
            continue
        if param.default is param.empty:
            raise TypeError(f"reward function {name!r} {problem}")
    if not has_parser and "parsed" in wanted:
        wanted.remove("parsed")
    return tuple(wanted)


def completion_text(episode: Episode) -> str | None:
    """The model's answer: the submission if it submitted, else the final response text."""
    if episode.submitted:
        return None if episode.submission is None else str(episode.submission)
    return episode.final_response_text


def _as_float(value: Any) -> float:
    if value is None or isinstance(value, str | bytes | bytearray | complex):
        raise TypeError(f"returned {type(value).__name__}, not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"returned a non-finite number ({number})")
    return number


class Rubric:
    """Weighted reward functions; `score` turns an episode into a `RewardResult`.

    ``funcs`` items are callables (weight 1, or a `RewardFunc`'s own) or ``(callable, weight)``
    tuples; ``weights``, when given, sets every weight instead (not combined with tuples).
    """

    def __init__(
        self,
        funcs: Sequence[RewardFunc | Callable[..., Any] | tuple[Callable[..., Any], float]],
        *,
        weights: Sequence[float] | None = None,
        threshold: float = 1.0,
        parser: Parser | None = None,
    ) -> None:
        items = list(funcs)
        if not items:
            raise ValueError("a rubric needs at least one reward function")
        if weights is not None:
            if any(isinstance(item, tuple) for item in items):
                raise ValueError("give weights either in `weights` or as (func, weight) items")
            if len(weights) != len(items):
                raise ValueError(f"{len(items)} reward functions but {len(weights)} weights")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise TypeError(f"threshold must be a number, got {threshold!r}")
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be finite, got {threshold}")
        if parser is not None and not isinstance(parser, Parser):
            raise TypeError(f"parser must be a Parser, got {type(parser).__name__}")
        self.threshold = float(threshold)
        self.parser = parser
        entries: list[_Entry] = []
        for i, item in enumerate(items):
            weight: object = 1.0
            explicit = isinstance(item, tuple)
            if isinstance(item, tuple):
                if len(item) != 2:
                    raise ValueError(f"item {i}: expected (func, weight), got {item!r}")
                item, weight = item
            if isinstance(item, RewardFunc):
                func, name = item.func, item.name
                weight = weight if explicit else item.weight
            elif callable(item):
                func, name = item, _name_of(item)
            else:
                raise TypeError(f"item {i}: a reward function must be callable, got {item!r}")
            if weights is not None:
                weight = weights[i]
            if any(entry.name == name for entry in entries):
                raise ValueError(
                    f"two reward functions are named {name!r}; name one with reward(name=...)"
                )
            entries.append(
                _Entry(func, name, _check_weight(name, weight), _params(func, name, bool(parser)))
            )
        self._entries = tuple(entries)

    @property
    def names(self) -> list[str]:
        """Component names, in order."""
        return [entry.name for entry in self._entries]

    @property
    def weights(self) -> dict[str, float]:
        """Weights by component name (0 for metrics)."""
        return {entry.name: entry.weight for entry in self._entries}

    def _parsed(self, completion: str | None) -> ParseResult:
        assert self.parser is not None
        return self.parser.parse("" if completion is None else completion)

    async def score(
        self, example: TaskExample, episode: Episode, ctx: EpisodeContext
    ) -> RewardResult:
        """Run every function and combine them; a failing function scores 0, never raises."""
        completion = completion_text(episode)
        values: dict[str, Any] = {
            "example": example,
            "input": example.input,
            "output": example.output,
            "reference": example.output,
            "answer": example.output,
            "completion": completion,
            "final_answer": completion,
            "episode": episode,
            "trajectory": episode,
            "messages": episode.messages,
            "ctx": ctx,
            "sandbox": ctx.sandbox,
            "scratch": ctx.scratch,
            "metadata": example.metadata,
            "turns": episode.turn_count,
        }
        parsed: list[ParseResult] = []
        components: dict[str, float] = {}
        errors: dict[str, str] = {}
        for entry in self._entries:
            try:
                if "parsed" in entry.params and not parsed:
                    parsed.append(self._parsed(completion))
                kwargs = {n: parsed[0] if n == "parsed" else values[n] for n in entry.params}
                result = entry.func(**kwargs)
                if inspect.isawaitable(result):
                    result = await result
                components[entry.name] = _as_float(result)
            except Exception as exc:
                components[entry.name] = 0.0
                errors[entry.name] = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
                log.warning("reward function %r failed", entry.name, exc_info=True)
        summed = [e for e in self._entries if e.weight != 0]
        total = math.fsum(e.weight * components[e.name] for e in summed)
        metadata: dict[str, Any] = {
            "weights": self.weights,
            "metrics": [e.name for e in self._entries if e.weight == 0],
            "errors": errors,
        }
        if not math.isfinite(total):
            metadata["score_error"] = f"the weighted sum is not finite ({total}); scored 0"
            total = 0.0
        terms = " + ".join(f"{e.weight:g}*{e.name}({components[e.name]:.4g})" for e in summed)
        reason = f"{total:.4g} = {terms or '0'}"
        if errors:
            reason += f"; failed: {', '.join(errors)}"
        return RewardResult(
            score=total,
            threshold=self.threshold,
            reason=reason[:1000],
            components=components,
            metadata=metadata,
        )
