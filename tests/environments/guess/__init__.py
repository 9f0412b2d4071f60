"""A multi-turn environment without tools or sandbox: it answers each guess itself."""

from __future__ import annotations

from runtime.env import (
    Action,
    Environment,
    Episode,
    EpisodeContext,
    Message,
    RewardResult,
    StepResult,
    TaskExample,
)


class Guess(Environment):
    """Guess the number; the environment says higher or lower."""

    system_prompt = "Guess the secret integer between 1 and 100. Reply with a number only."
    tools = ()
    sandbox = None
    max_turns = 7
    dataset = [{"input": "Start guessing.", "output": 37}, {"input": "Again.", "output": 80}]

    async def step_episode(
        self, example: TaskExample, messages: list[Message], action: Action, ctx: EpisodeContext
    ) -> StepResult:
        text = (action.message.content or "").strip()
        ctx.scratch["guesses"] = ctx.scratch.get("guesses", 0) + 1
        if not text.lstrip("-").isdigit():
            reply = "Please reply with a whole number."
        elif int(text) == example.output:
            return StepResult(done=True, final_response_text=text)
        else:
            reply = "higher" if int(text) < example.output else "lower"
        return StepResult(done=False, messages=[Message(role="user", content=reply)])

    async def score_episode(
        self, example: TaskExample, episode: Episode, ctx: EpisodeContext
    ) -> RewardResult:
        solved = episode.final_response_text == str(example.output)
        turns = episode.turn_count
        return RewardResult(
            score=1.0 / turns if solved else 0.0,
            threshold=0.0 if solved else 1.0,
            reason=f"solved in {turns} guesses" if solved else "not solved",
            components={"solved": float(solved), "guesses": float(ctx.scratch.get("guesses", 0))},
            metadata={"per_turn_rewards": [0.0] * (turns - 1) + [1.0 if solved else 0.0]},
        )


def load_environment() -> Guess:
    return Guess()
