"""Which answers may be handed to reasoning-gym's checkers without running model-written code.

Some of the package's `score_answer` methods evaluate the answer as Python:

- `binary_matrix`, `n_queens`, `spiral_matrix`, `string_insertion` call ``eval(answer)`` (a
  fallback that gives partial credit to answers written as Python lists);
- `countdown`, `puzzle24`, `polynomial_multiplication`, `simple_integration`,
  `intermediate_integration` call ``sympy.parse_expr(answer)``, which ends in ``eval`` too.

The answer is model-written, so passed as is it would run arbitrary code in the server process
(``__import__('os').system(...)``) or stall it (``9**9**9**9``). `check_answer` inspects the
answer's syntax tree (parsing never evaluates anything) and lets through only what the checker
can evaluate harmlessly; anything else is graded 0 without calling the checker. The rules keep
every reference answer of these tasks acceptable (the tests check it).

`REFERENCE_EVAL_TASKS` also evaluate parts of the *entry* (the reference answer, or metadata such
as the integrand), so those entries must come from the package itself: inline examples of these
tasks are refused.
"""

from __future__ import annotations

import ast

LITERAL_EVAL_TASKS = frozenset({"binary_matrix", "n_queens", "spiral_matrix", "string_insertion"})
"""Checkers that call ``eval(answer)``."""
SYMPY_TASKS = frozenset(
    {
        "countdown",
        "intermediate_integration",
        "polynomial_multiplication",
        "puzzle24",
        "simple_integration",
    }
)
"""Checkers that call ``sympy.parse_expr(answer)``."""
REFERENCE_EVAL_TASKS = SYMPY_TASKS | {"number_sorting"}
"""Checkers that also evaluate the entry's reference answer or metadata as code."""
GUARDED_TASKS = LITERAL_EVAL_TASKS | SYMPY_TASKS

MATH_FUNCTIONS = frozenset(
    {
        "sin",
        "cos",
        "tan",
        "cot",
        "sec",
        "csc",
        "asin",
        "acos",
        "atan",
        "acot",
        "sinh",
        "cosh",
        "tanh",
        "exp",
        "log",
        "ln",
        "sqrt",
        "Abs",
        "Integral",
    }
)
"""The only functions a sympy-checked answer may call (some reference answers of
`intermediate_integration` are unevaluated ``Integral(...)`` terms)."""
MAX_MATH_NODES = 400
MAX_CONSTANT = 10**12
"""Largest magnitude of a number in a sympy-checked answer."""
MAX_EXPONENT = 100
"""Largest magnitude of a number inside an exponent."""
MAX_POWER_NESTING = 2
"""Powers of powers of powers are refused (``9**9**9`` would stall the server)."""

_INERT_NODES = (
    ast.Expression,
    ast.Constant,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.Dict,
    ast.Name,
    ast.Load,
    ast.UnaryOp,
    ast.USub,
    ast.UAdd,
)
_MATH_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.BitXor)
_POWER_OPS = (ast.Pow, ast.BitXor)


def _parse(text: str) -> ast.Expression | None:
    """The tree ``eval(text)`` would compile (eval strips leading spaces and tabs), or None."""
    try:
        return ast.parse(text.lstrip(" \t"), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _is_inert(tree: ast.Expression) -> bool:
    """Literals, containers of them and bare names: evaluating them runs no code."""
    for node in ast.walk(tree):
        if not isinstance(node, _INERT_NODES):
            return False
        if isinstance(node, ast.UnaryOp) and not (
            isinstance(node.op, ast.USub | ast.UAdd) and isinstance(node.operand, ast.Constant)
        ):
            return False
    return True


def _number_ok(value: object, limit: int) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return abs(value) <= limit


def _math_ok(node: ast.AST, limit: int, powers: int) -> bool:
    """A plain arithmetic expression over names, numbers and `MATH_FUNCTIONS`."""
    if isinstance(node, ast.Constant):
        return _number_ok(node.value, limit)
    if isinstance(node, ast.Name):
        return not node.id.startswith("_")
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, ast.USub | ast.UAdd) and _math_ok(node.operand, limit, powers)
    if isinstance(node, ast.BinOp):
        if not isinstance(node.op, _MATH_OPS):
            return False
        if isinstance(node.op, _POWER_OPS):
            if powers >= MAX_POWER_NESTING:
                return False
            exponent_ok = _math_ok(node.right, MAX_EXPONENT, MAX_POWER_NESTING)
            return exponent_ok and _math_ok(node.left, limit, powers + 1)
        return _math_ok(node.left, limit, powers) and _math_ok(node.right, limit, powers)
    if isinstance(node, ast.Call):
        return (
            isinstance(node.func, ast.Name)
            and node.func.id in MATH_FUNCTIONS
            and not node.keywords
            and 0 < len(node.args) <= 2
            and all(
                not isinstance(arg, ast.Starred) and _math_ok(arg, limit, powers)
                for arg in node.args
            )
        )
    return False


def check_answer(task: str, answer: str) -> str | None:
    """None when ``answer`` may go to ``task``'s checker, else why it may not."""
    if task in LITERAL_EVAL_TASKS:
        tree = _parse(answer)
        # Not Python at all: the checker's eval() raises SyntaxError before running anything.
        if tree is None or _is_inert(tree):
            return None
        return "the answer is a Python expression, which this task's checker would execute"
    if task in SYMPY_TASKS:
        tree = _parse(answer)
        if tree is None:
            return "the answer is not a plain arithmetic expression"
        if sum(1 for _ in ast.walk(tree)) > MAX_MATH_NODES:
            return f"the expression has more than {MAX_MATH_NODES} syntax nodes"
        if not _math_ok(tree.body, MAX_CONSTANT, 0):
            return (
                "the answer is not a plain arithmetic expression (numbers up to 1e12, names, "
                "+ - * / **, exponents up to 100 and at most two nested powers, and only the "
                f"functions {', '.join(sorted(MATH_FUNCTIONS))})"
            )
        return None
    return None
