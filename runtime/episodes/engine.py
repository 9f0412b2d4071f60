"""The episode engine: turn accounting, trajectories, limits. Knows nothing of gRPC.

Usable in-process (tests, notebooks, the eval command without a server); the gRPC server is
a thin shell over it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import random
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from runtime.env.dataset import to_example
from runtime.env.environment import Environment
from runtime.env.types import (
    Action,
    Episode,
    EpisodeContext,
    RewardResult,
    StepResult,
    TaskExample,
    Turn,
)
from runtime.episodes.limits import EngineLimits, EpisodeLimits, check_sandbox
from runtime.episodes.record import (
    EpisodeRecord,
    RecordMeter,
    action_bytes,
    client_data_bytes,
    fit_action,
    fit_observations,
    message_bytes,
)
from runtime.episodes.registry import EnvironmentInfo, EnvironmentRegistry
from runtime.episodes.text import Scrubber
from runtime.errors import (
    EnvironmentHookError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    RuntimeServiceError,
    SandboxError,
    SandboxLostError,
    UnavailableError,
)
from runtime.sandbox.backend import Sandbox, SandboxBackend
from runtime.sandbox.spec import SandboxSpec
from runtime.tools.executor import CallRecord
from runtime.tools.messages import Message, ToolCall

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_ID_CHARS = 256
"""Tool names and call ids longer than this are cut: they are echoed in every answer."""


@dataclass(frozen=True)
class ExampleRef:
    """Which example to play: an index into the dataset, or an inline record."""

    index: int | None = None
    inline: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class StartedEpisode:
    """What `start_episode` returns to the caller."""

    episode_id: str
    messages: list[Message]
    tools: list[dict[str, Any]]
    max_turns: int
    example_index: int | None


@dataclass(frozen=True)
class StepOutcome:
    """One turn's result; `replayed` when it was already played and is returned from record."""

    turn: Turn
    replayed: bool = False


class HookAbortedError(EnvironmentHookError):
    """An environment hook raised a `BaseException` that is not an `Exception` (`SystemExit`,
    `KeyboardInterrupt`, `GeneratorExit`): the call fails, the episode is marked errored."""


@dataclass
class _Live:
    episode: Episode
    env: Environment
    ctx: EpisodeContext
    meter: RecordMeter = field(default_factory=RecordMeter)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_active: float = field(default_factory=time.monotonic)
    created: float = field(default_factory=time.monotonic)
    sandbox_lost: str | None = None
    """Why the episode's sandbox is gone, once it is (a tool call or a hook found it dead)."""


