"""The guess_number environment: games, guess parsing, dense rewards, and real episodes driven
by scripted players (binary search solves, wrong guesses run out) through the in-process client.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import docker
import pytest
from conftest import in_process_runtime, leftover_containers

from runtime.client.in_process import InProcessClient
from runtime.client.models import Scored
from runtime.env import EpisodeContext, Message, TaskExample, ToolCall
from runtime.env.loader import load_environment, resolve_module
from runtime.errors import InvalidArgumentError

REPO = Path(__file__).resolve().parents[1]
ENV_DIR = REPO / "environments" / "guess_number"


@pytest.fixture(scope="module")
def mod() -> ModuleType:
    """The environment package, imported the way the loader imports it."""
    return resolve_module(str(ENV_DIR))


# --- games, parsing, rewards ---------------------------------------------------------------


def test_defaults() -> None:
    env = load_environment(str(ENV_DIR))
    assert env.id == "guess_number"
    assert env.tool_map == {}
    assert env.tool_schemas() == []
    assert env.sandbox is None
    assert env.max_turns == 8
    assert len(env.examples) == 50
    secrets = [e.output for e in env.examples]
    assert all(isinstance(s, int) and 1 <= s <= 100 for s in secrets)
    assert len(set(secrets)) > 25
    for game, example in enumerate(env.examples):
        assert example.metadata == {"game": game, "low": 1, "high": 100}
        assert "between 1 and 100" in example.input
        assert "8 guesses" in example.input
    # The prompt is the same for every game: nothing of the secret is in it.
    assert len({e.input for e in env.examples}) == 1


def test_games_are_seeded(mod: ModuleType) -> None:
    first = [e.output for e in load_environment(str(ENV_DIR)).examples]
    again = [e.output for e in load_environment(str(ENV_DIR), {"num_examples": 60}).examples]
    assert again[:50] == first
    assert first == [mod.secret_of_game(i, 1, 100) for i in range(50)]
    wide = load_environment(str(ENV_DIR), {"low": -50, "high": 5000, "num_examples": 20})
    assert all(-50 <= e.output <= 5000 for e in wide.examples)


@pytest.mark.parametrize(
    ("text", "guess"),
    [
        ("50", 50),
        ("My guess is 37.", 37),
        ("Between 1 and 100, I pick 64", 64),
        ("**42**", 42),
        ("-3", -3),
        ("1-100? then 7", 7),
        ("no idea", None),
        ("", None),
        (None, None),
        ("x5 is not a number", None),
        ("3.5", None),
        ("9" * 20, None),
    ],
)
def test_parse_guess(mod: ModuleType, text: str | None, guess: int | None) -> None:
    assert mod.parse_guess(text) == guess


def test_replay_rewards_information_gained(mod: ModuleType) -> None:
    outcomes = mod.replay([50, 75, None, 200, 60, 62], 62, 1, 100)
    assert [o.verdict for o in outcomes] == [
        "higher",
        "lower",
        "invalid",
        "out_of_range",
        "higher",
        "correct",
    ]
    scale = math.log2(100)
    assert outcomes[0].reward == pytest.approx(math.log2(100 / 50) / scale, abs=1e-6)
    assert outcomes[1].reward == pytest.approx(math.log2(50 / 24) / scale, abs=1e-6)
    assert outcomes[2].reward == outcomes[3].reward == 0.0
    assert outcomes[4].reward == pytest.approx(math.log2(24 / 14) / scale, abs=1e-6)
    assert outcomes[5].reward == 1.0
    # A guess that ignores earlier feedback gains nothing.
    assert mod.replay([50, 10], 80, 1, 100)[1].reward == 0.0
    assert mod.replay([50, 10, 90], 80, 1, 100)[2].verdict == "lower"


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"num_examples": 0}, "num_examples"),
        ({"num_examples": 10_001}, "num_examples"),
        ({"high": 1}, "high"),
        ({"low": 10, "high": 5}, "high"),
        ({"high": 10**10}, "high"),
        ({"max_turns": 0}, "max_turns"),
        ({"efficiency_weight": 1.5}, "efficiency_weight"),
        ({"efficiency_weight": -0.1}, "efficiency_weight"),
    ],
)
def test_invalid_params(mod: ModuleType, params: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        mod.load_environment(**params)
    with pytest.raises(InvalidArgumentError):
        load_environment(str(ENV_DIR), params)


def test_non_integer_params_are_rejected(mod: ModuleType) -> None:
    with pytest.raises(TypeError):
        mod.load_environment(num_examples=2.5)
    with pytest.raises(InvalidArgumentError):
        load_environment(str(ENV_DIR), {"max_turns": "8"})


async def test_inline_example_needs_a_secret_in_range() -> None:
    env = load_environment(str(ENV_DIR))
    ctx = EpisodeContext(episode_id="e", sandbox=None, seed=None, timeout_s=1, output_cap_bytes=256)
    for output in ("abc", 0, 101, None, True):
        with pytest.raises(InvalidArgumentError):
            await env.start_episode(TaskExample(input="guess", output=output), ctx)
    assert len(await env.start_episode(TaskExample(input="guess", output="42"), ctx)) == 1


# --- real episodes -----------------------------------------------------------------------------


def say(text: str) -> Message:
    return Message(role="assistant", content=text)


def expected_rewards(guesses: list[int], secret: int, low: int = 1, high: int = 100) -> list[float]:
    """The dense rewards, computed here independently of the environment's code."""
    rewards, lo, hi = [], low, high
    for guess in guesses:
        if guess == secret:
            rewards.append(1.0)
            break
        size = hi - lo + 1
        lo, hi = (max(lo, guess + 1), hi) if guess < secret else (lo, min(hi, guess - 1))
        rewards.append(math.log2(size / (hi - lo + 1)) / math.log2(high - low + 1))
    return rewards


