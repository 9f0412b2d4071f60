"""Per-task answer grammars: what an answer must look like before the package's checker sees it.

reasoning-gym's checkers were written to grade honest answers, not to resist a policy that
searches for whatever they pay for. Found by playing the laziest answers against them:

- `puzzle24` pays 1 for ``6*4*1*1`` on any puzzle (it checks that four numbers in range were
  used, never which), and ``int()`` truncates, so an expression worth 24.5 counts as 24;
- `countdown` parses the answer with sympy, so names are values: ``(a+b+c)*(E-E) + E/E + ...``
  uses the given numbers and reaches any target; ``np.isclose`` also accepts a value within
  1e-5 relative of the target;
- `string_insertion` ``eval``s the answer, so the bare name ``oracle_answer`` (the checker's
  own local) earns its 0.1;
- the default checker (`basic_arithmetic`, `leg_counting`, `gcd`, `letter_counting`) pays
  ``len(reference) / len(answer)`` to any answer containing the reference: ``0123456789``
  gets 0.1 on every single-digit count.

A task is *audited* when it has a grammar here, written after reading its checker: the answer
must match it or it scores 0 without reaching the checker. The arithmetic grammar also does the
checker's job exactly (the numbers are exactly the puzzle's, the value is exactly the target,
computed with fractions), so a loose checker cannot be talked into a pass. Partial credit, the
other lever, is switched off in the environment (`partial_credit=False`).

Every reference answer of every audited task matches its grammar (the tests check thousands).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

__all__ = ["AUDITED_TASKS", "Audit", "check_grammar"]

MAX_EXPRESSION_CHARS = 1000
"""Longer arithmetic answers are refused (the puzzles have at most six numbers)."""

_DECIMAL = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_COUNT = re.compile(r"0|[1-9]\d*")
_ARITHMETIC_CHARS = re.compile(r"[0-9+\-*/() ]+")

Check = Callable[[str, Mapping[str, Any]], str | None]
"""``(answer, entry) -> None`` when the answer fits, else why it does not."""


@dataclass(frozen=True)
class Audit:
    """An audited task: the grammar its answers must match (described for people) and the
    check that enforces it."""

    grammar: str
    check: Check


def _regex(pattern: re.Pattern[str], description: str) -> Check:
    def check(answer: str, entry: Mapping[str, Any]) -> str | None:
        if pattern.fullmatch(answer):
            return None
        return f"the answer must be {description}"

    return check


def _evaluate(node: ast.AST, literals: list[int]) -> Fraction:
    """The exact value of a grammar-checked expression; collects its integer literals.

    Raises ValueError for anything outside the grammar (names, calls, powers, floats, ...)."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, literals)
    if isinstance(node, ast.Constant):
        if type(node.value) is not int:
            raise ValueError("only whole numbers may appear")
        literals.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _evaluate(node.operand, literals)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
        left = _evaluate(node.left, literals)
        right = _evaluate(node.right, literals)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if right == 0:
            raise ValueError("the expression divides by zero")
        return left / right
    raise ValueError("only numbers, + - * / and parentheses may appear")


def _arithmetic(target: Callable[[Mapping[str, Any]], object]) -> Check:
    """An expression over exactly the puzzle's numbers (each as often as given), with
    ``+ - * /`` and parentheses, no names, worth exactly the target."""

    def check(answer: str, entry: Mapping[str, Any]) -> str | None:
        metadata = entry.get("metadata")
        numbers = metadata.get("numbers") if isinstance(metadata, Mapping) else None
        goal = target(entry)
        if not isinstance(numbers, list) or not all(type(n) is int for n in numbers):
            return "the entry has no puzzle numbers to check the answer against"
        if type(goal) is not int:
            return "the entry has no target to check the answer against"
        if len(answer) > MAX_EXPRESSION_CHARS:
            return f"the expression is longer than {MAX_EXPRESSION_CHARS} characters"
        if not _ARITHMETIC_CHARS.fullmatch(answer):
            return "only digits, + - * / ( ) and spaces may appear (no names, no '=')"
        try:
            tree = ast.parse(answer.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return "the answer is not an arithmetic expression"
        literals: list[int] = []
        try:
            value = _evaluate(tree, literals)
        except (ValueError, RecursionError) as exc:
            return str(exc)
        if sorted(literals) != sorted(numbers):
            return f"the expression must use exactly the numbers {sorted(numbers)}, not {literals}"
        if value != goal:
            return f"the expression equals {value}, not {goal}"
        return None

    return check


def _puzzle24_target(entry: Mapping[str, Any]) -> object:
    return 24


def _countdown_target(entry: Mapping[str, Any]) -> object:
    metadata = entry.get("metadata")
    return metadata.get("target") if isinstance(metadata, Mapping) else None


_DECIMAL_AUDIT = Audit(
    "a decimal number: optional sign, digits (or comma-grouped thousands), optional fraction",
    _regex(_DECIMAL, "a decimal number such as -1234 or 1,234.5"),
)
_COUNT_AUDIT = Audit(
    "a whole number without sign or leading zeros",
    _regex(_COUNT, "a whole number without sign or leading zeros, such as 42"),
)

AUDITED_TASKS: Mapping[str, Audit] = {
    "basic_arithmetic": _DECIMAL_AUDIT,
    "chain_sum": _DECIMAL_AUDIT,
    "gcd": _COUNT_AUDIT,
    "leg_counting": _COUNT_AUDIT,
    "letter_counting": _COUNT_AUDIT,
    "string_insertion": Audit(
        "letters A-E only (the task's alphabet)",
        _regex(re.compile(r"[A-E]+"), "the resulting string of letters A-E, such as ABCDE"),
    ),
    "puzzle24": Audit(
        "an expression of exactly the four given numbers, + - * / and parentheses, no names, "
        "worth exactly 24",
        _arithmetic(_puzzle24_target),
    ),
    "countdown": Audit(
        "an expression of exactly the given numbers, + - * / and parentheses, no names, worth "
        "exactly the target",
        _arithmetic(_countdown_target),
    ),
}
"""Tasks whose checkers were audited against forged answers, with their grammars."""


def check_grammar(task: str, answer: str, entry: Mapping[str, Any]) -> str | None:
    """None when ``answer`` fits ``task``'s grammar, else why not; unaudited tasks fit nothing."""
    audit = AUDITED_TASKS.get(task)
    if audit is None:
        return f"task {task!r} has no audited answer grammar"
    return audit.check(answer, entry)
