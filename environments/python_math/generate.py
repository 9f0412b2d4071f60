"""Generate the python_math dataset (`data.jsonl`) deterministically. Standard library only.

Usage::

    python environments/python_math/generate.py            # rewrite data.jsonl beside this file
    python environments/python_math/generate.py --check    # exit 1 if data.jsonl is stale
    python environments/python_math/generate.py --output other.jsonl

Every record is ``{"input": ..., "output": ..., "metadata": {"family", "seed", "template"}}``.
A record depends only on its family and seed (``generate_problem(family, seed)``), so any
record can be regenerated and checked on its own. Answers are computed exactly (``int``,
``fractions.Fraction``, integer cents), never with floats.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

SHUFFLE_SEED = 20240611
"""Seed of the shuffle that interleaves the families in the output file."""

FAMILY_COUNTS: dict[str, int] = {
    "arithmetic": 34,
    "modular": 33,
    "series": 33,
    "word_problems": 34,
    "number_theory": 33,
    "fractions": 33,
}
"""Records per family (200 in all)."""

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "data.jsonl"

INTEGER = "Give the answer as a single integer."
FRACTION = (
    "Give the answer as an exact fraction a/b in lowest terms "
    "(for example 7/12, or -7/12 if negative)."
)
DOLLARS = (
    "Give the answer in dollars as a number with exactly two digits after the decimal "
    "point, without the $ sign (for example 12.50)."
)

Problem = tuple[str, str]
"""(problem text, canonical answer)."""
Template = Callable[[random.Random], Problem]

NAMES = ("Alice", "Bruno", "Chen", "Dana", "Emeka", "Farah", "Grace", "Hiro", "Ines", "Jonas")
SHOP_ITEMS = (
    ("notebook", "notebooks"),
    ("pen", "pens"),
    ("apple", "apples"),
    ("loaf of bread", "loaves of bread"),
    ("bottle of juice", "bottles of juice"),
    ("pack of batteries", "packs of batteries"),
    ("candle", "candles"),
    ("mug", "mugs"),
    ("towel", "towels"),
    ("light bulb", "light bulbs"),
)
VEHICLES = ("train", "bus", "truck", "cyclist", "ferry", "car")


# --- helpers -------------------------------------------------------------------------------


def _prime_sieve(limit: int) -> bytes:
    """``sieve[n] == 1`` iff n is prime, for 0 <= n < limit."""
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\x00\x00"
    for n in range(2, math.isqrt(limit - 1) + 1):
        if sieve[n]:
            sieve[n * n :: n] = bytes(len(range(n * n, limit, n)))
    return bytes(sieve)


def count_primes_below(n: int) -> int:
    """How many primes p satisfy p < n."""
    return sum(_prime_sieve(max(n, 2)))


def is_prime(n: int) -> bool:
    """Trial division; fine for the sizes used here."""
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))


def divisor_count(n: int) -> int:
    """The number of positive divisors of n >= 1, from its factorisation by trial division."""
    count, d = 1, 2
    while d * d <= n:
        exponent = 0
        while n % d == 0:
            n //= d
            exponent += 1
        count *= exponent + 1
        d += 1
    return count * (2 if n > 1 else 1)


def fibonacci_mod(n: int, m: int) -> int:
    """F(n) mod m with F(1) = F(2) = 1."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, (a + b) % m
    return a % m


def fmt_fraction(value: Fraction) -> str:
    """``a/b`` in lowest terms (Fraction is always normalised)."""
    return f"{value.numerator}/{value.denominator}"


def fmt_cents(cents: int) -> str:
    """Integer cents as dollars with two decimals, e.g. 1250 -> '12.50'."""
    return f"{cents // 100}.{cents % 100:02d}"


def _random_fraction(rng: random.Random, max_den: int = 19) -> Fraction:
    den = rng.randint(2, max_den)
    num = rng.randint(1, 3 * den)
    return Fraction(num, den)


def _non_integer(make: Callable[[], tuple[str, Fraction]]) -> Problem:
    """Draw until the exact answer is not a whole number, so it really is an ``a/b``."""
    while True:
        text, value = make()
        if value.denominator != 1:
            return text, fmt_fraction(value)


# --- arithmetic ----------------------------------------------------------------------------


def arith_mul_sub(rng: random.Random) -> Problem:
    a, b, c = rng.randint(10_000, 99_999), rng.randint(1_000, 9_999), rng.randint(100, 999)
    return f"Compute {a} * {b} - {c}. {INTEGER}", str(a * b - c)


