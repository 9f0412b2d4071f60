"""The double_check environment: dataset, normalisation, the two-turn loop and its reward."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import docker
import pytest
from conftest import in_process_runtime

from runtime.client.in_process import InProcessClient
from runtime.client.models import Scored
from runtime.env import Environment, Message, TaskExample, ToolCall
from runtime.env.loader import load_environment, resolve_module
from runtime.errors import FailedPreconditionError, InvalidArgumentError

REPO = Path(__file__).resolve().parents[1]
ENV_DIR = REPO / "environments" / "double_check"
DATA_FILE = ENV_DIR / "data.jsonl"


@pytest.fixture(scope="module")
def mod() -> ModuleType:
    """The environment package, imported the way the loader imports it."""
    return resolve_module(str(ENV_DIR))


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    """generate.py, imported from its path (it is a standalone script)."""
    name = "double_check_generate_under_test"
    spec = importlib.util.spec_from_file_location(name, ENV_DIR / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def env() -> Environment:
    return load_environment(str(ENV_DIR))


# --- dataset -------------------------------------------------------------------------------


def test_dataset(env: Environment) -> None:
    assert env.sandbox is None
    assert env.tool_schemas() == []
    assert env.max_turns == 2
    assert len(env.examples) == 40
    kinds = [e.metadata["kind"] for e in env.examples]
    assert kinds == ["fact", "arithmetic"] * 20
    assert len({e.input for e in env.examples}) == 40
    for example in env.examples:
        assert isinstance(example.input, str)
        assert example.input.endswith("?")
        assert isinstance(example.output, str)
        assert example.output
        assert isinstance(example.metadata["aliases"], list)


def test_data_file_is_what_the_generator_writes(gen: ModuleType) -> None:
    assert DATA_FILE.read_text(encoding="utf-8") == gen.render(gen.build())
    assert gen.main(["--check", "--output", str(DATA_FILE)]) == 0


def test_arithmetic_answers_are_right() -> None:
    records = [json.loads(line) for line in DATA_FILE.read_text(encoding="utf-8").splitlines()]
    checked = 0
    for record in records:
        question: str = record["input"]
        words = question.rstrip("?").split()
        numbers = [int(w.rstrip("%")) for w in words if w.rstrip("%").isdigit()]
        template = record["metadata"]["template"]
        if template == "product_minus":
            a, b, c = numbers
            expected = a * b - c
        elif template == "percentage":
            percent, whole = numbers
            expected = percent * whole // 100
        elif template == "triangular":
            _, n = numbers
            expected = n * (n + 1) // 2
        elif template == "remainder":
            a, b = numbers
            expected = a % b
        else:
            continue
        assert record["output"] == str(expected), question
        checked += 1
    assert checked == 20


def test_params(mod: ModuleType) -> None:
    facts = load_environment(str(ENV_DIR), {"kinds": ["fact"]})
    assert {e.metadata["kind"] for e in facts.examples} == {"fact"}
    assert len(facts.examples) == 20
    assert len(load_environment(str(ENV_DIR), {"num_examples": 3}).examples) == 3
    invalid: list[dict[str, Any]] = [{"kinds": ["trivia"]}, {"kinds": []}, {"num_examples": 0}]
    for params in invalid:
        with pytest.raises(ValueError, match=r"kinds|num_examples"):
            mod.load_environment(**params)
        with pytest.raises(InvalidArgumentError):
            load_environment(str(ENV_DIR), params)
    with pytest.raises(InvalidArgumentError):
        load_environment(str(ENV_DIR), {"max_turns": 3})


# --- normalisation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("1440", "1440"),
        (" 1,440. ", "1440"),
        ("1440.0", "1440"),
        ("0.5", "1/2"),
        (".5", "1/2"),
        ("2/4", "1/2"),
        ("-7", "-7"),
        ("`Au`", "au"),
        ("**Canberra**.", "canberra"),
        ("The Pacific  Ocean", "pacific ocean"),
        ('"Jane Austen"', "jane austen"),
        ("1e3", "1e3"),
        ("", None),
        (" . ", None),
        (None, None),
    ],
)
def test_normalize_answer(mod: ModuleType, raw: Any, normalized: str | None) -> None:
    assert mod.normalize_answer(raw) == normalized


def test_aliases(mod: ModuleType) -> None:
    example = TaskExample(input="q", output="Pacific Ocean", metadata={"aliases": ["Pacific"]})
    for answer in ("pacific ocean", "The Pacific", "PACIFIC"):
        assert mod.answers_match(answer, example)
    assert not mod.answers_match("Atlantic", example)
    assert not mod.answers_match(None, example)
    assert mod.answers_match("9" * 300, TaskExample(input="q", output="9" * 300))


# --- through the in-process client ---------------------------------------------------------


@pytest.fixture(scope="module")
async def client(owner: str, docker_client: docker.DockerClient) -> AsyncIterator[InProcessClient]:
    """An in-process runtime offering double_check, under an owner name of its own."""
    async with in_process_runtime(ENV_DIR, f"{owner}-double-check", docker_client) as runtime:
        yield runtime


def say(text: str | None) -> Message:
    return Message(role="assistant", content=text)


async def play(
    client: InProcessClient, index: int, first: str | None, second: str | None
) -> Scored:
    """Both turns, checking the verification prompt and the end of the episode."""
    async with client.episode("double_check", example_index=index) as ep:
        assert ep.start.tools == []
        assert ep.start.max_episode_turns == 2
        assert [m.role for m in ep.start.messages] == ["system", "user"]
        out = await ep.step(say(first))
        assert not out.done
        assert out.turn == 1
        assert [(o.role, o.content) for o in out.observations] == [
            (
                "user",
                "Please verify your answer step by step and give your final answer again "
                "in <answer></answer> tags.",
            )
        ]
        out = await ep.step(say(second))
        assert out.done
        assert not out.truncated
        assert out.observations == []
        with pytest.raises(FailedPreconditionError):
            await ep.step(say("once more"))
        scored = await ep.score()
        assert scored.trajectory.status == "done"
        return scored


def answer(text: str) -> str:
    return f"Checking...\n<answer>{text}</answer>"


async def test_right_then_right(client: InProcessClient, env: Environment) -> None:
    gold = str(env.examples[1].output)
    reward = (await play(client, 1, answer(gold), answer(gold))).reward
    assert reward.score == 1.0
    assert reward.success
    assert reward.components == {
        "final_correct": 1.0,
        "first_correct": 1.0,
        "revised": 0.0,
        "improved": 0.0,
    }
    assert reward.metadata["metrics"] == ["first_correct", "revised", "improved"]
    assert reward.metadata["per_turn_rewards"] == [1.0, 1.0]
    assert reward.metadata["answers"] == [gold, gold]


async def test_wrong_then_right(client: InProcessClient, env: Environment) -> None:
    gold = str(env.examples[0].output)  # "Au"
    reward = (await play(client, 0, answer("Ag"), answer(gold.lower()))).reward
    assert reward.score == 1.0
    assert reward.components == {
        "final_correct": 1.0,
        "first_correct": 0.0,
        "revised": 1.0,
        "improved": 1.0,
    }
    assert reward.metadata["per_turn_rewards"] == [0.0, 1.0]


async def test_right_then_wrong(client: InProcessClient, env: Environment) -> None:
    gold = int(str(env.examples[3].output))
    reward = (await play(client, 3, answer(str(gold)), answer(str(gold + 10)))).reward
    assert reward.score == 0.0
    assert not reward.success
    assert reward.components == {
        "final_correct": 0.0,
        "first_correct": 1.0,
        "revised": 1.0,
        "improved": 0.0,
    }
    assert reward.metadata["per_turn_rewards"] == [1.0, 0.0]
    assert "incorrect" in reward.reason


async def test_final_answer_without_tags_scores_zero(
    client: InProcessClient, env: Environment
) -> None:
    gold = str(env.examples[5].output)
    reward = (await play(client, 5, answer(gold), f"Still {gold}.")).reward
    assert reward.score == 0.0
    assert reward.components["first_correct"] == 1.0
    assert reward.metadata["answers"] == [gold, None]
    assert "no final answer" in reward.reason


async def test_equivalent_forms_count(client: InProcessClient) -> None:
    inline = {"input": "What is half of 1?", "output": "1/2"}
    async with client.episode("double_check", inline_example=inline) as ep:
        await ep.step(say(answer("0.50")))
        await ep.step(raw_text="<think>yes</think><answer>1/2.</answer>")
        reward = (await ep.score()).reward
    assert reward.score == 1.0
    assert reward.components["revised"] == 0.0


async def test_score_after_one_turn_uses_the_first_answer(
    client: InProcessClient, env: Environment
) -> None:
    gold = str(env.examples[2].output)
    async with client.episode("double_check", example_index=2) as ep:
        await ep.step(say(answer(gold)))
        reward = (await ep.score()).reward
        assert reward.score == 1.0
        assert reward.metadata["per_turn_rewards"] == [1.0]
        assert reward.components["revised"] == 0.0


async def test_tool_calls_are_answered_not_run(client: InProcessClient, env: Environment) -> None:
    gold = str(env.examples[4].output)
    call = ToolCall(id="c1", name="python", arguments="{}")
    async with client.episode("double_check", example_index=4) as ep:
        out = await ep.step(Message(role="assistant", content=answer(gold), tool_calls=[call]))
        assert [o.role for o in out.observations] == ["tool", "user"]
        assert out.observations[0].tool_call_id == "c1"
        out = await ep.step(say(answer(gold)))
        assert out.done
        assert (await ep.score()).reward.score == 1.0


def test_gold_actions_answer_twice_in_tags(env: Environment) -> None:
    example = env.examples[0]
    turns = env.gold_actions(example)  # type: ignore[attr-defined]
    assert [(m.role, m.content) for m in turns] == [("assistant", "<answer>Au</answer>")] * 2
    assert env.gold_actions(TaskExample(input="q")) is None  # type: ignore[attr-defined]