class EpisodeEngine:
    """Hosts live episodes: starts them with a sandbox, plays turns, scores, closes."""

    def __init__(
        self,
        registry: EnvironmentRegistry,
        backend: SandboxBackend,
        limits: EngineLimits | None = None,
    ) -> None:
        self.registry = registry
        self.backend = backend
        self.limits = limits or EngineLimits()
        registry.configure_loads(
            timeout_s=self.limits.env_load_timeout_s,
            max_loaded=self.limits.max_loaded_environments,
            max_parallel=self.limits.max_parallel_env_loads,
        )
        self._live: dict[str, _Live] = {}
        self._closed: OrderedDict[str, str] = OrderedDict()
        self._starting = 0
        self._accepting = True
        self._reaper: asyncio.Task[None] | None = None

    @property
    def live_count(self) -> int:
        """Episodes currently held (started and not closed)."""
        return len(self._live)

    async def list_environments(self) -> list[EnvironmentInfo]:
        """Every environment offered, described."""
        return [await self.describe_environment(env_id) for env_id in self.registry.ids]

    async def describe_environment(
        self, env_id: str, params: Mapping[str, Any] | None = None
    ) -> EnvironmentInfo:
        """One environment's tools, prompt, turn limit (within the engine's cap), dataset size.
        Loading it with new params runs off the event loop (see `EnvironmentRegistry.load`)."""
        params = Scrubber().value(dict(params)) if params is not None else None
        env = await self.registry.load(env_id, params)
        info = self._hooked_sync(env, "describe", lambda: self.registry.info(env_id, env))
        return dataclasses.replace(info, max_turns=min(info.max_turns, self.limits.max_turns))

    async def start_episode(
        self,
        env_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        example: ExampleRef | None = None,
        seed: int | None = None,
        limits: EpisodeLimits | None = None,
    ) -> StartedEpisode:
        """Create an episode with a fresh sandbox and return its opening messages."""
        if not self._accepting:
            raise UnavailableError("the server is shutting down and takes no new episodes")
        limits = limits or EpisodeLimits()
        limits.check(self.limits)
        # Client-written text may hold lone surrogates: kept as U+FFFD, and the record says so.
        scrub = Scrubber()
        params = scrub.value(dict(params)) if params is not None else None
        example = example or ExampleRef()
        if example.inline is not None:
            example = ExampleRef(index=example.index, inline=scrub.value(dict(example.inline)))
        if self.live_count + self._starting >= self.limits.max_live_episodes:
            raise ResourceExhaustedError(
                f"the server holds its maximum of {self.limits.max_live_episodes} live "
                "episodes; close finished episodes or retry later"
            )
        # The slot is held from here, through a slow load, until the episode exists or fails.
        self._starting += 1
        try:
            env = await self.registry.load(env_id, params)
            task = self._pick_example(env, example, seed)
            return await self._start(env, task, seed, limits, scrub)
        finally:
            self._starting -= 1

    async def _start(
        self,
        env: Environment,
        task: TaskExample,
        seed: int | None,
        limits: EpisodeLimits,
        scrub: Scrubber,
    ) -> StartedEpisode:
        episode_id = "ep_" + secrets.token_urlsafe(18)
        spec = check_sandbox(env.sandbox, self.limits, env.id) if env.sandbox else None
        timeout = limits.call_timeout_s or (spec.call_timeout_s if spec else 30.0)
        cap = limits.output_cap_bytes or (spec.output_cap_bytes if spec else 65536)
        if spec is not None and (spec.call_timeout_s != timeout or spec.output_cap_bytes != cap):
            spec = spec.model_copy(update={"call_timeout_s": timeout, "output_cap_bytes": cap})
        sandbox: Sandbox | None = None
        if spec is not None:
            sandbox = await self.backend.create(spec, episode_id=episode_id)
        try:
            ctx = EpisodeContext(
                episode_id=episode_id,
                sandbox=sandbox,
                seed=seed,
                timeout_s=timeout,
                output_cap_bytes=cap,
                rng=random.Random(seed),
                sandbox_factory=self._create_sandbox,
                spec=spec,
            )
            max_turns = await self._hook(
                env, "max_episode_turns", _ready(env.max_episode_turns, task)
            )
            if not isinstance(max_turns, int) or isinstance(max_turns, bool) or max_turns < 1:
                raise EnvironmentHookError(
                    f"environment {env.id!r}: max_episode_turns returned {max_turns!r}, "
                    "not a positive integer"
                )
            max_turns = min(max_turns, limits.max_turns or max_turns, self.limits.max_turns)
            ctx.max_turns = max_turns
            messages = await self._hook(env, "start_episode", env.start_episode(task, ctx))
            opening = scrub.messages(_checked_messages(env, "start_episode", messages))
            size = sum(message_bytes(m) for m in opening)
            if size > self.limits.max_episode_bytes:
                raise ResourceExhaustedError(
                    f"the opening messages hold {size} bytes; an episode's record may hold "
                    f"at most {self.limits.max_episode_bytes} (server setting max_episode_bytes)"
                )
        except BaseException:
            # Whatever failed (a hook, the caps, a cancellation), nothing of it is left.
            if sandbox is not None:
                await _quietly(sandbox.close())
            raise
        episode = Episode(
            id=episode_id,
            environment_id=env.id,
            example=task,
            max_turns=max_turns,
            messages=list(opening),
            seed=seed,
        )
        meter = RecordMeter(size=size, text_replaced=scrub.replaced)
        self._live[episode_id] = _Live(episode=episode, env=env, ctx=ctx, meter=meter)
        return StartedEpisode(
            episode_id=episode_id,
            messages=opening,
            tools=env.tool_schemas(),
            max_turns=max_turns,
            example_index=task.index,
        )

    async def _create_sandbox(self, spec: SandboxSpec, episode_id: str) -> Sandbox:
        return await self.backend.create(spec, episode_id=episode_id)

    async def step_episode(
        self,
        episode_id: str,
        action: Action,
        *,
        expected_turn: int | None = None,
        deadline: float | None = None,
    ) -> StepOutcome:
        """Play one turn. A retry of a turn already played returns its record, runs nothing."""
        live = self._get(episode_id)
        async with live.lock:
            live.last_active = time.monotonic()
            episode = live.episode
            played = episode.turn_count
            if expected_turn is not None and 1 <= expected_turn <= played:
                return StepOutcome(turn=episode.turns[expected_turn - 1], replayed=True)
            if episode.done:
                raise FailedPreconditionError(
                    f"episode {episode_id} is {episode.status} after turn {played}; "
                    "score or close it"
                )
            if expected_turn is not None and expected_turn != played + 1:
                raise FailedPreconditionError(
                    f"turn {expected_turn} was requested but the next turn of episode "
                    f"{episode_id} is {played + 1}"
                )
            scrub = Scrubber()
            action = self._normalise_action(live.env, action, scrub)
            client_data = client_data_bytes(action)
            if client_data > self.limits.max_action_bytes // 2:
                raise InvalidArgumentError(
                    f"the action's token ids, logprobs and metadata hold {client_data} bytes; "
                    f"at most {self.limits.max_action_bytes // 2} are accepted per turn (half "
                    "the server setting max_action_bytes)"
                )
            turn = await self._play(live, action, played + 1, deadline, scrub)
            live.last_active = time.monotonic()
            return StepOutcome(turn=turn)

    def _normalise_action(self, env: Environment, action: Action, scrub: Scrubber) -> Action:
        raw_text = scrub.optional(action.raw_text)
        message = scrub.message(action.message)
        if raw_text is not None and not message.tool_calls and not message.content:
            message = self._hooked_sync(env, "parse_action", lambda: env.parse_action(raw_text))
            if not isinstance(message, Message):
                raise EnvironmentHookError(
                    f"environment {env.id!r}: its action parser returned "
                    f"{type(message).__name__}, not a Message"
                )
            message = scrub.message(message)
        if message.role != "assistant":
            raise InvalidArgumentError(
                f"an action must be an assistant message, not {message.role!r}"
            )
        seen: set[str] = set()
        calls: list[ToolCall] = []
        for i, call in enumerate(message.tool_calls):
            # Missing or repeated ids are the model's slip, not the client's: made unique, so
            # each call still gets exactly one tool message to answer it.
            call_id = (call.id or f"call_{i}")[:MAX_ID_CHARS]
            while call_id in seen:
                call_id = f"{call_id}_{i}"
            seen.add(call_id)
            name = call.name[:MAX_ID_CHARS]
            if call_id != call.id or name != call.name:
                call = call.model_copy(update={"id": call_id, "name": name})
            calls.append(call)
        message = message.model_copy(update={"tool_calls": calls})
        return Action(
            message=message,
            raw_text=raw_text,
            token_ids=list(action.token_ids),
            logprobs=list(action.logprobs),
            metadata=scrub.value(dict(action.metadata)),
        )

    async def _play(
        self, live: _Live, action: Action, number: int, deadline: float | None, scrub: Scrubber
    ) -> Turn:
        episode, env, ctx = live.episode, live.env, live.ctx
        started = time.monotonic()
        ctx.deadline = deadline
        calls = action.message.tool_calls
        cap = self.limits.max_tool_calls_per_turn
        # Beyond the cap, calls are answered without running; the model reads why.
        to_run = action
        if len(calls) > cap:
            to_run = Action(
                message=action.message.model_copy(update={"tool_calls": calls[:cap]}),
                raw_text=action.raw_text,
            )
        history = [*episode.messages, action.message]
        try:
            result = await self._hook(
                env, "step_episode", env.step_episode(episode.example, history, to_run, ctx)
            )
        except EnvironmentHookError as exc:
            await self._fail(live, str(exc))
            raise
        except SandboxError as exc:
            raise await self._lost(live, exc, "the turn cannot be played") from exc
        if not isinstance(result, StepResult):
            message = f"environment {env.id!r}: step_episode returned {type(result).__name__}"
            await self._fail(live, message)
            raise EnvironmentHookError(message)
        try:
            observations = scrub.messages(
                _checked_messages(env, "step_episode", list(result.messages))
            )
        except EnvironmentHookError as exc:
            await self._fail(live, str(exc))
            raise
        records = list(result.calls)
        for call in calls[cap:]:
            observations.append(
                Message(
                    role="tool",
                    content=f"not executed: at most {cap} tool calls are run per turn",
                    tool_call_id=call.id,
                    name=call.name,
                )
            )
            records.append(CallRecord(call.id, call.name, None, 0.0, False, False, "skipped"))
        # The record is bounded: this turn's observations get what the turn and episode caps
        # leave after the action; a turn that fills the episode's record ends the episode.
        meter, caps = live.meter, self.limits
        # The tools ran the action as sent; the record keeps it within its cap, marked.
        action, _ = fit_action(action, caps.max_action_bytes)
        size = action_bytes(action)
        left = caps.max_episode_bytes - meter.size - size
        budget = max(0, min(caps.max_turn_observation_bytes, left))
        why = "" if budget == caps.max_turn_observation_bytes else "; the episode's record is full"
        fitted = fit_observations(observations, records, budget, why=why)
        observations, records = fitted.messages, fitted.calls
        record_full = (fitted.cut and budget < caps.max_turn_observation_bytes) or left <= 0
        meter.size += size + fitted.size
        sandbox_failed = any(r.error == "sandbox_error" for r in records)
        done = bool(result.done) or sandbox_failed
        truncated = not done and (number >= episode.max_turns or record_full)
        metadata = scrub.value(dict(result.metadata))
        final_text = scrub.optional(result.final_response_text)
        submission = scrub.value(ctx.submission)
        if scrub.replaced:
            meter.replaced_turns.add(number)
        turn = Turn(
            number=number,
            action=action,
            observations=observations,
            calls=records,
            done=done or truncated,
            truncated=truncated,
            duration_s=time.monotonic() - started,
            metadata=metadata,
        )
        # Each observation is held once: the turn and the message list share the objects.
        episode.turns.append(turn)
        episode.messages.extend([action.message, *observations])
        if final_text is not None:
            episode.final_response_text = final_text
        episode.submission, episode.submitted = submission, ctx.submitted
        if sandbox_failed:
            # A dead sandbox is removed at once; the record stays until CloseEpisode.
            if ctx.sandbox is not None:
                await _quietly(ctx.sandbox.close())
                ctx.sandbox = None
            episode.done, episode.status = True, "errored"
            episode.error = next(
                (
                    m.content
                    for m, r in zip(observations, records, strict=False)
                    if r.error == "sandbox_error"
                ),
                "the sandbox failed",
            )
            live.sandbox_lost = episode.error
        elif truncated:
            episode.done, episode.truncated, episode.status = True, True, "truncated"
            if record_full and number < episode.max_turns:
                episode.error = (
                    f"the episode's record reached its cap of {caps.max_episode_bytes} bytes "
                    "(server setting max_episode_bytes)"
                )
        elif done:
            episode.done, episode.status = True, "done"
        return turn

    async def score_episode(self, episode_id: str) -> tuple[RewardResult, Episode]:
        """Score what the episode holds so far; the trajectory is kept.

        A lost sandbox (dead container, broken agent channel) that the scoring needed is
        `SandboxLostError` (FAILED_PRECONDITION), never UNAVAILABLE: retrying cannot help.
        """
        live = self._get(episode_id)
        async with live.lock:
            reward = await self._scored(
                [live],
                "score_episode",
                live.env.score_episode(live.episode.example, live.episode, live.ctx),
            )
            checked = self._checked_reward(live, reward)
            live.episode.reward = checked
            return checked, live.episode

    async def _scored(self, group: list[_Live], hook: str, call: Awaitable[T]) -> T:
        """Run a scoring hook of ``group``'s environment, mapping its failures for the group."""
        env = group[0].env
        try:
            return await self._hook(env, hook, call)
        except SandboxError as exc:
            if len(group) == 1:
                raise await self._lost(group[0], exc, "it cannot be scored") from exc
            # Which member's sandbox died is not known here; none is marked for it.
            reason = Scrubber().text(str(exc))
            raise SandboxLostError(
                f"the group cannot be scored: a sandbox of its episodes was lost ({reason})"
            ) from exc
        except HookAbortedError as exc:
            for live in group:
                await self._fail(live, str(exc))
            raise
        except EnvironmentHookError as exc:
            lost = next((live for live in group if live.sandbox_lost is not None), None)
            if lost is not None:
                raise SandboxLostError(
                    f"episode {lost.episode.id} cannot be scored: its sandbox was lost "
                    f"({lost.sandbox_lost}); the scoring failed without it ({exc})"
                ) from exc
            raise

    async def _lost(self, live: _Live, exc: SandboxError, what: str) -> SandboxLostError:
        """Record that ``live``'s sandbox is gone (episode errored, sandbox removed)."""
        reason = Scrubber().text(str(exc))
        if live.sandbox_lost is None:
            live.sandbox_lost = reason
        await self._fail(live, f"the sandbox was lost: {reason}")
        return SandboxLostError(
            f"episode {live.episode.id}: {what}: its sandbox was lost ({reason})"
        )

    async def score_episodes(self, episode_ids: Sequence[str]) -> list[RewardResult]:
        """Score a GRPO group: episodes of one example of one environment, together."""
        if not episode_ids:
            raise InvalidArgumentError("episode_ids is empty")
        if len(set(episode_ids)) != len(episode_ids):
            raise InvalidArgumentError("episode_ids contains duplicates")
        group = [self._get(episode_id) for episode_id in episode_ids]
        first = group[0]
        for live in group[1:]:
            if live.env is not first.env or live.episode.example != first.episode.example:
                raise InvalidArgumentError(
                    "a group must hold episodes of the same example of the same environment "
                    "(with the same params)"
                )
        async with contextlib.AsyncExitStack() as stack:
            for live in sorted(group, key=lambda item: item.episode.id):
                await stack.enter_async_context(live.lock)
            rewards = await self._scored(
                group,
                "score_episodes",
                first.env.score_episodes(
                    first.episode.example,
                    [live.episode for live in group],
                    [live.ctx for live in group],
                ),
            )
            if not isinstance(rewards, list) or len(rewards) != len(group):
                raise EnvironmentHookError(
                    f"environment {first.env.id!r}: score_episodes must return one "
                    f"RewardResult per episode ({len(group)})"
                )
            checked = [self._checked_reward(first, reward) for reward in rewards]
            for live, reward in zip(group, checked, strict=True):
                live.episode.reward = reward
            return checked

    def get_trajectory(self, episode_id: str) -> Episode:
        """The episode's record so far."""
        return self._get(episode_id).episode

    def record(self, episode_id: str) -> EpisodeRecord:
        """The episode's record so far, with what the record says about its text."""
        live = self._get(episode_id)
        return EpisodeRecord(
            episode=live.episode,
            text_replaced=live.meter.text_replaced or bool(live.meter.replaced_turns),
            replaced_turns=frozenset(live.meter.replaced_turns),
        )

    async def close_episode(self, episode_id: str, *, reason: str = "closed") -> bool:
        """Remove the episode and its sandbox. Idempotent: True if this call closed it."""
        live = self._live.pop(episode_id, None)
        if live is None:
            if episode_id in self._closed:
                return False
            raise NotFoundError(f"unknown episode {episode_id!r}")
        self._remember_closed(episode_id, reason)
        live.episode.status = "closed" if not live.episode.done else live.episode.status
        if live.ctx.sandbox is not None:
            await _quietly(live.ctx.sandbox.close())
        return True

    def start_reaper(self, interval_s: float = 5.0) -> None:
        """Close idle and over-age episodes in the background (abandoned clients)."""
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_forever(interval_s), name="reaper")

    async def reap_expired(self) -> list[str]:
        """Close every episode idle past its TTL or older than the lifetime limit, now."""
        now = time.monotonic()
        expired: list[tuple[str, str]] = []
        for episode_id, live in list(self._live.items()):
            if live.lock.locked():
                continue  # a step is running: the episode is not idle
            if now - live.last_active > self.limits.idle_ttl_s:
                expired.append((episode_id, f"closed after {self.limits.idle_ttl_s:g} s idle"))
            elif now - live.created > self.limits.max_lifetime_s:
                expired.append(
                    (episode_id, f"closed at its {self.limits.max_lifetime_s:g} s lifetime limit")
                )
        for episode_id, reason in expired:
            log.info("reaping episode %s: %s", episode_id, reason)
            with contextlib.suppress(NotFoundError):
                await self.close_episode(episode_id, reason=reason)
        return [episode_id for episode_id, _ in expired]

    async def _reap_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.reap_expired()
            except Exception:
                log.exception("episode reaper failed; retrying")

    async def close(self) -> None:
        """Stop accepting episodes and close every live one (server shutdown)."""
        self._accepting = False
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        ids = list(self._live)
        await asyncio.gather(*(self.close_episode(i) for i in ids), return_exceptions=True)

    def _get(self, episode_id: str) -> _Live:
        live = self._live.get(episode_id)
        if live is not None:
            live.last_active = time.monotonic()
            return live
        reason = self._closed.get(episode_id)
        if reason is not None:
            raise FailedPreconditionError(f"episode {episode_id} was {reason}")
        raise NotFoundError(f"unknown episode {episode_id!r}")

    def _remember_closed(self, episode_id: str, reason: str) -> None:
        self._closed[episode_id] = reason
        while len(self._closed) > self.limits.closed_memory:
            self._closed.popitem(last=False)

    def _pick_example(self, env: Environment, ref: ExampleRef, seed: int | None) -> TaskExample:
        if ref.inline is not None:
            try:
                return to_example(ref.inline, None)
            except ValueError as exc:
                raise InvalidArgumentError(f"inline example: {exc}") from exc
        try:
            examples = env.examples
        except (OSError, ValueError) as exc:
            raise EnvironmentHookError(
                f"environment {env.id!r}: dataset failed to load: {exc}"
            ) from exc
        if not examples:
            raise InvalidArgumentError(
                f"environment {env.id!r} has no dataset; send an inline example"
            )
        index = ref.index
        if index is None:
            index = random.Random(seed).randrange(len(examples)) if seed is not None else 0
        if not 0 <= index < len(examples):
            raise InvalidArgumentError(
                f"example index {index} is out of range: environment {env.id!r} has "
                f"{len(examples)} examples (0..{len(examples) - 1})"
            )
        return examples[index]

    async def _fail(self, live: _Live, message: str) -> None:
        live.episode.done = True
        live.episode.status = "errored"
        live.episode.error = Scrubber().text(message)
        if live.ctx.sandbox is not None:
            await _quietly(live.ctx.sandbox.close())
            live.ctx.sandbox = None

    @staticmethod
    async def _hook(env: Environment, name: str, call: Awaitable[T]) -> T:
        """Await an environment hook; whatever it raises but our own errors and a real
        cancellation becomes `EnvironmentHookError` (INTERNAL), `SystemExit` included."""
        try:
            return await call
        except (RuntimeServiceError, asyncio.CancelledError):
            raise
        except BaseException as exc:
            raise _hook_failure(env, name, exc) from (exc if isinstance(exc, Exception) else None)

    @staticmethod
    def _hooked_sync(env: Environment, name: str, call: Callable[[], T]) -> T:
        """`_hook` for synchronous environment code (action parsers, descriptions)."""
        try:
            return call()
        except (RuntimeServiceError, asyncio.CancelledError):
            raise
        except BaseException as exc:
            raise _hook_failure(env, name, exc) from (exc if isinstance(exc, Exception) else None)

    def _checked_reward(self, live: _Live, reward: Any) -> RewardResult:
        """The reward after the checks, its text scrubbed (the record flags a replacement)."""
        checked = _checked_reward(live.env, reward)
        scrub = Scrubber()
        fixed = checked.model_copy(
            update={
                "reason": scrub.text(checked.reason),
                "metadata": scrub.value(checked.metadata),
                "components": scrub.value(checked.components),
            }
        )
        if scrub.replaced:
            live.meter.text_replaced = True
            return fixed
        return checked


