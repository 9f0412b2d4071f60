"""Engine-wide caps and the per-episode limits a client may ask for within them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from runtime.errors import FailedPreconditionError, InvalidArgumentError
from runtime.sandbox.spec import SandboxSpec


@dataclass(frozen=True)
class EngineLimits:
    """Caps the engine enforces for every episode, whatever the client asks."""

    max_live_episodes: int = 256
    max_turns: int = 1000
    """No episode may run more turns than this, whatever its environment says."""
    max_call_timeout_s: float = 600.0
    max_output_cap_bytes: int = 1024 * 1024
    max_tool_calls_per_turn: int = 64
    idle_ttl_s: float = 1800.0
    """An episode with no activity for this long is closed by the reaper."""
    max_lifetime_s: float = 6 * 3600.0
    """An episode older than this is closed by the reaper, however active."""
    sandbox_isolation: Literal["runc", "gvisor"] | None = None
    """When set, every sandbox runs under this runtime, whatever its environment asks."""
    max_sandbox_memory_bytes: int = 4 * 1024**3
    max_sandbox_cpus: float = 4.0
    max_sandbox_pids: int = 4096
    closed_memory: int = 10_000
    """How many closed episode ids are remembered, to tell 'closed' from 'never existed'."""
    max_action_bytes: int = 2 * 1024 * 1024
    """What the record keeps of one action (message text, raw text, token ids at 10 bytes and
    logprobs at 8 bytes each, metadata JSON). The tools run the action as sent; its longest
    model-written texts are cut for the record, marked. Token ids, logprobs and metadata over
    half of it are refused with INVALID_ARGUMENT (the client's data, not the model's)."""
    max_turn_observation_bytes: int = 1024 * 1024
    """Bytes of text one turn's observations may hold together; beyond it they are cut (short
    ones kept whole, the rest shared evenly) and each cut one is marked."""
    max_episode_bytes: int = 16 * 1024 * 1024
    """Bytes of text an episode's record may hold (opening messages, actions, observations);
    the turn that reaches it is cut to fit and ends the episode as truncated. A record may
    exceed it by at most one action."""
    env_load_timeout_s: float = 60.0
    """Deadline of one `load_environment(**params)` (it runs on a worker thread, never on the
    event loop); past it the request fails with DEADLINE_EXCEEDED."""
    max_loaded_environments: int = 128
    """Distinct (environment, params) sets kept loaded; beyond it the least recently used
    non-default one is evicted (and loaded again when next asked for)."""
    max_parallel_env_loads: int = 2
    """Environment loads running at once (threads); more wait for a thread within their
    deadline, up to 16 per thread, and beyond that are RESOURCE_EXHAUSTED. A load past its
    deadline keeps its thread until it returns, so it still counts."""


def check_sandbox(spec: SandboxSpec, caps: EngineLimits, env_id: str) -> SandboxSpec:
    """The spec an episode really gets: the server's isolation, if it forces one; raises
    `FailedPreconditionError` when the environment asks for more than the server allows."""
    over = []
    if spec.memory_bytes > caps.max_sandbox_memory_bytes:
        over.append(f"memory {spec.memory} (cap {caps.max_sandbox_memory_bytes // 1024**2} MiB)")
    if spec.cpus > caps.max_sandbox_cpus:
        over.append(f"cpus {spec.cpus:g} (cap {caps.max_sandbox_cpus:g})")
    if spec.pids_limit > caps.max_sandbox_pids:
        over.append(f"pids {spec.pids_limit} (cap {caps.max_sandbox_pids})")
    if over:
        raise FailedPreconditionError(
            f"environment {env_id!r} asks for a sandbox above this server's caps: "
            + ", ".join(over)
        )
    if caps.sandbox_isolation is not None and spec.isolation != caps.sandbox_isolation:
        return spec.model_copy(update={"isolation": caps.sandbox_isolation})
    return spec


@dataclass(frozen=True)
class EpisodeLimits:
    """Optional per-episode overrides sent with `StartEpisode`; None keeps the default."""

    call_timeout_s: float | None = None
    max_turns: int | None = None
    output_cap_bytes: int | None = None

    def check(self, caps: EngineLimits) -> None:
        """Raise `InvalidArgumentError` for any value outside the server's caps."""
        if (
            self.call_timeout_s is not None
            and not 0 < self.call_timeout_s <= caps.max_call_timeout_s
        ):
            raise InvalidArgumentError(
                f"the per-call timeout must be in (0, {caps.max_call_timeout_s:g}] seconds, "
                f"got {self.call_timeout_s:g}"
            )
        if self.max_turns is not None and not 1 <= self.max_turns <= caps.max_turns:
            raise InvalidArgumentError(
                f"the turn limit must be in [1, {caps.max_turns}], got {self.max_turns}"
            )
        if self.output_cap_bytes is not None and not (
            256 <= self.output_cap_bytes <= caps.max_output_cap_bytes
        ):
            raise InvalidArgumentError(
                f"the output cap must be in [256, {caps.max_output_cap_bytes}] bytes, "
                f"got {self.output_cap_bytes}"
            )
