"""guess_number: a multi-turn game without tools or sandbox; the environment answers each turn.

The model guesses a secret whole number; `step_episode` replies "Higher." or "Lower." until the
guess is right or the guesses run out. It shows the interaction model where the environment,
not a tool, produces every observation. Rewards: 1 for finding the number, a dense per-turn
reward (the share of the remaining uncertainty a guess removed), and an optional efficiency
weight that makes fewer guesses score higher; see README.md.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from runtime.env import (
    Action,
    Environment,
    Episode,
    EpisodeContext,
    Message,
    RewardResult,
    StepResult,
    TaskExample,
    answer_tool_calls,
    params,
)
from runtime.errors import InvalidArgumentError

__all__ = [
    "GuessNumberEnv",
    "Outcome",
    "load_environment",
    "parse_guess",
    "replay",
    "secret_of_game",
]

PROMPT = """\
I am thinking of a whole number between {low} and {high} (both included). Find it! After \
each guess I tell you whether my number is higher or lower than your guess. You have \
{turns} guesses, one per reply. End each reply with the number you guess."""

_INTEGER = re.compile(r"(?<![\w.])-?\d{1,12}(?!\d|\.\d)")
"""An integer not glued to a word and not part of a decimal number; at most 12 digits."""


def secret_of_game(game: int, low: int, high: int) -> int:
    """The secret number of game ``game`` (depends only on its arguments)."""
    return random.Random(f"guess_number/{game}/{low}/{high}").randint(low, high)


def parse_guess(text: str | None) -> int | None:
    """The guess in a reply: its last integer (``"I'd say 42"`` -> 42), or None."""
    found = _INTEGER.findall(text or "")
    return int(found[-1]) if found else None


@dataclass(frozen=True)
class Outcome:
    """One turn of a game, replayed: the guess, the verdict and the turn's dense reward."""

    guess: int | None
    verdict: str
    """``correct``, ``higher``, ``lower``, ``invalid`` or ``out_of_range``."""
    reward: float
    low: int
    high: int
    """The interval the secret is known to be in after this turn's feedback."""


def replay(guesses: Sequence[int | None], secret: int, low: int, high: int) -> list[Outcome]:
    """Score each turn's guess: 1.0 for the right number; otherwise the information it gained,
    ``log2(before / after) / log2(high - low + 1)`` with before/after the sizes of the interval
    consistent with the feedback so far (0 for a guess outside it, or no valid guess)."""
    total = math.log2(high - low + 1) if high > low else 1.0
    lo, hi = low, high
    out: list[Outcome] = []
    for guess in guesses:
        if guess is None:
            out.append(Outcome(None, "invalid", 0.0, lo, hi))
            continue
        if not low <= guess <= high:
            out.append(Outcome(guess, "out_of_range", 0.0, lo, hi))
            continue
        if guess == secret:
            out.append(Outcome(guess, "correct", 1.0, secret, secret))
            break
        before = hi - lo + 1
        if guess < secret:
            lo, verdict = max(lo, guess + 1), "higher"
        else:
            hi, verdict = min(hi, guess - 1), "lower"
        gain = math.log2(before / (hi - lo + 1)) / total
        out.append(Outcome(guess, verdict, round(gain, 6), lo, hi))
    return out