@pytest.fixture(scope="module")
async def client(owner: str, docker_client: docker.DockerClient) -> AsyncIterator[InProcessClient]:
    """An in-process runtime offering guess_number, under an owner name of its own."""
    async with in_process_runtime(ENV_DIR, f"{owner}-guess-number", docker_client) as runtime:
        yield runtime


async def binary_search(
    client: InProcessClient, game: int, params: dict[str, Any] | None = None
) -> tuple[Scored, list[int], list[str]]:
    """Play game ``game`` by bisection, reading only the environment's replies."""
    guesses: list[int] = []
    replies: list[str] = []
    async with client.episode("guess_number", params=params, example_index=game) as ep:
        assert ep.start.tools == []
        assert [m.role for m in ep.start.messages] == ["user"]
        lo, hi = 1, 100
        while True:
            guess = (lo + hi) // 2
            guesses.append(guess)
            out = await ep.step(say(f"Let me think... my guess is {guess}"))
            assert [m.role for m in out.observations] == ["user"]
            reply = str(out.observations[0].content)
            replies.append(reply)
            if out.done:
                assert not out.truncated
                break
            if reply.startswith("Higher"):
                lo = guess + 1
            else:
                assert reply.startswith("Lower")
                hi = guess - 1
        return await ep.score(), guesses, replies


async def test_binary_search_solves_and_wrong_guesses_run_out(
    client: InProcessClient, owner: str, docker_client: docker.DockerClient
) -> None:
    env = load_environment(str(ENV_DIR))
    secret = env.examples[3].output
    solved, guesses, replies = await binary_search(client, 3)
    assert guesses[-1] == secret
    assert len(guesses) <= 7
    assert (
        replies[-1] == f"Correct! The number was {secret}; you found it in {len(guesses)} guesses."
    )
    assert solved.reward.score == 1.0
    assert solved.reward.success is True
    assert solved.reward.threshold == 1.0
    assert solved.reward.components == {
        "solved": 1.0,
        "efficiency": pytest.approx((8 - len(guesses) + 1) / 8),
    }
    per_turn = solved.reward.metadata["per_turn_rewards"]
    assert len(per_turn) == len(solved.trajectory.turns) == len(guesses)
    assert per_turn == pytest.approx(expected_rewards(guesses, secret), abs=1e-5)
    assert per_turn[-1] == 1.0
    assert solved.reward.metadata["guesses"] == guesses
    assert solved.trajectory.final_response_text == f"Let me think... my guess is {secret}"

    # A player that never listens: eight wrong guesses, then the episode is truncated.
    rng = random.Random(1)
    wrong = [g for g in rng.sample(range(1, 101), 20) if g != secret][:8]
    async with client.episode("guess_number", example_index=3) as ep:
        for number, guess in enumerate(wrong, 1):
            out = await ep.step(say(str(guess)))
            assert out.done is (number == 8)
            assert out.truncated is (number == 8)
        assert str(out.observations[0].content).endswith(f"No guesses left: it was {secret}.")
        failed = await ep.score()
    assert failed.reward.score == 0.0
    assert failed.reward.success is False
    assert failed.reward.reason == f"did not find {secret} in 8 guesses"
    assert failed.reward.components == {"solved": 0.0, "efficiency": 0.0}
    assert failed.trajectory.truncated
    per_turn = failed.reward.metadata["per_turn_rewards"]
    assert len(per_turn) == 8
    assert per_turn == pytest.approx(expected_rewards(wrong, secret), abs=1e-5)
    # No sandbox: nothing was ever created for this environment.
    assert leftover_containers(docker_client, f"{owner}-guess-number") == []


async def test_invalid_replies_and_tool_calls_count_as_turns(client: InProcessClient) -> None:
    env = load_environment(str(ENV_DIR))
    secret = env.examples[0].output
    call = ToolCall(id="c1", name="bash", arguments=json.dumps({"command": "echo hi"}))
    async with client.episode("guess_number", example_index=0) as ep:
        first = await ep.step(say("I am not sure yet."))
        assert str(first.observations[0].content).startswith("I found no number")
        second = await ep.step(Message(role="assistant", content="150", tool_calls=[call]))
        assert [m.role for m in second.observations] == ["tool", "user"]
        assert second.observations[0].tool_call_id == "c1"
        assert "no tools" in str(second.observations[0].content)
        assert str(second.observations[1].content).startswith("150 is not between 1 and 100")
        third = await ep.step(raw_text=f"<think>easy</think>{secret}")
        assert third.done
        scored = await ep.score()
    assert scored.reward.score == 1.0
    assert scored.reward.metadata["verdicts"] == ["invalid", "out_of_range", "correct"]
    assert scored.reward.metadata["per_turn_rewards"] == [0.0, 0.0, 1.0]


async def test_efficiency_weight_rewards_fewer_guesses(client: InProcessClient) -> None:
    params = {"efficiency_weight": 0.5}
    scored, guesses, _ = await binary_search(client, 7, params)
    efficiency = (8 - len(guesses) + 1) / 8
    assert scored.reward.score == pytest.approx(0.5 + 0.5 * efficiency, abs=1e-6)
    assert scored.reward.success is True
    assert scored.reward.threshold == pytest.approx(0.5 + 0.5 / 8)
    secret = load_environment(str(ENV_DIR)).examples[7].output
    async with client.episode("guess_number", params=params, example_index=7) as ep:
        await ep.step(say(str(secret)))
        lucky = await ep.score()
    assert lucky.reward.score == 1.0
    assert lucky.reward.score > scored.reward.score or len(guesses) == 1
