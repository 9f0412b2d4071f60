"""Generate the double_check dataset (`data.jsonl`) deterministically. Standard library only.

Usage::

    python environments/double_check/generate.py            # rewrite data.jsonl beside this file
    python environments/double_check/generate.py --check    # exit 1 if data.jsonl is stale

20 hand-written factual questions with one short, uncontroversial answer (plus accepted
aliases), and 20 arithmetic questions drawn from four templates with a seeded RNG; the answers
are computed exactly. Every record is ``{"input", "output", "metadata": {"kind", "template",
"aliases"}}``; the rows alternate between the two kinds.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

SEED = 20250601
"""Base seed of the arithmetic questions (question i uses ``SEED + i``)."""
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "data.jsonl"

FACTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("What is the chemical symbol for gold?", "Au", ()),
    ("What is the capital city of Australia?", "Canberra", ()),
    ("In which year did the Apollo 11 crew first land on the Moon?", "1969", ()),
    ("What is the largest planet in the Solar System?", "Jupiter", ()),
    ("How many sides does a hexagon have?", "6", ("six",)),
    ("Which chemical element has atomic number 1?", "Hydrogen", ("H",)),
    ("What is the smallest prime number?", "2", ("two",)),
    ("Who wrote the novel 'Pride and Prejudice'?", "Jane Austen", ("Austen",)),
    ("What is the capital city of Canada?", "Ottawa", ()),
    ("Which planet is known as the Red Planet?", "Mars", ()),
    ("What is the chemical formula of water?", "H2O", ()),
    (
        "At standard atmospheric pressure, what is the freezing point of water in degrees "
        "Fahrenheit?",
        "32",
        ("32 °F", "32 degrees"),
    ),
    ("How many legs does a spider have?", "8", ("eight",)),
    ("In which year did the Second World War end?", "1945", ()),
    ("What is the capital city of Kenya?", "Nairobi", ()),
    ("What is the largest ocean on Earth?", "Pacific Ocean", ("Pacific", "the Pacific")),
    ("What is the hardest naturally occurring mineral?", "Diamond", ()),
    ("How many strings does a standard violin have?", "4", ("four",)),
    ("What is the sum of the interior angles of a triangle, in degrees?", "180", ()),
    ("Which gas makes up most of Earth's atmosphere by volume?", "Nitrogen", ("N2",)),
)
"""(question, answer, other accepted answers)."""

Question = tuple[str, str]
"""(question text, canonical answer)."""


def product_minus(rng: random.Random) -> Question:
    a, b, c = rng.randint(23, 97), rng.randint(23, 97), rng.randint(101, 999)
    return f"What is {a} * {b} - {c}?", str(a * b - c)


def percentage(rng: random.Random) -> Question:
    while True:
        percent = rng.choice((5, 12, 15, 25, 35, 45, 65, 75, 85))
        whole = rng.randint(12, 400) * 20
        value = Fraction(percent * whole, 100)
        if value.denominator == 1:
            return f"What is {percent}% of {whole}?", str(value.numerator)


def triangular(rng: random.Random) -> Question:
    n = rng.randint(40, 400)
    return f"What is the sum of all the whole numbers from 1 to {n}?", str(n * (n + 1) // 2)


def remainder(rng: random.Random) -> Question:
    a, b = rng.randint(10_000, 999_999), rng.randint(7, 97)
    return f"What is the remainder when {a} is divided by {b}?", str(a % b)


TEMPLATES: tuple[Callable[[random.Random], Question], ...] = (
    product_minus,
    percentage,
    triangular,
    remainder,
)


def arithmetic_record(i: int) -> dict[str, Any]:
    """Arithmetic question ``i`` (template ``i % 4``, seed ``SEED + i``)."""
    template = TEMPLATES[i % len(TEMPLATES)]
    question, answer = template(random.Random(SEED + i))
    return {
        "input": question,
        "output": answer,
        "metadata": {"kind": "arithmetic", "template": template.__name__, "aliases": []},
    }


def fact_record(i: int) -> dict[str, Any]:
    """Factual question ``i``."""
    question, answer, aliases = FACTS[i]
    return {
        "input": question,
        "output": answer,
        "metadata": {"kind": "fact", "template": "fact", "aliases": list(aliases)},
    }


def build() -> list[dict[str, Any]]:
    """Every record, alternating a fact and an arithmetic question."""
    records: list[dict[str, Any]] = []
    for i in range(len(FACTS)):
        records.append(fact_record(i))
        records.append(arithmetic_record(i))
    return records


def render(records: list[dict[str, Any]]) -> str:
    """The JSONL text of ``records``."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def main(argv: list[str] | None = None) -> int:
    """Write (or, with --check, verify) the dataset file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render(build())
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {len(build())} records to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