def arith_sum_of_products(rng: random.Random) -> Problem:
    a, b = rng.randint(1_000, 99_999), rng.randint(1_000, 99_999)
    c, d = rng.randint(1_000, 99_999), rng.randint(1_000, 99_999)
    e, f = rng.randint(100, 9_999), rng.randint(100, 9_999)
    return f"Compute {a} * {b} + {c} * {d} - {e} * {f}. {INTEGER}", str(a * b + c * d - e * f)


def arith_parenthesised(rng: random.Random) -> Problem:
    a, b = rng.randint(10_000, 999_999), rng.randint(10_000, 999_999)
    c, d = rng.randint(1_000, 99_999), rng.randint(1_000, 99_999)
    return f"Compute ({a} + {b}) * ({c} - {d}). {INTEGER}", str((a + b) * (c - d))


def arith_powers(rng: random.Random) -> Problem:
    a, k = rng.randint(11, 99), rng.randint(5, 9)
    b, m = rng.randint(11, 99), rng.randint(5, 9)
    return f"Compute {a}^{k} - {b}^{m} (^ means exponentiation). {INTEGER}", str(a**k - b**m)


def arith_exact_division(rng: random.Random) -> Problem:
    d, q = rng.randint(101, 9_999), rng.randint(10_000, 999_999)
    e, f = rng.randint(100, 999), rng.randint(100, 999)
    n = d * q
    return f"Compute {n} / {d} + {e} * {f}. {INTEGER}", str(q + e * f)


def arith_nested(rng: random.Random) -> Problem:
    a, b = rng.randint(1_000, 99_999), rng.randint(1_000, 99_999)
    c, d, e = rng.randint(100, 9_999), rng.randint(1_000, 99_999), rng.randint(11, 999)
    return (
        f"Compute (({a} - {b}) * {c} + {d}) * {e}. {INTEGER}",
        str(((a - b) * c + d) * e),
    )


# --- modular -------------------------------------------------------------------------------


def mod_powmod(rng: random.Random) -> Problem:
    a, b = rng.randint(2, 999), rng.randint(100, 99_999)
    m = rng.choice((1_000, 10_000, 1_000_000, rng.randint(1_000, 99_999)))
    return f"What is the remainder when {a}^{b} is divided by {m}? {INTEGER}", str(pow(a, b, m))


def mod_product(rng: random.Random) -> Problem:
    a, b, c = (rng.randint(10**6, 10**9) for _ in range(3))
    m = rng.randint(1_000, 999_999)
    return (
        f"What is ({a} * {b} * {c}) mod {m}? {INTEGER}",
        str((a * b * c) % m),
    )


def mod_inverse(rng: random.Random) -> Problem:
    p = rng.randint(1_000, 100_000)
    while not is_prime(p):
        p += 1
    a = rng.randint(2, p - 1)
    return (
        f"Find the integer x with 0 <= x < {p} such that {a} * x leaves remainder 1 when "
        f"divided by {p} (the inverse of {a} modulo the prime {p}). {INTEGER}",
        str(pow(a, -1, p)),
    )


def mod_sum_of_powers(rng: random.Random) -> Problem:
    n, k, m = rng.randint(500, 5_000), rng.randint(3, 12), rng.randint(1_000, 99_999)
    return (
        f"Compute (1^{k} + 2^{k} + ... + {n}^{k}) mod {m}. {INTEGER}",
        str(sum(pow(i, k, m) for i in range(1, n + 1)) % m),
    )


# --- series --------------------------------------------------------------------------------


def series_squares(rng: random.Random) -> Problem:
    n = rng.randint(100, 5_000)
    return (
        f"What is the sum of the squares of the integers from 1 to {n}, "
        f"that is 1^2 + 2^2 + ... + {n}^2? {INTEGER}",
        str(sum(i * i for i in range(1, n + 1))),
    )


def series_cubes(rng: random.Random) -> Problem:
    lo = rng.randint(10, 500)
    hi = lo + rng.randint(100, 3_000)
    return (
        f"What is {lo}^3 + {lo + 1}^3 + ... + {hi}^3 (the sum of the cubes of every integer "
        f"from {lo} to {hi})? {INTEGER}",
        str(sum(i**3 for i in range(lo, hi + 1))),
    )


