"""Runs an eval: every (example, rollout) not yet in the results store, at bounded concurrency.

Each rollout is written the moment it finishes. A rollout that fails is recorded and the others
go on, except when the failure would hit every rollout (endpoint unreachable, key or model
refused): then the eval stops with `EvalAborted`. Cancelling `run_eval` cancels the rollouts in
flight; each closes its episode (and sandbox) before the cancellation goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runtime.rollout.driver import RolloutDriver, RolloutResult
from runtime.rollout.results import ResultsStore

log = logging.getLogger(__name__)
FATAL_KINDS = frozenset({"endpoint_unreachable", "endpoint_rejected"})
"""Rollout error kinds that stop the whole eval: every other rollout would fail the same way."""
SEED_STRIDE = 10_000


class EvalAborted(Exception):
    """A failure that every rollout would meet; its text is one readable line."""


@dataclass(frozen=True)
class EvalPlan:
    """Which rollouts an eval consists of."""

    environment_id: str
    example_indices: Sequence[int]
    rollouts_per_example: int
    params: Mapping[str, Any] = field(default_factory=dict)
    max_concurrency: int = 32
    seed: int | None = None
    """Base seed: rollout (e, r) gets ``seed + 10000 * e + r``; None sends no seed."""

    def keys(self) -> list[tuple[int, int]]:
        """Every (example_index, rollout_index), example by example."""
        return [(e, r) for e in self.example_indices for r in range(self.rollouts_per_example)]

    def seed_of(self, example_index: int, rollout_index: int) -> int | None:
        """The episode seed of one rollout."""
        if self.seed is None:
            return None
        return self.seed + SEED_STRIDE * example_index + rollout_index


@dataclass
class EvalOutcome:
    """What one `run_eval` call did."""

    planned: int
    skipped: int
    """Already in the results store when the run began."""
    finished: list[RolloutResult] = field(default_factory=list)
    failed: list[RolloutResult] = field(default_factory=list)


async def _one(driver: RolloutDriver, plan: EvalPlan, key: tuple[int, int]) -> RolloutResult:
    example, rollout = key
    try:
        return await driver.run(
            plan.environment_id,
            example_index=example,
            rollout_index=rollout,
            params=plan.params,
            seed=plan.seed_of(example, rollout),
        )
    except Exception as exc:  # a bug somewhere below: record it, keep the eval going
        log.debug("rollout %s raised", key, exc_info=True)
        return RolloutResult(
            environment=plan.environment_id,
            example_index=example,
            rollout_index=rollout,
            seed=plan.seed_of(example, rollout),
            model=driver.endpoint.model,
            error=f"{type(exc).__name__}: {exc}",
            error_kind="internal_error",
        )


async def run_eval(
    driver: RolloutDriver,
    plan: EvalPlan,
    store: ResultsStore,
    *,
    on_result: Callable[[RolloutResult], None] | None = None,
) -> EvalOutcome:
    """Run the plan's rollouts missing from ``store``; returns what this call ran."""
    keys = plan.keys()
    pending = [key for key in keys if key not in store.results]
    outcome = EvalOutcome(planned=len(keys), skipped=len(keys) - len(pending))
    queue: Iterator[tuple[int, int]] = iter(pending)

    async def worker() -> None:
        for key in queue:
            result = await _one(driver, plan, key)
            store.add(result)
            (outcome.failed if result.error else outcome.finished).append(result)
            if on_result is not None:
                on_result(result)
            if result.error_kind in FATAL_KINDS:
                raise EvalAborted(result.error or "the model endpoint failed")

    workers = [
        asyncio.create_task(worker())
        for _ in range(max(1, min(plan.max_concurrency, len(pending))))
    ]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        # Every rollout closes its episode while it unwinds; wait for all of them.
        await asyncio.gather(*workers, return_exceptions=True)
    return outcome
