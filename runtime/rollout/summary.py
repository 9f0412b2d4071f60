"""Summary figures of an evaluation: pure functions over numbers and rollout results.

- mean reward with a 95% Student-t interval over rollouts (independent draws assumed);
- pass@k with the unbiased estimator 1 - C(n-c, k) / C(n, k) per example (n rollouts, c of
  them successful), averaged over the examples that have at least k rollouts;
- mean turns, truncation rate (truncated / rollouts), tool error rate (tool errors / tool calls,
  see `driver.NOT_TOOL_ERRORS`), latency percentiles (linear interpolation).

Failed rollouts (an ``error``) are counted apart and enter no other figure.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, Field

from runtime.rollout.driver import RolloutResult

# Two-sided 95% Student-t quantiles t(0.975, df) for df = 1..30; 1.96 beyond.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def mean_ci95(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high) of a 95% t-interval; a single value has a zero-width interval."""
    n = len(values)
    if n == 0:
        return (math.nan, math.nan, math.nan)
    mean = math.fsum(values) / n
    if n == 1:
        return (mean, mean, mean)
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    quantile = _T975[n - 2] if n - 1 <= len(_T975) else 1.96
    half = quantile * math.sqrt(variance / n)
    return (mean, mean - half, mean + half)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one example: n samples, c correct (Chen et al., 2021)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def mean_pass_at_k(successes: Mapping[int, Sequence[bool]], k: int) -> float | None:
    """pass@k averaged over the examples with at least k rollouts; None if there are none."""
    scores = [
        pass_at_k(len(outcomes), sum(outcomes), k)
        for outcomes in successes.values()
        if len(outcomes) >= k
    ]
    return math.fsum(scores) / len(scores) if scores else None


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linearly interpolated like numpy's default."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


class Summary(BaseModel):
    """The figures printed at the end of an eval (and written to summary.json)."""

    rollouts: int = 0
    failed: int = 0
    examples: int = 0
    mean_reward: float = math.nan
    reward_ci95: tuple[float, float] = (math.nan, math.nan)
    success_rate: float = 0.0
    pass_at: dict[int, float | None] = Field(default_factory=dict)
    """pass@k by k (1 and the rollouts per example)."""
    mean_turns: float = 0.0
    truncation_rate: float = 0.0
    tool_calls: int = 0
    tool_error_rate: float = 0.0
    latency_s: dict[str, float] = Field(default_factory=dict)
    """Rollout wall time: p50, p90, p99."""
    model_call_s: dict[str, float] = Field(default_factory=dict)
    """One model call (retries included): p50, p90, p99."""
    prompt_tokens: int = 0
    completion_tokens: int = 0


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    return {f"p{q}": percentile(values, q) for q in (50, 90, 99)} if values else {}


def summarize(results: Iterable[RolloutResult], *, k: int = 1) -> Summary:
    """Every figure of `Summary` from rollout results; pass@1 and pass@k are reported."""
    done: list[RolloutResult] = []
    failed = 0
    for result in results:
        if result.error is None and result.reward is not None:
            done.append(result)
        else:
            failed += 1
    successes: dict[int, list[bool]] = defaultdict(list)
    for result in done:
        assert result.reward is not None
        successes[result.example_index].append(result.reward.success)
    rewards = [r.reward.score for r in done if r.reward is not None]
    mean, low, high = mean_ci95(rewards)
    tool_calls = sum(r.tool_calls for r in done)
    return Summary(
        rollouts=len(done),
        failed=failed,
        examples=len(successes),
        mean_reward=mean,
        reward_ci95=(low, high),
        success_rate=_rate(sum(sum(s) for s in successes.values()), len(done)),
        pass_at={kk: mean_pass_at_k(successes, kk) for kk in sorted({1, max(k, 1)})},
        mean_turns=math.fsum(r.turns for r in done) / len(done) if done else 0.0,
        truncation_rate=_rate(sum(r.truncated for r in done), len(done)),
        tool_calls=tool_calls,
        tool_error_rate=_rate(sum(r.tool_errors for r in done), tool_calls),
        latency_s=_percentiles([r.timings.total_s for r in done]),
        model_call_s=_percentiles([t.model_s for r in done for t in r.turn_stats]),
        prompt_tokens=sum(r.usage.prompt_tokens for r in done),
        completion_tokens=sum(r.usage.completion_tokens for r in done),
    )