def series_arithmetic(rng: random.Random) -> Problem:
    a, d, n = rng.randint(-500, 500), rng.randint(3, 97), rng.randint(50, 2_000)
    return (
        f"An arithmetic sequence starts at {a} and each term is {d} more than the previous "
        f"one. What is the sum of its first {n} terms? {INTEGER}",
        str(sum(a + d * i for i in range(n))),
    )


def series_geometric(rng: random.Random) -> Problem:
    a, r, n = rng.randint(1, 50), rng.randint(2, 7), rng.randint(12, 30)
    return (
        f"What is the sum {a} + {a}*{r} + {a}*{r}^2 + ... + {a}*{r}^{n - 1} "
        f"(the first {n} terms of a geometric series)? {INTEGER}",
        str(sum(a * r**i for i in range(n))),
    )


def series_multiples(rng: random.Random) -> Problem:
    p, q = rng.sample((3, 4, 5, 6, 7, 11, 13), 2)
    n = rng.randint(1_000, 1_000_000)
    return (
        f"What is the sum of all positive integers below {n} that are divisible by {p} "
        f"or by {q} (or both)? {INTEGER}",
        str(sum(i for i in range(1, n) if i % p == 0 or i % q == 0)),
    )


def series_products(rng: random.Random) -> Problem:
    n = rng.randint(100, 3_000)
    return (
        f"Compute 1*2 + 2*3 + 3*4 + ... + {n}*{n + 1}, the sum of k*(k+1) for k from 1 "
        f"to {n}. {INTEGER}",
        str(sum(k * (k + 1) for k in range(1, n + 1))),
    )


# --- word problems -------------------------------------------------------------------------


def word_shopping(rng: random.Random) -> Problem:
    name = rng.choice(NAMES)
    picks = rng.sample(SHOP_ITEMS, rng.randint(3, 4))
    lines: list[str] = []
    total = 0
    for singular, plural in picks:
        qty, cents = rng.randint(2, 24), rng.randint(49, 4_999)
        total += qty * cents
        lines.append(f"{qty} {plural} at ${fmt_cents(cents)} per {singular}")
    coupon = rng.choice((0, 250, 500, 1_000))
    total -= coupon
    bought = ", ".join(lines[:-1]) + f" and {lines[-1]}"
    coupon_text = f" and uses a coupon for ${fmt_cents(coupon)} off the total" if coupon else ""
    return (
        f"{name} buys {bought}{coupon_text}. How much does {name} pay in total? {DOLLARS}",
        fmt_cents(total),
    )


def word_distance(rng: random.Random) -> Problem:
    vehicle = rng.choice(VEHICLES)
    legs: list[str] = []
    total_km = Fraction(0)
    for _ in range(rng.randint(2, 3)):
        speed = 12 * rng.randint(2, 10)
        minutes = rng.randint(1, 5) * 60 + 5 * rng.randint(0, 11)
        total_km += Fraction(speed * minutes, 60)
        hours, rest = divmod(minutes, 60)
        span = f"{hours} hours" + (f" and {rest} minutes" if rest else "")
        legs.append(f"{speed} km/h for {span}")
    assert total_km.denominator == 1
    return (
        f"A {vehicle} travels at " + ", then at ".join(legs) + ". How many kilometres does it "
        f"travel in total? {INTEGER}",
        str(total_km.numerator),
    )


def word_travel_time(rng: random.Random) -> Problem:
    vehicle = rng.choice(VEHICLES)
    speed = 12 * rng.randint(2, 10)
    minutes = 5 * rng.randint(12, 200)
    distance = speed * minutes // 60
    return (
        f"A {vehicle} covers {distance} km at a constant speed of {speed} km/h. How many "
        f"minutes does the trip take? {INTEGER}",
        str(minutes),
    )


def word_ages(rng: random.Random) -> Problem:
    older, younger = rng.sample(NAMES, 2)
    base, ratio, j = rng.randint(3, 15), rng.randint(2, 4), rng.randint(1, 4)
    # older = (ratio + (ratio - 1) * j) * base; after j * base years the ratio is `ratio`.
    times_now = ratio + (ratio - 1) * j
    years = j * base
    word = {2: "twice", 3: "three times", 4: "four times"}[ratio]
    return (
        f"{older} is {times_now} times as old as {younger}. In {years} years, {older} will "
        f"be {word} as old as {younger}. How old is {older} now, in years? {INTEGER}",
        str(times_now * base),
    )


