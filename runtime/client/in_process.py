"""`InProcessClient`: the client interface over an `EpisodeEngine` in this process, no server.

For notebooks, tests and the eval command without `--server`. Results are the same models the
gRPC client returns, so code written against `EpisodeClient` runs on either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runtime.client.base import EpisodeClient
from runtime.client.models import (
    CallInfo,
    EnvironmentDescription,
    EpisodeLimitsRequest,
    EpisodeStart,
    Reward,
    Scored,
    StepOutput,
    ToolSpec,
    Trajectory,
    TurnRecord,
)
from runtime.env.types import Action, RewardResult, Turn
from runtime.episodes.engine import EpisodeEngine, ExampleRef
from runtime.episodes.limits import EngineLimits, EpisodeLimits
from runtime.episodes.record import EpisodeRecord
from runtime.episodes.registry import EnvironmentInfo, EnvironmentRegistry
from runtime.sandbox.backend import SandboxBackend
from runtime.sandbox.docker_backend import DockerBackend
from runtime.tools.executor import CallRecord
from runtime.tools.messages import Message


def _tool(schema: dict[str, Any]) -> ToolSpec:
    function = schema.get("function", {})
    return ToolSpec(
        name=function.get("name", ""),
        description=function.get("description", ""),
        parameters=function.get("parameters", {}),
    )


def _description(info: EnvironmentInfo) -> EnvironmentDescription:
    return EnvironmentDescription(
        id=info.id,
        description=info.description,
        tools=[_tool(t) for t in info.tools],
        system_prompt=info.system_prompt,
        max_episode_turns=info.max_turns,
        dataset_size=info.dataset_size,
    )


def _call(record: CallRecord) -> CallInfo:
    return CallInfo(
        tool_call_id=record.tool_call_id,
        name=record.name,
        exit_code=record.exit_code,
        duration_s=record.duration_s,
        timed_out=record.timed_out,
        output_truncated=record.output_truncated,
        error=record.error,
    )


def _reward(result: RewardResult) -> Reward:
    return Reward(
        score=result.score,
        threshold=result.threshold,
        success=bool(result.success),
        reason=result.reason,
        components=dict(result.components),
        metadata=dict(result.metadata),
    )


def _turn(turn: Turn, text_replaced: bool) -> TurnRecord:
    return TurnRecord(
        number=turn.number,
        message=turn.action.message,
        raw_text=turn.action.raw_text,
        token_ids=list(turn.action.token_ids),
        logprobs=list(turn.action.logprobs),
        metadata=dict(turn.action.metadata),
        observations=list(turn.observations),
        calls=[_call(c) for c in turn.calls],
        done=turn.done,
        truncated=turn.truncated,
        duration_s=turn.duration_s,
        text_replaced=text_replaced,
    )


def _trajectory(record: EpisodeRecord) -> Trajectory:
    """The whole record: in process there is no message limit, so no pages."""
    episode = record.episode
    return Trajectory(
        episode_id=episode.id,
        environment_id=episode.environment_id,
        example_index=episode.example.index,
        messages=list(episode.messages),
        turns=[_turn(t, t.number in record.replaced_turns) for t in episode.turns],
        status=episode.status,
        done=episode.done,
        truncated=episode.truncated,
        max_episode_turns=episode.max_turns,
        error=episode.error,
        reward=_reward(episode.reward) if episode.reward is not None else None,
        submission=episode.submission,
        submitted=episode.submitted,
        final_response_text=episode.final_response_text,
        text_replaced=record.text_replaced,
    )


class InProcessClient(EpisodeClient):
    """The client API over an engine owned (or borrowed) by this object."""

    def __init__(self, engine: EpisodeEngine, *, owns_engine: bool = False) -> None:
        self.engine = engine
        self._owns_engine = owns_engine

    @classmethod
    def for_environments(
        cls,
        refs: Sequence[str],
        *,
        search_dirs: Sequence[Path] = (Path("environments"),),
        backend: SandboxBackend | None = None,
        limits: EngineLimits | None = None,
        instance_name: str = "in-process",
    ) -> InProcessClient:
        """An engine of its own over Docker, offering ``refs``; closed with the client."""
        import secrets

        registry = EnvironmentRegistry(refs, search_dirs)
        sandboxes = backend or DockerBackend(owner=instance_name, boot_id=secrets.token_hex(6))
        return cls(EpisodeEngine(registry, sandboxes, limits), owns_engine=True)

    async def list_environments(self) -> list[EnvironmentDescription]:
        """Every environment offered."""
        return [_description(info) for info in await self.engine.list_environments()]

    async def describe_environment(
        self, environment_id: str, params: Mapping[str, Any] | None = None
    ) -> EnvironmentDescription:
        """One environment, loaded with ``params``."""
        return _description(await self.engine.describe_environment(environment_id, params))

    async def start_episode(
        self,
        environment_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        example_index: int | None = None,
        inline_example: Mapping[str, Any] | None = None,
        seed: int | None = None,
        limits: EpisodeLimitsRequest | None = None,
    ) -> EpisodeStart:
        """Start an episode on the local engine."""
        started = await self.engine.start_episode(
            environment_id,
            params=params,
            example=ExampleRef(index=example_index, inline=inline_example),
            seed=seed,
            limits=EpisodeLimits(**limits.model_dump()) if limits else None,
        )
        return EpisodeStart(
            episode_id=started.episode_id,
            messages=started.messages,
            tools=[_tool(t) for t in started.tools],
            max_episode_turns=started.max_turns,
            example_index=started.example_index,
        )

    async def step_episode(
        self,
        episode_id: str,
        *,
        turn: int,
        message: Message | None = None,
        raw_text: str | None = None,
        token_ids: Sequence[int] = (),
        logprobs: Sequence[float] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> StepOutput:
        """Play one turn on the local engine."""
        action = Action(
            message=message or Message(role="assistant"),
            raw_text=raw_text,
            token_ids=list(token_ids),
            logprobs=list(logprobs),
            metadata=dict(metadata or {}),
        )
        outcome = await self.engine.step_episode(episode_id, action, expected_turn=turn or None)
        record = outcome.turn
        return StepOutput(
            observations=list(record.observations),
            done=record.done,
            truncated=record.truncated,
            turn=record.number,
            calls=[_call(c) for c in record.calls],
            replayed=outcome.replayed,
        )

    async def score_episode(self, episode_id: str) -> Scored:
        """Score the episode on the local engine."""
        reward, _ = await self.engine.score_episode(episode_id)
        return Scored(
            reward=_reward(reward), trajectory=_trajectory(self.engine.record(episode_id))
        )

    async def score_episodes(self, episode_ids: Sequence[str]) -> list[Reward]:
        """Score a GRPO group on the local engine."""
        return [_reward(r) for r in await self.engine.score_episodes(episode_ids)]

    async def get_trajectory(self, episode_id: str) -> Trajectory:
        """The episode's record."""
        return _trajectory(self.engine.record(episode_id))

    async def close_episode(self, episode_id: str) -> bool:
        """Close the episode and remove its sandbox."""
        return await self.engine.close_episode(episode_id)

    async def close(self) -> None:
        """Close every episode and the sandbox backend, if this client owns the engine."""
        if self._owns_engine:
            await self.engine.close()
            await self.engine.backend.close()
            self.engine.registry.close()
