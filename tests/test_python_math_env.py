"""The python_math environment: loading, dataset, generator, normaliser and reward (no Docker)."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
from collections import Counter
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from runtime.env import Environment, Episode, EpisodeContext, RewardResult, TaskExample
from runtime.env.loader import load_environment, resolve_module
from runtime.errors import InvalidArgumentError

REPO = Path(__file__).resolve().parents[1]
ENV_DIR = REPO / "environments" / "python_math"
DATA_FILE = ENV_DIR / "data.jsonl"
FAMILIES = ["arithmetic", "fractions", "modular", "number_theory", "series", "word_problems"]


@pytest.fixture(scope="module")
def mod() -> ModuleType:
    """The environment package, imported the way the loader imports it."""
    return resolve_module(str(ENV_DIR))


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    """generate.py, imported from its path (it is a standalone script)."""
    name = "python_math_generate_under_test"
    spec = importlib.util.spec_from_file_location(name, ENV_DIR / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    lines = DATA_FILE.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def env() -> Environment:
    return load_environment(str(ENV_DIR))


def make_episode(
    example: TaskExample,
    *,
    submission: Any = None,
    submitted: bool = False,
    final_text: str | None = None,
) -> tuple[Episode, EpisodeContext]:
    episode = Episode(
        id="ep-1",
        environment_id="python_math",
        example=example,
        max_turns=8,
        done=True,
        status="done",
        final_response_text=final_text,
        submission=submission,
        submitted=submitted,
    )
    ctx = EpisodeContext(
        episode_id="ep-1",
        sandbox=None,
        seed=None,
        timeout_s=10.0,
        output_cap_bytes=65536,
        submission=submission,
        submitted=submitted,
    )
    return episode, ctx


async def score(env: Environment, output: str, **kwargs: Any) -> RewardResult:
    example = TaskExample(input="Compute something.", output=output, index=0)
    episode, ctx = make_episode(example, **kwargs)
    return await env.score_episode(example, episode, ctx)


# --- loading -------------------------------------------------------------------------------


def test_loads_by_relative_path_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    env = load_environment("environments/python_math")
    assert isinstance(env, Environment)
    assert env.id == "python_math"
    assert env.description
    assert len(env.examples) == 200
    assert set(env.tool_map) == {"python", "submit"}
    assert [s["function"]["name"] for s in env.tool_schemas()] == ["python", "submit"]
    assert env.max_turns == 8
    assert env.max_episode_turns(env.examples[0]) == 8
    assert env.sandbox is not None
    assert env.sandbox.call_timeout_s == 10.0
    assert env.sandbox.image == "runtime/python:latest"
    assert env.system_prompt is not None
    assert "python" in env.system_prompt
    assert "submit" in env.system_prompt


def test_examples_carry_records(env: Environment, records: list[dict[str, Any]]) -> None:
    for index, (example, record) in enumerate(zip(env.examples, records, strict=True)):
        assert example.index == index
        assert example.input == record["input"]
        assert example.output == record["output"]
        assert example.metadata == record["metadata"]


async def test_start_episode_messages(env: Environment) -> None:
    example = env.examples[0]
    ctx = EpisodeContext(episode_id="e", sandbox=None, seed=None, timeout_s=1, output_cap_bytes=256)
    messages = await env.start_episode(example, ctx)
    assert [m.role for m in messages] == ["system", "user"]
    assert messages[0].content == env.system_prompt
    assert messages[1].content == example.input


def test_params_filter_and_limit() -> None:
    env = load_environment(
        str(ENV_DIR),
        {"families": ["fractions"], "num_examples": 5, "max_turns": 3, "call_timeout_s": 2.5},
    )
    assert len(env.examples) == 5
    assert {e.metadata["family"] for e in env.examples} == {"fractions"}
    assert env.max_turns == 3
    assert env.sandbox is not None
    assert env.sandbox.call_timeout_s == 2.5
    assert isinstance(env.dataset, list)


def test_params_several_families_keep_file_order(records: list[dict[str, Any]]) -> None:
    env = load_environment(str(ENV_DIR), {"families": ["series", "modular"]})
    expected = [r for r in records if r["metadata"]["family"] in ("series", "modular")]
    assert [e.input for e in env.examples] == [r["input"] for r in expected]
    assert len(env.examples) == 66


def test_num_examples_takes_a_prefix_and_caps(records: list[dict[str, Any]]) -> None:
    env = load_environment(str(ENV_DIR), {"num_examples": 7})
    assert [e.input for e in env.examples] == [r["input"] for r in records[:7]]
    assert len(load_environment(str(ENV_DIR), {"num_examples": 10_000}).examples) == 200


def test_filtered_dataset_is_a_copy(mod: ModuleType) -> None:
    first = mod.load_environment(families=["series"])
    first.dataset[0]["metadata"]["family"] = "mutated"
    second = mod.load_environment(families=["series"])
    assert second.dataset[0]["metadata"]["family"] == "series"


def test_available_families(mod: ModuleType) -> None:
    assert mod.available_families() == FAMILIES


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"families": ["geometry"]}, "valid families"),
        ({"families": []}, "must not be empty"),
        ({"num_examples": 0}, "at least 1"),
        ({"num_examples": -3}, "at least 1"),
        ({"max_turns": 0}, "max_turns"),
        ({"call_timeout_s": 0}, "call_timeout_s"),
        ({"call_timeout_s": -1.0}, "call_timeout_s"),
    ],
)
def test_invalid_params_raise_value_error(
    mod: ModuleType, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        mod.load_environment(**params)
    with pytest.raises(InvalidArgumentError):
        load_environment(str(ENV_DIR), params)


def test_unknown_family_lists_valid_names(mod: ModuleType) -> None:
    with pytest.raises(ValueError, match="geometry") as info:
        mod.load_environment(families=["series", "geometry"])
    for family in FAMILIES:
        assert family in str(info.value)


def test_non_integer_num_examples_is_rejected(mod: ModuleType) -> None:
    with pytest.raises(TypeError):
        mod.load_environment(num_examples=2.5)
    with pytest.raises(InvalidArgumentError):
        load_environment(str(ENV_DIR), {"num_examples": "3"})


def test_unknown_param_is_rejected() -> None:
    with pytest.raises(InvalidArgumentError):
        load_environment(str(ENV_DIR), {"difficulty": "hard"})


# --- dataset -------------------------------------------------------------------------------

INTEGER_ANSWER = re.compile(r"-?\d+")
FRACTION_ANSWER = re.compile(r"-?\d+/\d+")
DOLLAR_ANSWER = re.compile(r"\d+\.\d\d")


def test_dataset_size_families_and_shape(records: list[dict[str, Any]]) -> None:
    assert len(records) == 200
    counts = Counter(r["metadata"]["family"] for r in records)
    assert sorted(counts) == FAMILIES
    assert all(n >= 30 for n in counts.values())
    assert len({r["input"] for r in records}) == len(records)
    assert len({(r["metadata"]["family"], r["metadata"]["seed"]) for r in records}) == 200
    for record in records:
        assert set(record) == {"input", "output", "metadata"}
        assert isinstance(record["input"], str)
        assert isinstance(record["output"], str)
        meta = record["metadata"]
        assert set(meta) == {"family", "seed", "template"}
        assert isinstance(meta["seed"], int)
        assert isinstance(meta["template"], str)


def test_families_are_interleaved(records: list[dict[str, Any]]) -> None:
    assert len({r["metadata"]["family"] for r in records[:30]}) == len(FAMILIES)


def test_every_answer_has_its_stated_format(records: list[dict[str, Any]]) -> None:
    for record in records:
        text, answer = record["input"], record["output"]
        if text.endswith("Give the answer as a single integer."):
            assert INTEGER_ANSWER.fullmatch(answer), record
        elif "exact fraction a/b in lowest terms" in text:
            assert FRACTION_ANSWER.fullmatch(answer), record
            value = Fraction(answer)
            assert value.denominator > 1
            assert str(value) == answer  # lowest terms
        elif "in dollars" in text:
            assert DOLLAR_ANSWER.fullmatch(answer), record
        else:
            pytest.fail(f"no answer format instruction at the end of: {text!r}")


def test_answers_are_canonical_under_the_normaliser(
    mod: ModuleType, records: list[dict[str, Any]]
) -> None:
    for record in records:
        assert mod.answers_match(record["output"], record["output"])
        assert mod.parse_number(record["output"]) is not None


# --- generator -----------------------------------------------------------------------------


def test_generator_is_deterministic_and_matches_shipped_file(
    gen: ModuleType, records: list[dict[str, Any]]
) -> None:
    first, second = gen.generate_records(), gen.generate_records()
    assert first == second
    assert first == records
    assert gen.render_jsonl(first) == DATA_FILE.read_text(encoding="utf-8")


def test_each_record_regenerates_from_family_and_seed(
    gen: ModuleType, records: list[dict[str, Any]]
) -> None:
    for record in records:
        meta = record["metadata"]
        assert gen.generate_problem(meta["family"], meta["seed"]) == record


def test_generator_cli_check_and_write(gen: ModuleType, tmp_path: Path) -> None:
    assert gen.main(["--check", "--output", str(DATA_FILE)]) == 0
    out = tmp_path / "data.jsonl"
    assert gen.main(["--check", "--output", str(out)]) == 1
    assert gen.main(["--output", str(out)]) == 0
    assert out.read_bytes() == DATA_FILE.read_bytes()


def test_generator_rejects_unknown_family(gen: ModuleType) -> None:
    with pytest.raises(ValueError, match="unknown family"):
        gen.generate_problem("geometry", 1)


def _ints(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"-?\d+", text)]


def _nth_fib_mod(n: int, m: int) -> int:
    """Fast doubling, independent of the generator's loop."""

    def pair(k: int) -> tuple[int, int]:
        if k == 0:
            return 0, 1
        a, b = pair(k // 2)
        c = a * ((2 * b - a) % m) % m
        d = (a * a + b * b) % m
        return (d, (c + d) % m) if k % 2 else (c, d)

    return pair(n)[0]


def _count_primes(n: int) -> int:
    return sum(1 for k in range(2, n) if all(k % p for p in range(2, math.isqrt(k) + 1)))


def test_answers_recomputed_independently(records: list[dict[str, Any]]) -> None:
    """Re-derive the answer of several templates from the problem text alone."""
    checked: Counter[str] = Counter()
    for record in records:
        text, answer, template = record["input"], record["output"], record["metadata"]["template"]
        nums = _ints(text.split(". Give", 1)[0].split("? Give", 1)[0])
        if template == "arith_mul_sub":
            a, b, c = nums
            expected = str(a * b - c)
        elif template == "mod_powmod":
            a, b, m = nums
            expected = str(pow(a, b, m))
        elif template == "series_squares":
            n = nums[1]
            expected = str(n * (n + 1) * (2 * n + 1) // 6)
        elif template == "nt_fibonacci_mod":
            n, m = nums[-2:]
            expected = str(_nth_fib_mod(n, m))
        elif template == "nt_count_primes" and nums[0] <= 60_000:
            expected = str(_count_primes(nums[0]))
        elif template == "frac_telescoping":
            lo, hi = nums[-2:]
            expected = str(Fraction(1, lo) - Fraction(1, hi + 1))
        elif template == "word_travel_time":
            distance, speed = nums
            expected = str(distance * 60 // speed)
        else:
            continue
        assert answer == expected, record
        checked[template] += 1
    assert len(checked) >= 6, checked


# --- normaliser ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("42", "42"),
        ("  42\n", "42"),
        ("42.", "42"),
        ("42.0", "42"),
        ("42.000", "42"),
        ("-17", "-17"),
        ("+17", "17"),
        ("-0", "0"),
        ("$42$", "42"),
        ("$$42$$", "42"),
        ("$12.50", "25/2"),
        ("12.5", "25/2"),
        ("`42`", "42"),
        ("```\n42\n```", "42"),
        (" `$1,234$`. ", "1234"),
        ("1,234", "1234"),
        ("1,234,567", "1234567"),
        ("-1,234.50", "-2469/2"),
        ("3/6", "1/2"),
        ("-3/6", "-1/2"),
        ("3 / 6", "1/2"),
        ("6/3", "2"),
        ("1,000/3", "1000/3"),
        ("0.5", "1/2"),
        (".5", "1/2"),
        ("1/0", "1/0"),  # not a number: compared as text
        ("1,23", "1,23"),  # not a valid thousands grouping
        ("1e3", "1e3"),  # exponents are not parsed
        ("1/2/3", "1/2/3"),
        ("forty-two", "forty-two"),
        ("", ""),
        (None, ""),
        (42, "42"),
    ],
)
def test_normalize_answer(mod: ModuleType, raw: Any, normalized: str) -> None:
    assert mod.normalize_answer(raw) == normalized


@pytest.mark.parametrize(
    ("submitted", "reference", "match"),
    [
        ("42.0", "42", True),
        ("3/6", "1/2", True),
        ("0.5", "1/2", True),
        ("1,234", "1234", True),
        ("$890.42", "890.42", True),
        ("890.420", "890.42", True),
        ("-7/12", "-7/12", True),
        ("7/-12", "-7/12", True),
        ("43", "42", False),
        ("1/3", "0.333", False),
        ("42 apples", "42", False),
        ("abc", "abc", True),
        ("ABC", "abc", False),
    ],
)
def test_answers_match(mod: ModuleType, submitted: str, reference: str, match: bool) -> None:
    assert mod.answers_match(submitted, reference) is match


def test_huge_inputs_are_cheap(mod: ModuleType) -> None:
    assert mod.normalize_answer("9" * 5_000) == "9" * 5_000  # too long to parse as a number
    assert mod.normalize_answer("1e999999999") == "1e999999999"


# --- reward --------------------------------------------------------------------------------


async def test_score_correct(env: Environment) -> None:
    result = await score(env, "604097772", submission="604097772", submitted=True)
    assert result.score == 1.0
    assert result.success is True
    assert result.threshold == 1.0
    assert result.components == {"correct": 1.0, "submitted": 1.0}
    assert result.reason.startswith("correct")


async def test_score_wrong(env: Environment) -> None:
    result = await score(env, "604097772", submission="604097771", submitted=True)
    assert result.score == 0.0
    assert result.success is False
    assert result.components == {"correct": 0.0, "submitted": 1.0}
    assert "expected '604097772'" in result.reason
    assert "'604097771'" in result.reason


@pytest.mark.parametrize(
    ("reference", "submission"),
    [
        ("1234", "1,234"),
        ("42", "42.0"),
        ("1/2", "3/6"),
        ("1/2", " `1/2`. "),
        ("890.42", "$890.42"),
        ("890.42", "890.420"),
        ("-51104283378", "-51,104,283,378"),
    ],
)
async def test_score_equivalent_format(env: Environment, reference: str, submission: str) -> None:
    result = await score(env, reference, submission=submission, submitted=True)
    assert result.score == 1.0, result.reason


async def test_score_missing_answer(env: Environment) -> None:
    result = await score(env, "42")
    assert result.score == 0.0
    assert result.success is False
    assert result.reason == "no answer submitted"
    assert result.components == {"correct": 0.0, "submitted": 0.0}


async def test_final_text_is_ignored_without_submit(env: Environment) -> None:
    result = await score(env, "42", final_text="42")
    assert result.score == 0.0
    assert result.reason == "no answer submitted"


async def test_empty_or_none_submission_is_wrong(env: Environment) -> None:
    for submission in ("", None):
        result = await score(env, "42", submission=submission, submitted=True)
        assert result.score == 0.0
        assert result.components == {"correct": 0.0, "submitted": 1.0}


async def test_score_every_reference_against_itself(env: Environment) -> None:
    for example in env.examples:
        episode, ctx = make_episode(example, submission=example.output, submitted=True)
        result = await env.score_episode(example, episode, ctx)
        assert result.score == 1.0, (example.input, result.reason)