def word_ages_sum(rng: random.Random) -> Problem:
    first, second = rng.sample(NAMES, 2)
    young, gap, later = rng.randint(5, 60), rng.randint(2, 30), rng.randint(2, 25)
    total = 2 * young + gap
    return (
        f"The ages of {first} and {second} add up to {total} years, and {first} is {gap} "
        f"years older than {second}. How old will {second} be in {later} years? {INTEGER}",
        str(young + later),
    )


def word_work_rate(rng: random.Random) -> Problem:
    while True:
        a, b = rng.randint(2, 15), rng.randint(2, 15)
        together = Fraction(60 * a * b, a + b)
        if a != b and together.denominator == 1:
            break
    return (
        f"One pipe alone fills a tank in {a} hours; a second pipe alone fills it in {b} hours. "
        f"Starting from empty, with both pipes open, how many minutes does it take to fill "
        f"the tank? {INTEGER}",
        str(together.numerator),
    )


def word_savings(rng: random.Random) -> Problem:
    first, second = rng.sample(NAMES, 2)
    weeks = rng.randint(3, 80)
    slow, fast = sorted(rng.sample(range(5, 120), 2))
    start_fast = rng.randint(0, 200)
    start_slow = start_fast + weeks * (fast - slow)
    return (
        f"{first} has ${start_slow} and saves ${slow} every week. {second} has ${start_fast} "
        f"and saves ${fast} every week. After how many weeks will they have saved exactly the "
        f"same amount of money? {INTEGER}",
        str(weeks),
    )


# --- number theory -------------------------------------------------------------------------


def nt_gcd(rng: random.Random) -> Problem:
    g = rng.randint(100, 99_999)
    x, y = rng.randint(1_000, 999_999), rng.randint(1_000, 999_999)
    a, b = g * x, g * y
    return (
        f"What is the greatest common divisor of {a} and {b}? {INTEGER}",
        str(math.gcd(a, b)),
    )


def nt_lcm(rng: random.Random) -> Problem:
    a, b, c = (rng.randint(100, 99_999) for _ in range(3))
    return (
        f"What is the least common multiple of {a}, {b} and {c}? {INTEGER}",
        str(math.lcm(a, b, c)),
    )


def nt_count_primes(rng: random.Random) -> Problem:
    n = rng.randint(1_000, 500_000)
    return f"How many prime numbers are less than {n}? {INTEGER}", str(count_primes_below(n))


def nt_fibonacci_mod(rng: random.Random) -> Problem:
    n, m = rng.randint(1_000, 200_000), rng.randint(1_000, 1_000_000)
    return (
        f"The Fibonacci numbers are F(1) = 1, F(2) = 1 and F(n) = F(n-1) + F(n-2). What is "
        f"F({n}) mod {m}? {INTEGER}",
        str(fibonacci_mod(n, m)),
    )


def nt_divisor_count(rng: random.Random) -> Problem:
    primes = rng.sample((2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31), rng.randint(3, 5))
    n = 1
    for p in primes:
        n *= p ** rng.randint(1, 4)
    return f"How many positive divisors does {n} have? {INTEGER}", str(divisor_count(n))


def nt_digit_sum(rng: random.Random) -> Problem:
    if rng.random() < 0.5:
        k = rng.randint(200, 3_000)
        expr, value = f"2^{k}", 2**k
    else:
        k = rng.randint(50, 700)
        expr, value = f"{k}! ({k} factorial)", math.factorial(k)
    return (
        f"What is the sum of the decimal digits of {expr}? {INTEGER}",
        str(sum(int(ch) for ch in str(value))),
    )


# --- fractions -----------------------------------------------------------------------------


def frac_sum(rng: random.Random) -> Problem:
    def make() -> tuple[str, Fraction]:
        x, y, z = (_random_fraction(rng) for _ in range(3))
        return f"Compute {x} + {y} - {z}.", x + y - z

    text, answer = _non_integer(make)
    return f"{text} {FRACTION}", answer


def frac_product(rng: random.Random) -> Problem:
    def make() -> tuple[str, Fraction]:
        x, y, z = (_random_fraction(rng, 29) for _ in range(3))
        return f"Compute ({x}) * ({y}) / ({z}).", x * y / z

    text, answer = _non_integer(make)
    return f"{text} {FRACTION}", answer


