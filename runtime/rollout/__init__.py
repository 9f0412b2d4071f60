"""Rollouts against OpenAI-compatible model endpoints, and the eval built on them."""

from runtime.rollout.driver import RolloutDriver, RolloutResult, Timings, TurnStats
from runtime.rollout.endpoint import EndpointError, ModelClient, ModelEndpoint, ModelReply, Usage
from runtime.rollout.results import EvalMetadata, ResultsError, ResultsStore
from runtime.rollout.runner import EvalAborted, EvalOutcome, EvalPlan, run_eval
from runtime.rollout.summary import Summary, mean_ci95, pass_at_k, percentile, summarize

__all__ = [
    "EndpointError",
    "EvalAborted",
    "EvalMetadata",
    "EvalOutcome",
    "EvalPlan",
    "ModelClient",
    "ModelEndpoint",
    "ModelReply",
    "ResultsError",
    "ResultsStore",
    "RolloutDriver",
    "RolloutResult",
    "Summary",
    "Timings",
    "TurnStats",
    "Usage",
    "mean_ci95",
    "pass_at_k",
    "percentile",
    "run_eval",
    "summarize",
]
