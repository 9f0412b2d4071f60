"""Rows whose gold `output` is a tool-call trajectory (bash, read_file, submit), for `env sft`.

The file holds only the assistant messages (plus a stale tool message that must be ignored):
the tool results come from running the calls in the sandbox. With ``gold="hook"`` the rows'
``output`` is a mere task id and the optional `gold_actions` method supplies the same turns;
``hook_raises`` and ``hook_bad`` break that method.
"""

from __future__ import annotations

import json
from typing import Any

from runtime.env import Environment, Episode, EpisodeContext, Message, RewardResult, TaskExample

GOLD_MODES = ("output", "hook", "hook_raises", "hook_bad")

SYSTEM_PROMPT = "Do the task with the tools, then submit the file's content."


def _call(call_id: str, name: str, **arguments: Any) -> dict[str, Any]:
    function = {"name": name, "arguments": json.dumps(arguments)}
    return {"id": call_id, "type": "function", "function": function}


def _row(word: str) -> dict[str, Any]:
    return {
        "input": f"Write {word} to f.txt, read it back and submit it.",
        "output": [
            {
                "role": "assistant",
                "content": "Writing the file.",
                "tool_calls": [
                    _call("call_w", "bash", command=f"echo {word} > f.txt && wc -c < f.txt")
                ],
            },
            {"role": "tool", "tool_call_id": "call_w", "content": "NOT THE REAL OUTPUT"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [_call("call_r", "read_file", path="f.txt")],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [_call("call_s", "submit", answer=word)],
            },
        ],
        "metadata": {"answer": word},
    }


class TrajectoryGold(Environment):
    """bash + read_file + submit; reward 1 when the submission is `metadata.answer`."""

    system_prompt = SYSTEM_PROMPT
    tools = ("bash", "read_file", "submit")
    max_turns = 5
    dataset = [_row("hello"), _row("world")]
    gold = "output"

    async def gold_actions(self, example: TaskExample) -> list[Message] | None:
        """The gold turns, built from the answer, when ``gold`` says so."""
        if self.gold == "output":
            return None
        if self.gold == "hook_raises":
            raise KeyError("no gold for this row")
        if self.gold == "hook_bad":
            return "not a list"  # type: ignore[return-value]
        turns = _row(example.metadata["answer"])["output"]
        return [Message.model_validate(_flat(m)) for m in turns if m["role"] == "assistant"]

    async def score_episode(
        self, example: TaskExample, episode: Episode, ctx: EpisodeContext
    ) -> RewardResult:
        got = str(episode.submission).strip() if episode.submitted else None
        ok = got == example.metadata["answer"]
        return RewardResult(score=float(ok), reason=f"submitted {got!r}")


def _flat(message: dict[str, Any]) -> dict[str, Any]:
    calls = [
        {"id": c["id"], "name": c["function"]["name"], "arguments": c["function"]["arguments"]}
        for c in message.get("tool_calls", [])
    ]
    return {**message, "tool_calls": calls}


def load_environment(gold: str = "output") -> TrajectoryGold:
    if gold not in GOLD_MODES:
        raise ValueError(f"gold must be one of {GOLD_MODES}, got {gold!r}")
    env = TrajectoryGold()
    env.gold = gold
    if gold != "output":
        env.dataset = [{**row, "output": f"task-{i}"} for i, row in enumerate(env.dataset)]
    return env