class GuessNumberEnv(Environment):
    """Guess the number: no tools, no sandbox; `step_episode` answers every turn itself."""

    id = "guess_number"
    description = (
        "Multi-turn number guessing without tools: the environment answers each guess with "
        "higher/lower; reward 1 for finding the number, with dense per-turn rewards."
    )
    tools = ()
    sandbox = None

    def __init__(
        self,
        *,
        dataset: Sequence[dict[str, Any]],
        low: int,
        high: int,
        max_turns: int,
        efficiency_weight: float,
    ) -> None:
        self.dataset = dataset
        self.low = low
        self.high = high
        self.max_turns = max_turns
        self.efficiency_weight = efficiency_weight

    def secret(self, example: TaskExample) -> int:
        """The example's secret (its ``output``); a bad inline example is the client's error."""
        value = example.output
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgumentError(
                f"a guess_number example needs an integer output (the secret), got {value!r}"
            )
        if not self.low <= value <= self.high:
            raise InvalidArgumentError(
                f"the secret {value} is outside {self.low}..{self.high} (the params low/high)"
            )
        return value

    async def start_episode(self, example: TaskExample, ctx: EpisodeContext) -> list[Message]:
        """The rules and the range as the user's first message."""
        self.secret(example)
        return await super().start_episode(example, ctx)

    async def step_episode(
        self,
        example: TaskExample,
        messages: list[Message],
        action: Action,
        ctx: EpisodeContext,
    ) -> StepResult:
        """Answer the guess in the action's text; the game ends when it is right."""
        secret = self.secret(example)
        history = [m.content for m in messages if m.role == "assistant"]
        outcome = replay([parse_guess(text) for text in history], secret, self.low, self.high)
        turn, last = len(history), outcome[-1]
        observations = answer_tool_calls(
            action, "This game has no tools: write your guess as text."
        )
        if last.verdict == "correct":
            reply = f"Correct! The number was {secret}; you found it in {turn} guesses."
        else:
            left = self.max_turns - turn
            if last.verdict == "invalid":
                reply = (
                    "I found no number in your reply. End it with a whole number between "
                    f"{self.low} and {self.high}."
                )
            elif last.verdict == "out_of_range":
                reply = f"{last.guess} is not between {self.low} and {self.high}."
            else:
                reply = "Higher." if last.verdict == "higher" else "Lower."
            reply += f" {left} guesses left." if left > 0 else f" No guesses left: it was {secret}."
        observations.append(Message(role="user", content=reply))
        return StepResult(
            done=last.verdict == "correct",
            messages=observations,
            final_response_text=action.message.content,
            metadata={"guess": last.guess, "verdict": last.verdict},
        )

    async def score_episode(
        self, example: TaskExample, episode: Episode, ctx: EpisodeContext
    ) -> RewardResult:
        """1.0 for finding the number (see `efficiency_weight`), 0.0 otherwise; the per-turn
        rewards of `replay` go in ``metadata["per_turn_rewards"]``, one per assistant turn."""
        secret = self.secret(example)
        guesses = [parse_guess(turn.action.message.content) for turn in episode.turns]
        outcomes = replay(guesses, secret, self.low, self.high)
        solved = bool(outcomes) and outcomes[-1].verdict == "correct"
        used = len(outcomes)
        limit = max(episode.max_turns, 1)
        efficiency = (limit - used + 1) / limit if solved else 0.0
        weight = self.efficiency_weight
        score = ((1.0 - weight) + weight * efficiency) if solved else 0.0
        threshold = (1.0 - weight) + weight / limit
        if solved:
            reason = f"found {secret} in {used} guesses"
        elif not outcomes:
            reason = "no guess was made"
        else:
            reason = f"did not find {secret} in {used} guesses"
        per_turn = [o.reward for o in outcomes] + [0.0] * (len(episode.turns) - used)
        return RewardResult(
            score=round(score, 6),
            threshold=round(threshold, 6),
            success=solved,
            reason=reason,
            components={"solved": 1.0 if solved else 0.0, "efficiency": round(efficiency, 6)},
            metadata={
                "per_turn_rewards": per_turn,
                "secret": secret,
                "guesses": [o.guess for o in outcomes],
                "verdicts": [o.verdict for o in outcomes],
            },
        )


def load_environment(
    num_examples: int = 50,
    low: int = 1,
    high: int = 100,
    max_turns: int = 8,
    efficiency_weight: float = 0.0,
) -> GuessNumberEnv:
    """The guess_number environment.

    Args:
        num_examples: Number of games; game ``i`` has the secret `secret_of_game` (i, low, high).
        low: Smallest possible secret.
        high: Largest possible secret (above ``low``, at most 10**9).
        max_turns: Guesses (turns) before an episode is truncated.
        efficiency_weight: In [0, 1]: a solved game scores
            ``(1 - w) + w * (max_turns - guesses + 1) / max_turns``; 0 scores every solve 1.
    """
    params.integer("num_examples", num_examples, maximum=10_000)
    params.integer("low", low, minimum=-(10**9))
    params.integer("high", high, minimum=low + 1, maximum=10**9)
    params.integer("max_turns", max_turns)
    if (
        isinstance(efficiency_weight, bool)
        or not isinstance(efficiency_weight, int | float)
        or not 0.0 <= efficiency_weight <= 1.0
    ):
        raise ValueError(f"efficiency_weight must be in [0, 1], got {efficiency_weight!r}")
    prompt = PROMPT.format(low=low, high=high, turns=max_turns)
    dataset = [
        {
            "input": prompt,
            "output": secret_of_game(game, low, high),
            "metadata": {"game": game, "low": low, "high": high},
        }
        for game in range(num_examples)
    ]
    return GuessNumberEnv(
        dataset=dataset,
        low=low,
        high=high,
        max_turns=max_turns,
        efficiency_weight=float(efficiency_weight),
    )