async def _ready(fn: Any, *args: Any) -> Any:
    value = fn(*args)
    if asyncio.iscoroutine(value):
        return await value
    return value


async def _quietly(call: Awaitable[Any]) -> None:
    try:
        await call
    except Exception:
        log.warning("cleanup failed", exc_info=True)


def _checked_messages(env: Environment, hook: str, messages: Any) -> list[Message]:
    if not isinstance(messages, list) or not all(isinstance(m, Message) for m in messages):
        raise EnvironmentHookError(f"environment {env.id!r}: {hook} must return list[Message]")
    return messages


def _checked_reward(env: Environment, reward: Any) -> RewardResult:
    if not isinstance(reward, RewardResult):
        raise EnvironmentHookError(
            f"environment {env.id!r}: score_episode returned {type(reward).__name__}, "
            "not a RewardResult"
        )
    if not math.isfinite(reward.score):
        raise EnvironmentHookError(f"environment {env.id!r}: score is {reward.score}")
    return reward


def _hook_failure(env: Environment, name: str, exc: BaseException) -> RuntimeServiceError:
    """The error an environment hook's exception becomes. `SystemExit`, `KeyboardInterrupt` and
    `GeneratorExit` from environment code fail the call too, and the server goes on (a real
    Ctrl-C reaches the server as a signal, not from a hook)."""
    message = f"environment {env.id!r}: {name} raised {type(exc).__name__}: {exc}"
    if isinstance(exc, Exception):
        log.exception("environment %r: %s raised", env.id, name)
        return EnvironmentHookError(message)
    log.error("environment %r: %s raised %s", env.id, name, type(exc).__name__)
    return HookAbortedError(message)
