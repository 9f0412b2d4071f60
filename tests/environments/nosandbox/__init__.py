"""An environment with neither tools nor sandbox: StartEpisode costs no container, so tests can
start hundreds of episodes quickly (episode-id checks, load on the engine without Docker)."""

from __future__ import annotations

from runtime.env import Action, Environment, EpisodeContext, Message, StepResult, TaskExample


class NoSandbox(Environment):
    """Echoes each assistant message back as the user's reply; ends on "bye"."""

    tools = ()
    sandbox = None
    max_turns = 5
    dataset = [{"input": "Say something.", "output": "bye"}]

    async def step_episode(
        self, example: TaskExample, messages: list[Message], action: Action, ctx: EpisodeContext
    ) -> StepResult:
        text = (action.message.content or "").strip()
        if text == "bye":
            return StepResult(done=True, final_response_text=text)
        return StepResult(done=False, messages=[Message(role="user", content=f"you said: {text}")])


def load_environment() -> NoSandbox:
    return NoSandbox()
