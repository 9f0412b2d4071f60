"""The reasoning_gym environment: dataset, params, checker guard, and scripted episodes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import docker
import pytest
from conftest import in_process_runtime, wait_until_gone

from runtime.client.in_process import InProcessClient
from runtime.client.models import Scored
from runtime.env import (
    Action,
    Environment,
    Episode,
    EpisodeContext,
    Message,
    TaskExample,
    ToolCall,
    Turn,
)
from runtime.env.loader import load_environment, resolve_module
from runtime.errors import FailedPreconditionError, InvalidArgumentError

reasoning_gym = pytest.importorskip("reasoning_gym", reason="pip install 'reasoning-gym>=0.1.25'")

REPO = Path(__file__).resolve().parents[1]
ENV_DIR = REPO / "environments" / "reasoning_gym"
TASKS = ["basic_arithmetic", "chain_sum", "leg_counting"]
PARAMS: dict[str, Any] = {"tasks": TASKS, "size": 4, "seed": 7}


@pytest.fixture(scope="module")
def mod() -> ModuleType:
    """The environment package, imported the way the loader imports it."""
    return resolve_module(str(ENV_DIR))


@pytest.fixture(scope="module")
def env() -> Environment:
    return load_environment(str(ENV_DIR), PARAMS)


def make_episode(
    example: TaskExample, *texts: str | None, submission: Any = None, submitted: bool = False
) -> tuple[Episode, EpisodeContext]:
    """A finished episode whose assistant turns said ``texts``."""
    turns = [
        Turn(
            number=i,
            action=Action(message=Message(role="assistant", content=text)),
            observations=[],
            calls=[],
            done=i == len(texts),
            truncated=False,
            duration_s=0.0,
        )
        for i, text in enumerate(texts, 1)
    ]
    episode = Episode(
        id="ep-1",
        environment_id="reasoning_gym",
        example=example,
        max_turns=max(1, len(texts)),
        turns=turns,
        done=True,
        status="done",
        final_response_text=texts[-1] if texts else None,
        submission=submission,
        submitted=submitted,
    )
    ctx = EpisodeContext(
        episode_id="ep-1", sandbox=None, seed=None, timeout_s=10.0, output_cap_bytes=65536
    )
    return episode, ctx


# --- dataset -------------------------------------------------------------------------------


def test_default_dataset(mod: ModuleType) -> None:
    env = load_environment(str(ENV_DIR))
    assert env.sandbox is None
    assert env.tool_schemas() == []
    assert env.max_turns == 1
    assert len(env.examples) == 50 * len(mod.DEFAULT_TASKS)
    assert [e.metadata["task"] for e in env.examples[: len(mod.DEFAULT_TASKS)]] == list(
        mod.DEFAULT_TASKS
    )


def test_dataset_is_the_packages_interleaved(env: Environment) -> None:
    assert len(env.examples) == 12
    for i, example in enumerate(env.examples):
        task, position = TASKS[i % 3], i // 3
        entry = reasoning_gym.create_dataset(task, size=4, seed=7)[position]
        assert example.index == i
        assert example.metadata["task"] == task
        assert example.metadata["entry_index"] == position
        assert example.metadata["question"] == entry["question"]
        assert example.metadata["entry_metadata"] == json.loads(json.dumps(entry["metadata"]))
        assert example.output == entry["answer"]
        assert str(example.input).startswith(entry["question"].rstrip())
        assert "<answer></answer>" in str(example.input)
        json.dumps(example.raw)  # records are plain JSON


def test_dataset_is_deterministic_by_seed() -> None:
    def rows(params: dict[str, Any]) -> list[tuple[Any, Any]]:
        env = load_environment(str(ENV_DIR), params)
        return [(e.input, e.output) for e in env.examples]

    first = rows(PARAMS)
    assert rows(PARAMS) == first
    assert rows({**PARAMS, "seed": 8}) != first
    assert rows({**PARAMS, "size": 2}) == first[:6]


def test_single_task_name(mod: ModuleType) -> None:
    env = mod.load_environment(tasks="gcd", size=3)
    assert [e.metadata["task"] for e in env.examples] == ["gcd"] * 3


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"tasks": ["chain_sum", "no_such_task"]}, "unknown reasoning-gym tasks"),
        ({"tasks": ["chainsum"]}, "did you mean chain_sum"),
        ({"tasks": []}, "must not be empty"),
        ({"tasks": ["gcd", "gcd"]}, "duplicates"),
        ({"tasks": ["composite"], "allow_unaudited": True}, "cannot be built"),
        ({"tasks": ["gcd", "graph_color"]}, "not audited"),
        ({"size": 0}, "size"),
        ({"size": 10_001}, "size"),
        ({"size": 2.5}, "size"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"max_turns": 0}, "max_turns"),
        ({"call_timeout_s": 0}, "call_timeout_s"),
    ],
)
def test_invalid_params(mod: ModuleType, params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mod.load_environment(**params)
    with pytest.raises(InvalidArgumentError):
        load_environment(str(ENV_DIR), params)


def test_unknown_task_error_lists_valid_names(mod: ModuleType) -> None:
    with pytest.raises(ValueError, match="no_such_task") as caught:
        mod.load_environment(tasks=["no_such_task"])
    for name in ("basic_arithmetic", "chain_sum", "leg_counting", "sudoku"):
        assert name in str(caught.value)


def test_wrong_types_are_rejected(mod: ModuleType) -> None:
    with pytest.raises(TypeError):
        mod.load_environment(tasks=[1, 2])
    with pytest.raises(TypeError):
        mod.load_environment(use_tools="yes")
    with pytest.raises(TypeError):
        mod.load_environment(partial_credit=1)
    with pytest.raises(TypeError):
        mod.load_environment(allow_unaudited="yes")
    with pytest.raises(InvalidArgumentError):
        load_environment(str(ENV_DIR), {"difficulty": "hard"})


# --- grading without the engine ------------------------------------------------------------


async def test_gold_wrong_and_missing_answers(env: Environment) -> None:
    for example in env.examples:
        episode, ctx = make_episode(example, f"Sure.\n<answer>{example.output}</answer>")
        result = await env.score_episode(example, episode, ctx)
        assert result.score == 1.0, result.reason
        assert result.components == {"correctness": 1.0, "format": 1.0}

        episode, ctx = make_episode(example, "<answer>-1.5e9 is my guess</answer>")
        result = await env.score_episode(example, episode, ctx)
        assert result.score == 0.0
        assert result.components == {"correctness": 0.0, "format": 1.0}

        episode, ctx = make_episode(example, f"The answer is {example.output}.")
        result = await env.score_episode(example, episode, ctx)
        assert result.score == 0.0
        assert result.components == {"correctness": 0.0, "format": 0.0}
        assert "no answer" in result.reason


async def test_gold_actions_answer_in_tags_or_submit(env: Environment) -> None:
    """`env test` plays these turns: the gold in <answer> tags, or submitted with tools."""
    tools_env = load_environment(str(ENV_DIR), {**PARAMS, "use_tools": True, "max_turns": 3})
    for example in env.examples:
        gold = str(example.output)
        turns = env.gold_actions(example)  # type: ignore[attr-defined]
        assert [(m.role, m.content, m.tool_calls) for m in turns] == [
            ("assistant", f"<answer>{gold}</answer>", [])
        ]
        episode, ctx = make_episode(example, turns[0].content)
        assert (await env.score_episode(example, episode, ctx)).score == 1.0

        turns = tools_env.gold_actions(example)  # type: ignore[attr-defined]
        assert [(m.role, m.content) for m in turns] == [("assistant", None)]
        assert [(c.name, json.loads(c.arguments)) for c in turns[0].tool_calls] == [
            ("submit", {"answer": gold})
        ]
        episode, ctx = make_episode(example, None, submission=gold, submitted=True)
        assert (await tools_env.score_episode(example, episode, ctx)).score == 1.0


def test_rows_without_gold_have_no_gold_actions(mod: ModuleType) -> None:
    """Tasks whose checker verifies a solution have no gold output, so no gold turns either
    (`env test` fails their rows); none of them is a default task."""
    no_gold = load_environment(
        str(ENV_DIR), {"tasks": ["graph_color"], "size": 2, "allow_unaudited": True}
    )
    assert [e.output for e in no_gold.examples] == [None, None]
    assert [no_gold.gold_actions(e) for e in no_gold.examples] == [None, None]  # type: ignore[attr-defined]
    assert "graph_color" not in mod.DEFAULT_TASKS
    defaults = load_environment(str(ENV_DIR))
    assert all(e.output is not None for e in defaults.examples)


async def test_answer_after_think_block(env: Environment) -> None:
    example = env.examples[0]
    text = f"<think>maybe <answer>0</answer>?</think>\n<answer>{example.output}</answer>"
    episode, ctx = make_episode(example, text)
    assert (await env.score_episode(example, episode, ctx)).score == 1.0
    inside_only = f"<think><answer>{example.output}</answer></think> done"
    episode, ctx = make_episode(example, inside_only)
    assert (await env.score_episode(example, episode, ctx)).score == 0.0


async def test_checker_exception_scores_zero(mod: ModuleType) -> None:
    env = mod.load_environment(tasks=["prime_factorization"], size=1, allow_unaudited=True)
    example = env.examples[0]
    episode, ctx = make_episode(example, "<answer>not a number</answer>")
    result = await env.score_episode(example, episode, ctx)
    assert result.score == 0.0
    assert "checker rejected it" in result.reason
    assert result.metadata["errors"] == {}


async def test_partial_credit_only_when_asked_for(mod: ModuleType) -> None:
    # The package's default checker gives len(reference) / len(answer) when the answer
    # contains the reference: off by default, kept with partial_credit=True.
    answer_of = {False: 0.0, True: None}
    for partial in (False, True):
        env = mod.load_environment(tasks=["gcd"], size=1, partial_credit=partial)
        example = env.examples[0]
        answer = f"{example.output}{example.output}"
        episode, ctx = make_episode(example, f"<answer>{answer}</answer>")
        result = await env.score_episode(example, episode, ctx)
        expected = answer_of[partial]
        if expected is None:
            expected = len(str(example.output)) / len(answer)
        assert result.score == pytest.approx(expected), result.reason
        assert result.success is False
        if not partial:
            assert "partial credit is off" in result.reason


GUARDED = [
    "binary_matrix",
    "countdown",
    "intermediate_integration",
    "n_queens",
    "number_sorting",
    "polynomial_multiplication",
    "puzzle24",
    "simple_integration",
    "spiral_matrix",
    "string_insertion",
]


@pytest.fixture(scope="module")
def guarded_env(mod: ModuleType) -> Environment:
    env: Environment = mod.load_environment(tasks=GUARDED, size=8, seed=3, allow_unaudited=True)
    return env


async def test_guarded_tasks_accept_their_reference_answers(guarded_env: Environment) -> None:
    for example in guarded_env.examples:
        if example.output is None:
            continue
        episode, ctx = make_episode(example, f"<answer>{example.output}</answer>")
        result = await guarded_env.score_episode(example, episode, ctx)
        assert result.score == 1.0, (example.metadata["task"], example.output, result.reason)


@pytest.mark.parametrize(
    "payload",
    [
        "__import__('pathlib').Path({marker!r}).write_text('x')",
        "[open({marker!r}, 'w').write('x')]",
        "(lambda: __import__('pathlib').Path({marker!r}).touch())()",
        "exec(chr(95))",
    ],
)
async def test_model_written_code_never_runs_in_a_checker(
    guarded_env: Environment, tmp_path: Path, payload: str
) -> None:
    marker = tmp_path / "pwned"
    answer = payload.format(marker=str(marker))
    for example in guarded_env.examples[: len(GUARDED)]:
        episode, ctx = make_episode(example, f"<answer>{answer}</answer>")
        result = await guarded_env.score_episode(example, episode, ctx)
        assert result.score < 1.0
        assert not marker.exists(), example.metadata["task"]


async def test_huge_powers_are_refused_not_computed(guarded_env: Environment) -> None:
    example = next(e for e in guarded_env.examples if e.metadata["task"] == "puzzle24")
    for answer in ("9**9**9**9", "(999**999)**999", "2**(10**12)", "99999999999999**99"):
        episode, ctx = make_episode(example, f"<answer>{answer}</answer>")
        result = await guarded_env.score_episode(example, episode, ctx)
        assert result.score == 0.0
        assert "not checked" in result.reason


# --- inline examples -----------------------------------------------------------------------


async def test_inline_examples(env: Environment) -> None:
    ctx = EpisodeContext(episode_id="e", sandbox=None, seed=None, timeout_s=1, output_cap_bytes=256)
    inline = TaskExample(input="What is 2 + 3?", output="5", metadata={"task": "chain_sum"})
    messages = await env.start_episode(inline, ctx)
    assert messages[-1].content is not None
    assert messages[-1].content.startswith("What is 2 + 3?")
    assert "<answer></answer>" in messages[-1].content
    episode, ctx = make_episode(inline, "<answer>5</answer>")
    assert (await env.score_episode(inline, episode, ctx)).score == 1.0
    with pytest.raises(InvalidArgumentError, match=r"metadata\.task"):
        await env.start_episode(TaskExample(input="What is 2 + 3?", output="5"), ctx)
    with pytest.raises(InvalidArgumentError, match="evaluates the reference"):
        await env.start_episode(
            TaskExample(input="q", output="__import__('os')", metadata={"task": "number_sorting"}),
            ctx,
        )


# --- through the in-process client ---------------------------------------------------------


@pytest.fixture(scope="module")
async def client(owner: str, docker_client: docker.DockerClient) -> AsyncIterator[InProcessClient]:
    """An in-process runtime offering reasoning_gym, under an owner name of its own."""
    async with in_process_runtime(ENV_DIR, f"{owner}-reasoning-gym", docker_client) as runtime:
        yield runtime


async def play(client: InProcessClient, index: int, text: str, *, raw: bool = False) -> Scored:
    async with client.episode("reasoning_gym", params=PARAMS, example_index=index) as ep:
        assert ep.start.tools == []
        assert ep.start.max_episode_turns == 1
        assert [m.role for m in ep.start.messages] == ["user"]
        if raw:
            out = await ep.step(raw_text=text)
        else:
            out = await ep.step(Message(role="assistant", content=text))
        assert out.done
        assert not out.truncated
        assert out.observations == []
        with pytest.raises(FailedPreconditionError):
            await ep.step(Message(role="assistant", content="again"))
        return await ep.score()


async def test_scripted_model_gold_answer(client: InProcessClient, env: Environment) -> None:
    for index in (0, 1, 2):
        gold = env.examples[index].output
        scored = await play(client, index, f"Let me think.\n<answer>{gold}</answer>")
        reward = scored.reward
        assert reward.score == 1.0, reward.reason
        assert reward.success
        assert reward.components == {"correctness": 1.0, "format": 1.0}
        assert reward.metadata["metrics"] == ["format"]
        assert reward.metadata["per_turn_rewards"] == [1.0]
        assert reward.metadata["task"] == TASKS[index]
        assert reward.metadata["answer"] == gold
        assert scored.trajectory.status == "done"


async def test_scripted_model_wrong_answer(client: InProcessClient, env: Environment) -> None:
    gold = int(str(env.examples[0].output))
    scored = await play(client, 0, f"<answer>{gold + 1}</answer>")
    assert str(gold) not in str(gold + 1)
    assert scored.reward.score == 0.0
    assert not scored.reward.success
    assert scored.reward.components == {"correctness": 0.0, "format": 1.0}
    assert scored.reward.metadata["per_turn_rewards"] == [0.0]


async def test_scripted_model_without_tags(client: InProcessClient, env: Environment) -> None:
    scored = await play(client, 1, f"The answer is {env.examples[1].output}.")
    assert scored.reward.score == 0.0
    assert scored.reward.components == {"correctness": 0.0, "format": 0.0}


async def test_raw_text_is_not_parsed_for_tool_calls(
    client: InProcessClient, env: Environment
) -> None:
    gold = env.examples[2].output
    text = f'<tool_call>{{"name": "python", "arguments": {{}}}}</tool_call><answer>{gold}</answer>'
    scored = await play(client, 2, text, raw=True)
    assert scored.reward.score == 1.0
    message = scored.trajectory.turns[0].message
    assert message is not None
    assert message.tool_calls == []


async def test_stray_tool_calls_are_answered(client: InProcessClient, env: Environment) -> None:
    gold = env.examples[0].output
    message = Message(
        role="assistant",
        content=f"<answer>{gold}</answer>",
        tool_calls=[ToolCall(id="c1", name="python", arguments="{}")],
    )
    async with client.episode("reasoning_gym", params=PARAMS, example_index=0) as ep:
        out = await ep.step(message)
        assert out.done
        assert [(o.role, o.tool_call_id) for o in out.observations] == [("tool", "c1")]
        assert (await ep.score()).reward.score == 1.0


async def test_episodes_take_no_sandbox(
    client: InProcessClient, docker_client: docker.DockerClient, owner: str
) -> None:
    async with client.episode("reasoning_gym", params=PARAMS, example_index=3):
        assert await wait_until_gone(docker_client, f"{owner}-reasoning-gym", timeout_s=0.2) == []


async def test_use_tools_gold_actions_pass(client: InProcessClient, env: Environment) -> None:
    params = {**PARAMS, "use_tools": True, "max_turns": 3}
    tools_env = load_environment(str(ENV_DIR), params)
    for index in (0, 1, 2):
        async with client.episode("reasoning_gym", params=params, example_index=index) as ep:
            for message in tools_env.gold_actions(tools_env.examples[index]):  # type: ignore[attr-defined]
                assert (await ep.step(message)).done
            reward = (await ep.score()).reward
        assert reward.success, reward.reason
        assert reward.metadata["answer"] == env.examples[index].output


async def test_use_tools_python_then_submit(client: InProcessClient, env: Environment) -> None:
    example = env.examples[1]  # chain_sum
    expression = example.metadata["entry_metadata"]["expression"]
    params = {**PARAMS, "use_tools": True, "max_turns": 3}
    async with client.episode("reasoning_gym", params=params, example_index=1) as ep:
        assert [t.name for t in ep.start.tools] == ["python", "submit"]
        assert ep.start.messages[0].role == "system"
        code = json.dumps({"code": f"print({expression})"})
        out = await ep.step(
            Message(
                role="assistant",
                tool_calls=[ToolCall(id="c1", name="python", arguments=code)],
            )
        )
        assert not out.done
        value = (out.observations[0].content or "").strip()
        assert value == example.output
        out = await ep.step(
            Message(
                role="assistant",
                tool_calls=[
                    ToolCall(id="c2", name="submit", arguments=json.dumps({"answer": value}))
                ],
            )
        )
        assert out.done
        reward = (await ep.score()).reward
        assert reward.score == 1.0, reward.reason
        assert reward.components == {"correctness": 1.0, "format": 1.0}
        assert reward.metadata["per_turn_rewards"] == [0.0, 1.0]
