"""`Environment`: dataset + interaction + reward, written once for RL, SFT data and eval."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runtime.env.action_parser import ActionParser, parse_tool_call_blocks
from runtime.env.dataset import load_dataset
from runtime.env.rubric import Rubric
from runtime.env.types import (
    Action,
    Episode,
    EpisodeContext,
    RewardResult,
    StepResult,
    TaskExample,
)
from runtime.errors import InvalidArgumentError
from runtime.sandbox.spec import SandboxSpec
from runtime.tools.builtin import BUILTIN_TOOLS
from runtime.tools.context import ToolContext
from runtime.tools.executor import CallRecord, execute_call
from runtime.tools.messages import Message
from runtime.tools.schema import Tool, as_tool


class Environment:
    """Base class of every environment; subclass it and override attributes and hooks.

    The object is shared by every episode of the environment, so it holds no per-episode
    state: that lives in the `EpisodeContext` each hook receives.
    """

    id: str = ""
    """Stable identifier; the loader fills it from the reference it was loaded by if empty."""
    description: str = ""
    dataset: str | Path | Sequence[Mapping[str, Any]] | None = None
    """Records with `input`/`output`, or a JSONL path relative to the environment's module."""
    system_prompt: str | None = None
    tools: Sequence[Tool | Callable[..., Any] | str] = ()
    """Tools the model may call: `Tool` objects, typed callables, or built-in tool names."""
    sandbox: SandboxSpec | None = SandboxSpec()
    """The sandbox every episode gets, or None for an environment that needs none."""
    max_turns: int = 10
    """Default for `max_episode_turns`; 1 makes a single-turn environment."""
    action_parser: ActionParser = staticmethod(parse_tool_call_blocks)
    """Turns raw completion text into an assistant message with tool calls (used only when the
    environment has tools; see `parse_action`)."""
    rubric: Rubric | None = None
    """When set, the default `score_episode` scores with it instead of exact match."""

    @cached_property
    def source_dir(self) -> Path:
        """The folder of the module that defines this environment (datasets live there)."""
        module = sys.modules.get(type(self).__module__)
        path = getattr(module, "__file__", None) or inspect.getfile(type(self))
        return Path(path).resolve().parent

    @cached_property
    def examples(self) -> list[TaskExample]:
        """The dataset, loaded once."""
        return load_dataset(self.dataset, self.source_dir)

    @cached_property
    def tool_map(self) -> dict[str, Tool]:
        """Tools by name, built-in names resolved."""
        resolved: dict[str, Tool] = {}
        for item in self.tools:
            selected = BUILTIN_TOOLS[item] if isinstance(item, str) else as_tool(item)
            if selected.name in resolved:
                raise ValueError(f"two tools are named {selected.name!r}")
            resolved[selected.name] = selected
        return resolved

    def parse_action(self, text: str) -> Message:
        """A raw completion as an assistant message: parsed for tool calls by `action_parser`
        when the environment has tools, taken as plain text when it has none."""
        if not self.tool_map:
            return Message(role="assistant", content=text)
        return self.action_parser(text)

    def tool_schemas(self) -> list[dict[str, Any]]:
        """The tools in OpenAI `tools` format."""
        return [t.openai_schema() for t in self.tool_map.values()]

    def gold_actions(self, example: TaskExample) -> list[Message] | None:
        """The assistant turns that solve ``example``, for `env test` and SFT export; None
        means: play the dataset's gold `output` (a scalar answer or a message trajectory)."""
        return None

    def max_episode_turns(self, example: TaskExample) -> int:
        """How many turns an episode of ``example`` may take before it is truncated."""
        return self.max_turns

    async def start_episode(self, example: TaskExample, ctx: EpisodeContext) -> list[Message]:
        """The opening messages: the system prompt, then the example's input as the user turn."""
        messages: list[Message] = []
        if self.system_prompt:
            messages.append(Message(role="system", content=self.system_prompt))
        data = example.input
        if isinstance(data, list) and all(isinstance(m, Mapping) for m in data):
            for i, item in enumerate(data):
                try:
                    messages.append(Message.model_validate(item))
                except ValidationError as exc:
                    first = exc.errors()[0]
                    where = ".".join(str(p) for p in first["loc"])
                    raise InvalidArgumentError(
                        f"example input[{i}] is not a chat message: {where}: {first['msg']}"
                    ) from None
        elif isinstance(data, Mapping) and "prompt" in data:
            messages.append(Message(role="user", content=str(data["prompt"])))
        else:
            messages.append(Message(role="user", content=str(data)))
        return messages

    async def step_episode(
        self,
        example: TaskExample,
        messages: list[Message],
        action: Action,
        ctx: EpisodeContext,
    ) -> StepResult:
        """Default turn: run the action's tool calls; a reply without calls ends the episode."""
        if not action.message.tool_calls:
            return StepResult(done=True, final_response_text=action.message.content)
        return await self.run_tool_calls(action, ctx)

    async def run_tool_calls(self, action: Action, ctx: EpisodeContext) -> StepResult:
        """Execute the calls in order; after `submit` or a broken sandbox the rest are skipped."""
        observations: list[Message] = []
        records: list[CallRecord] = []
        ended_by: str | None = None
        for call in action.message.tool_calls:
            if ended_by is not None:
                observations.append(
                    Message(
                        role="tool",
                        content=f"not executed: the episode already ended ({ended_by})",
                        tool_call_id=call.id,
                        name=call.name,
                    )
                )
                records.append(CallRecord(call.id, call.name, None, 0.0, False, False, "skipped"))
                continue
            tool_ctx = ToolContext(
                sandbox=ctx.sandbox,
                scratch=ctx.scratch,
                timeout_s=ctx.call_timeout(),
                output_cap_bytes=ctx.output_cap_bytes,
            )
            message, record = await execute_call(call, self.tool_map, tool_ctx)
            observations.append(message)
            records.append(record)
            if tool_ctx.submitted:
                ctx.submission, ctx.submitted = tool_ctx.submission, True
            if record.ends_episode:
                ended_by = "answer submitted" if tool_ctx.submitted else "sandbox failure"
        return StepResult(
            done=ended_by is not None,
            messages=observations,
            calls=records,
            final_response_text=action.message.content,
        )

    async def score_episode(
        self, example: TaskExample, episode: Episode, ctx: EpisodeContext
    ) -> RewardResult:
        """Default reward: the `rubric` if set, else 1 when the submitted (or final) answer
        equals the reference output."""
        if self.rubric is not None:
            return await self.rubric.score(example, episode, ctx)
        answer = episode.submission if episode.submitted else episode.final_response_text
        if answer is None:
            return RewardResult(score=0.0, reason="no answer was given")
        expected = example.output
        ok = str(answer).strip() == str(expected).strip()
        return RewardResult(
            score=1.0 if ok else 0.0,
            reason="answer matches" if ok else f"expected {expected!r}, got {str(answer)[:200]!r}",
        )

    async def score_episodes(
        self,
        example: TaskExample,
        episodes: Sequence[Episode],
        ctxs: Sequence[EpisodeContext],
    ) -> list[RewardResult]:
        """Score a GRPO group of one example; the default scores each episode alone."""
        return [
            await self.score_episode(example, episode, ctx)
            for episode, ctx in zip(episodes, ctxs, strict=True)
        ]


def answer_tool_calls(action: Action, text: str) -> list[Message]:
    """One tool message with ``text`` for each call in ``action``, none of them run: how an
    environment without tools keeps the chat well-formed when a model calls one anyway."""
    return [
        Message(role="tool", content=text, tool_call_id=call.id, name=call.name)
        for call in action.message.tool_calls
    ]