def frac_square(rng: random.Random) -> Problem:
    def make() -> tuple[str, Fraction]:
        x, y = _random_fraction(rng, 23), _random_fraction(rng, 23)
        k = rng.randint(2, 4)
        return f"Compute ({x} - {y})^{k} (^ means exponentiation).", (x - y) ** k

    text, answer = _non_integer(make)
    return f"{text} {FRACTION}", answer


def frac_harmonic(rng: random.Random) -> Problem:
    n = rng.randint(6, 60)
    value = sum((Fraction(1, k) for k in range(1, n + 1)), Fraction(0))
    return (
        f"Compute 1 + 1/2 + 1/3 + ... + 1/{n} exactly. {FRACTION}",
        fmt_fraction(value),
    )


def frac_telescoping(rng: random.Random) -> Problem:
    lo = rng.randint(1, 50)
    hi = lo + rng.randint(10, 500)
    value = sum((Fraction(1, k * (k + 1)) for k in range(lo, hi + 1)), Fraction(0))
    return (
        f"Compute the sum of 1/(k*(k+1)) for every integer k from {lo} to {hi}. {FRACTION}",
        fmt_fraction(value),
    )


def frac_dice(rng: random.Random) -> Problem:
    dice = rng.randint(2, 4)
    target = rng.randint(dice + 1, 6 * dice - 1)
    outcomes = [0]
    for _ in range(dice):
        outcomes = [s + face for s in outcomes for face in range(1, 7)]
    value = Fraction(outcomes.count(target), len(outcomes))
    return (
        f"{dice} fair six-sided dice are rolled. What is the probability that the numbers "
        f"shown add up to exactly {target}? {FRACTION}",
        fmt_fraction(value),
    )


# --- assembly ------------------------------------------------------------------------------

TEMPLATES: dict[str, tuple[Template, ...]] = {
    "arithmetic": (
        arith_mul_sub,
        arith_sum_of_products,
        arith_parenthesised,
        arith_powers,
        arith_exact_division,
        arith_nested,
    ),
    "modular": (mod_powmod, mod_product, mod_inverse, mod_sum_of_powers),
    "series": (
        series_squares,
        series_cubes,
        series_arithmetic,
        series_geometric,
        series_multiples,
        series_products,
    ),
    "word_problems": (
        word_shopping,
        word_distance,
        word_travel_time,
        word_ages,
        word_ages_sum,
        word_work_rate,
        word_savings,
    ),
    "number_theory": (
        nt_gcd,
        nt_lcm,
        nt_count_primes,
        nt_fibonacci_mod,
        nt_divisor_count,
        nt_digit_sum,
    ),
    "fractions": (
        frac_sum,
        frac_product,
        frac_square,
        frac_harmonic,
        frac_telescoping,
        frac_dice,
    ),
}
"""Problem templates of each family; a record's template is ``templates[seed % len]``."""

FAMILIES: tuple[str, ...] = tuple(FAMILY_COUNTS)


def generate_problem(family: str, seed: int) -> dict[str, Any]:
    """The record of one (family, seed); depends on nothing else."""
    if family not in TEMPLATES:
        raise ValueError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")
    templates = TEMPLATES[family]
    template = templates[seed % len(templates)]
    text, answer = template(random.Random(seed))
    return {
        "input": text,
        "output": answer,
        "metadata": {"family": family, "seed": seed, "template": template.__name__},
    }


def generate_records() -> list[dict[str, Any]]:
    """The whole dataset, families interleaved by a seeded shuffle.

    A family's seeds are ``1000 * (its position in FAMILIES + 1)`` upwards; a seed whose
    problem repeats an earlier one is skipped, so every input is unique.
    """
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for position, family in enumerate(FAMILIES):
        seed = 1_000 * (position + 1)
        wanted = len(records) + FAMILY_COUNTS[family]
        while len(records) < wanted:
            record = generate_problem(family, seed)
            seed += 1
            if record["input"] not in seen:
                seen.add(record["input"])
                records.append(record)
    random.Random(SHUFFLE_SEED).shuffle(records)
    return records


def render_jsonl(records: Sequence[dict[str, Any]]) -> str:
    """The file content: one JSON object per line, in a stable key order."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSONL to write")
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if the file is out of date"
    )
    args = parser.parse_args(argv)
    content = render_jsonl(generate_records())
    path: Path = args.output
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != content:
            print(
                f"{path} is out of date; run {Path(__file__).name} to regenerate", file=sys.stderr
            )
            return 1
        print(f"{path} is up to date")
        return 0
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(content)
    print(f"wrote {content.count(chr(10))} records to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
