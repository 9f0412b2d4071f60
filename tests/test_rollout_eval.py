"""The rollout driver and `python -m runtime eval`, against a real OpenAI-compatible server.

The model is `scripted_openai.ScriptedOpenAI`: an HTTP server on a loopback port answering from
a script (tool calls, malformed tool-call arguments, a reply without tool calls, a 429 then
success, 500s). Episodes run in real Docker sandboxes, in-process or behind a real gRPC server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import signal
import sys
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import leftover_containers, wait_until_gone
from grpc_fixtures import TOY, running_server
from scripted_openai import Reply, Request, ScriptedOpenAI, call, completion, error

from runtime.cli.main import main
from runtime.client.grpc_client import GrpcClient
from runtime.client.in_process import InProcessClient
from runtime.client.models import Reward
from runtime.rollout import (
    EvalMetadata,
    EvalPlan,
    ModelEndpoint,
    ResultsError,
    ResultsStore,
    RolloutDriver,
    RolloutResult,
    Timings,
    mean_ci95,
    pass_at_k,
    run_eval,
    summarize,
)
from runtime.rollout.results import read_jsonl
from runtime.sandbox import labels
from runtime.server.app import RuntimeServer

REPO = Path(__file__).resolve().parents[1]
PYTHON_MATH = str(REPO / "environments" / "python_math")
SIX_TIMES_SEVEN, GREETING, ANYTHING = (
    "What is 6 * 7?",
    "Write hello to greeting.txt and submit its content.",
    "Say anything.",
)
MALFORMED = '{"path": "greeting.txt"'
FAST_RETRIES = {"retry_backoff_s": 0.01, "max_retries": 3}


# --- the scripted model ------------------------------------------------------------------------


class ToyScript:
    """Solves the toy environment's three examples; optionally slow, optionally failing.

    Example 0 calls python then submits what it printed; its very first request gets a 429
    (with Retry-After). Example 1 writes a file, reads it with malformed arguments, reads it
    again and submits; its very first request gets a 500. Example 2 answers in plain text.
    """

    def __init__(
        self, *, hiccups: bool = True, delay_s: float = 0.0, broken: set[str] | None = None
    ) -> None:
        self.hiccups = hiccups
        self.delay_s = delay_s
        self.broken = broken or set()
        self._seen: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Reply:
        prompt, turn = request.prompt, request.turn
        with self._lock:
            self._seen[(prompt, turn)] += 1
            first = self._seen[(prompt, turn)] == 1
        if prompt in self.broken:
            return error(500, "the GPU caught fire")
        if self.hiccups and first and turn == 1 and prompt == SIX_TIMES_SEVEN:
            return error(429, "slow down", headers={"retry-after-ms": "20"})
        if self.hiccups and first and turn == 1 and prompt == GREETING:
            return error(500, "internal hiccup")
        reply = self._solve(request)
        reply.delay_s = self.delay_s
        return reply

    @staticmethod
    def _solve(request: Request) -> Reply:
        prompt, turn = request.prompt, request.turn
        if prompt == SIX_TIMES_SEVEN:
            if turn == 1:
                return completion(request, calls=[call("python", {"code": "print(6 * 7)"})])
            answer = request.last_tool_output.strip()
            return completion(request, calls=[call("submit", {"answer": answer})])
        if prompt == GREETING:
            steps = [
                call("write_file", {"path": "greeting.txt", "content": "hello"}),
                call("read_file", MALFORMED),
                call("read_file", {"path": "greeting.txt"}),
                call("submit", {"answer": request.last_tool_output}),
            ]
            return completion(request, calls=[steps[min(turn, 4) - 1]])
        if prompt == ANYTHING:
            return completion(request, content="anything")
        return _solve_python_math(request)


def _python_math_answers() -> dict[str, str]:
    path = Path(PYTHON_MATH) / "data.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["input"]: r["output"] for r in records}


def _solve_python_math(request: Request) -> Reply:
    if request.turn == 1:
        return completion(request, calls=[call("python", {"code": "print('working')"})])
    answer = _python_math_answers()[request.prompt]
    return completion(request, calls=[call("submit", {"answer": answer})])


def first_turn_counts(server: ScriptedOpenAI) -> Counter[str]:
    """Successful first-turn requests per prompt: one per rollout started."""
    return Counter(r.prompt for r in server.completions() if r.turn == 1 and r.status == 200)


@contextlib.contextmanager
def model_server(script: Any) -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI(script) as server:
        yield server


def endpoint(server: ScriptedOpenAI, **overrides: Any) -> ModelEndpoint:
    values: dict[str, Any] = {"model": "scripted", "base_url": server.base_url, **FAST_RETRIES}
    values.update(overrides)
    return ModelEndpoint(**values)


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def local(owner: str, docker_client: docker.DockerClient) -> AsyncIterator[InProcessClient]:
    """An in-process runtime offering the toy environment, its sandboxes labelled apart."""
    name = f"{owner}-rollout"
    client = InProcessClient.for_environments([TOY], search_dirs=[], instance_name=name)
    try:
        yield client
    finally:
        await client.close()
        assert await wait_until_gone(docker_client, name) == []


@pytest.fixture(scope="module")
async def eval_server(
    owner: str, docker_client: docker.DockerClient
) -> AsyncIterator[RuntimeServer]:
    """A real gRPC server offering toy and python_math."""
    name = f"{owner}-evalsrv"
    async with running_server(name, environments=[TOY, PYTHON_MATH]) as server:
        yield server
    assert await wait_until_gone(docker_client, name) == []


async def cli(*argv: str) -> int:
    """`python -m runtime eval ...` in a worker thread (it runs its own event loop)."""
    return await asyncio.to_thread(main, ["eval", *argv])


async def eventually(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Wait until ``condition()`` holds; fail the test after ``timeout_s``."""
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"condition not met within {timeout_s} s")


def check_one_line_error(err: str, *fragments: str) -> None:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], err


# --- summary figures (no Docker) ---------------------------------------------------------------


def test_pass_at_k_matches_counting_subsets() -> None:
    for n, c, k in itertools.product(range(1, 7), range(7), range(1, 7)):
        if c > n or k > n:
            continue
        outcomes = [True] * c + [False] * (n - c)
        subsets = list(itertools.combinations(outcomes, k))
        assert math.isclose(pass_at_k(n, c, k), sum(any(s) for s in subsets) / len(subsets))


def test_summary_figures_on_a_known_set_of_rewards() -> None:
    successes = {0: [1, 1, 0, 0], 1: [1, 0, 0, 0], 2: [0, 0, 0, 0]}
    results = []
    for number, (example, rollout) in enumerate(itertools.product(range(3), range(4))):
        score = float(successes[example][rollout])
        results.append(
            RolloutResult(
                environment="toy",
                example_index=example,
                rollout_index=rollout,
                reward=Reward(score=score, threshold=1.0, success=score >= 1.0),
                turns=number % 3 + 1,
                truncated=number < 3,
                tool_calls=4,
                tool_errors=1 if number < 6 else 0,
                timings=Timings(total_s=float(number + 1)),
            )
        )
    results.append(RolloutResult(environment="toy", example_index=2, rollout_index=9, error="boom"))
    summary = summarize(results, k=4)
    assert (summary.rollouts, summary.failed, summary.examples) == (12, 1, 3)
    # Rewards: three 1s and nine 0s. Sample variance 2.25 / 11, t(0.975, 11) = 2.201.
    half = 2.201 * math.sqrt(2.25 / 11 / 12)
    assert math.isclose(summary.mean_reward, 0.25)
    assert math.isclose(summary.reward_ci95[0], 0.25 - half)
    assert math.isclose(summary.reward_ci95[1], 0.25 + half)
    assert math.isclose(summary.pass_at[1] or 0, (2 / 4 + 1 / 4 + 0) / 3)
    assert math.isclose(summary.pass_at[4] or 0, 2 / 3)
    assert summary.success_rate == 0.25
    assert math.isclose(summary.mean_turns, 2.0)
    assert math.isclose(summary.truncation_rate, 3 / 12)
    assert (summary.tool_calls, summary.tool_error_rate) == (48, 6 / 48)
    assert summary.latency_s == pytest.approx({"p50": 6.5, "p90": 10.9, "p99": 11.89})
    # pass@2 by hand: example 0: 1 - C(2,2)/C(4,2) = 5/6; example 1: 1 - C(3,2)/C(4,2) = 1/2.
    assert math.isclose(summarize(results, k=2).pass_at[2] or 0, (5 / 6 + 1 / 2 + 0) / 3)
    assert mean_ci95([2.0]) == (2.0, 2.0, 2.0)


def test_results_store_drops_a_torn_line_and_refuses_a_different_run(tmp_path: Path) -> None:
    meta = EvalMetadata(
        environment="toy", environment_id="toy", model="m", base_url="u",
        num_examples=2, rollouts_per_example=1,
    )  # fmt: skip
    store = ResultsStore.open(tmp_path, meta, resume=False)
    store.add(RolloutResult(environment="toy", example_index=0, rollout_index=0, reward=None))
    store.finish("interrupted")
    with (tmp_path / "results.jsonl").open("a") as handle:
        handle.write('{"environment": "toy", "example_ind')  # a crash mid-write
    with pytest.raises(ResultsError, match="already holds results"):
        ResultsStore.open(tmp_path, meta.model_copy(), resume=False)
    other = meta.model_copy(update={"model": "other", "params": {"max_turns": 2}})
    with pytest.raises(ResultsError, match="model: 'm' there, 'other' now"):
        ResultsStore.open(tmp_path, other, resume=True)
    resumed = ResultsStore.open(tmp_path, meta.model_copy(), resume=True)
    assert list(resumed.results) == [(0, 0)]
    assert (tmp_path / "results.jsonl").read_text().endswith("}\n")
    resumed.finish("finished")


# --- the driver --------------------------------------------------------------------------------


async def test_rollouts_in_process_keep_everything_the_endpoint_returns(
    local: InProcessClient,
) -> None:
    script = ToyScript()
    sampling = {"temperature": 0.3, "top_p": 0.9, "max_tokens": 256, "logprobs": True,
                "top_k": 5, "extra_body": {"return_token_ids": True}}  # fmt: skip
    with model_server(script) as server:
        async with RolloutDriver(local, endpoint(server, sampling=sampling)) as driver:
            results = await asyncio.gather(
                *(driver.run("toy", example_index=i, rollout_index=0, seed=i) for i in range(3))
            )
        requests = server.completions()

    # Sampling arguments pass through, unknown ones (top_k, return_token_ids) in the body.
    for request in requests:
        body = request.body
        assert (body["model"], body["temperature"], body["top_p"]) == ("scripted", 0.3, 0.9)
        assert (body["max_tokens"], body["logprobs"], body["top_k"]) == (256, True, 5)
        assert body["return_token_ids"] is True
        assert {t["function"]["name"] for t in body["tools"]} >= {"python", "submit", "bash"}
    # The 429 (Retry-After) and the 500 were retried: both rollouts still scored 1.
    assert sorted(r.status for r in requests if r.status != 200) == [429, 500]
    assert [r.reward.score if r.reward else None for r in results] == [1.0, 1.0, 1.0]
    assert [r.error for r in results] == [None, None, None]
    six, greeting, anything = results
    assert six.turn_stats[0].attempts == 2
    assert greeting.turn_stats[0].attempts == 2

    # Malformed arguments reach the server verbatim and come back as a tool message that the
    # model reads in its next request.
    assert greeting.turns == 4
    assert (greeting.tool_errors, greeting.tool_error_kinds) == (1, {"invalid_arguments": 1})
    trajectory = greeting.trajectory or {}
    assert trajectory["turns"][1]["message"]["tool_calls"][0]["arguments"] == MALFORMED
    turn3 = next(r for r in requests if r.prompt == GREETING and r.turn == 3)
    assert turn3.messages[-1]["role"] == "tool"
    assert "invalid arguments for tool 'read_file'" in turn3.messages[-1]["content"]

    # A reply without a tool call ends the episode; it is scored on that text.
    assert (anything.turns, anything.done, anything.truncated) == (1, True, False)
    assert anything.finish_reasons == {"stop": 1}
    assert (anything.trajectory or {})["final_response_text"] == "anything"

    # Per-turn timings, usage, finish reasons, token ids and logprobs are recorded.
    for result in results:
        assert result.timings.total_s >= result.timings.model_s + result.timings.tool_s > 0
        assert result.timings.start_s > 0
        assert result.usage.total_tokens == sum(t.usage.total_tokens for t in result.turn_stats)
        assert len(result.turn_stats) == result.turns
        for stats, turn in zip(result.turn_stats, (result.trajectory or {})["turns"], strict=True):
            assert stats.model_s > 0
            assert stats.tool_s > 0
            assert turn["metadata"]["finish_reason"] == stats.finish_reason
            assert turn["metadata"]["usage"] == stats.usage.model_dump()
            assert turn["token_ids"]
            assert len(turn["token_ids"]) == len(turn["logprobs"])
            assert turn["logprobs"][0] == -0.25
    assert six.finish_reasons == {"tool_calls": 2}
    assert (six.trajectory or {})["submission"] == "42"


async def test_a_failing_endpoint_fails_its_rollouts_and_resume_reruns_only_those(
    local: InProcessClient, tmp_path: Path
) -> None:
    meta = EvalMetadata(
        environment="toy", environment_id="toy", model="scripted", base_url="-",
        num_examples=3, rollouts_per_example=1,
    )  # fmt: skip
    plan = EvalPlan(environment_id="toy", example_indices=range(3), rollouts_per_example=1)
    with model_server(ToyScript(hiccups=False, broken={ANYTHING})) as server:
        async with RolloutDriver(local, endpoint(server, max_retries=1)) as driver:
            store = ResultsStore.open(tmp_path, meta, resume=False)
            outcome = await run_eval(driver, plan, store)
            store.finish("incomplete")
    assert [r.key for r in outcome.failed] == [(2, 0)]
    failed = outcome.failed[0]
    assert failed.error_kind == "endpoint_error"
    assert "answered 500 after 2 attempts: the GPU caught fire" in (failed.error or "")
    assert sorted(store.results) == [(0, 0), (1, 0)]
    assert [e["example_index"] for e in read_jsonl(tmp_path / "errors.jsonl")] == [2]

    with model_server(ToyScript(hiccups=False)) as server:
        async with RolloutDriver(local, endpoint(server)) as driver:
            store = ResultsStore.open(tmp_path, meta.model_copy(), resume=True)
            outcome = await run_eval(driver, plan, store)
            store.finish("finished")
        assert first_turn_counts(server) == {ANYTHING: 1}
    assert (outcome.skipped, len(outcome.finished), outcome.failed) == (2, 1, [])
    lines = read_jsonl(tmp_path / "results.jsonl")
    assert sorted((r["example_index"], r["rollout_index"]) for r in lines) == [
        (0, 0), (1, 0), (2, 0)
    ]  # fmt: skip


# --- the eval command --------------------------------------------------------------------------


def check_results_dir(directory: Path, n: int, r: int, **metadata: Any) -> list[dict[str, Any]]:
    lines = read_jsonl(directory / "results.jsonl")
    keys = [(line["example_index"], line["rollout_index"]) for line in lines]
    assert sorted(keys) == [(e, i) for e in range(n) for i in range(r)]
    for line in lines:
        assert line["error"] is None
        assert line["reward"]["score"] == 1.0
        assert line["trajectory"]["episode_id"].startswith("ep_")
        assert line["turns"] == len(line["turn_stats"]) == len(line["trajectory"]["turns"])
    meta = json.loads((directory / "metadata.json").read_text())
    for key, value in metadata.items():
        assert meta[key] == value, key
    assert (meta["num_examples"], meta["rollouts_per_example"]) == (n, r)
    assert meta["status"] == "finished"
    summary = json.loads((directory / "summary.json").read_text())
    assert (summary["rollouts"], summary["mean_reward"]) == (n * r, 1.0)
    return lines


async def test_eval_command_in_process(
    owner: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"{owner}-cli"
    out = tmp_path / "run"
    with model_server(ToyScript()) as server:
        code = await cli(
            TOY, "--model", "scripted", "--base-url", server.base_url, "-n", "3", "-r", "2",
            "-c", "4", "-t", "0.7", "--sampling", '{"top_k": 3}', "--env-params",
            '{"max_turns": 5}', "--seed", "7", "--instance-name", name, "--out", str(out),
        )  # fmt: skip
        requests = server.completions()
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert all(r.body["temperature"] == 0.7 and r.body["top_k"] == 3 for r in requests)
    lines = check_results_dir(
        out, 3, 2, environment=TOY, environment_id="toy", model="scripted",
        sampling={"top_k": 3, "temperature": 0.7}, params={"max_turns": 5}, seed=7, server=None,
    )  # fmt: skip
    assert {(line["example_index"], line["seed"]) for line in lines} >= {(0, 7), (1, 10007)}
    assert {line["trajectory"]["max_episode_turns"] for line in lines} == {5}
    for text in ("mean reward (95% CI)", "1.000 [1.000, 1.000]", "pass@1", "pass@2",
                 "mean turns", "truncation rate", "tool error rate", "p50/p90/p99"):  # fmt: skip
        assert text in captured.out
    assert "Traceback" not in captured.err
    assert await wait_until_gone(docker_client, name) == []


async def test_eval_command_over_grpc(
    eval_server: RuntimeServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCRIPTED_KEY", "sk-scripted")
    with ScriptedOpenAI(ToyScript(), api_key="sk-scripted") as server:
        toy_out, math_out = tmp_path / "toy", tmp_path / "math"
        base = ["--model", "scripted", "--base-url", server.base_url, "-k", "SCRIPTED_KEY"]
        base += ["--server"]
        code = await cli("toy", *base, eval_server.address, "-n", "3", "-r", "2",
                         "--out", str(toy_out))  # fmt: skip
        assert code == 0, capsys.readouterr().err
        code = await cli("python_math", *base, eval_server.address, "-n", "2", "-r", "1",
                         "--env-params", '{"num_examples": 5}', "--max-turns", "3",
                         "--out", str(math_out))  # fmt: skip
        assert code == 0, capsys.readouterr().err
    check_results_dir(toy_out, 3, 2, environment_id="toy", server=eval_server.address)
    lines = check_results_dir(math_out, 2, 1, environment_id="python_math")
    assert all(line["reward"]["components"] == {"correct": 1.0, "submitted": 1.0} for line in lines)
    assert {line["trajectory"]["max_episode_turns"] for line in lines} == {3}
    assert "pass@1" in capsys.readouterr().out
    assert eval_server.engine.live_count == 0


async def test_eval_command_errors_are_one_line(
    eval_server: RuntimeServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with model_server(ToyScript()) as server:
        model = ["--model", "scripted", "--base-url", server.base_url, "--out", str(tmp_path)]
        assert await cli("no_such_env", *model, "--env-dirs", str(tmp_path)) == 1
        check_one_line_error(capsys.readouterr().err, "'no_such_env' not found")

        assert await cli("nope", *model, "--server", eval_server.address) == 1
        check_one_line_error(capsys.readouterr().err, "unknown environment 'nope'", "toy")

        assert await cli("toy", *model, "--server", "127.0.0.1:9") == 1
        check_one_line_error(capsys.readouterr().err, "cannot reach the episode server")

        assert await cli(PYTHON_MATH, *model, "--env-params", '{"colour": 1}') == 1
        check_one_line_error(capsys.readouterr().err, "does not take these params")

    # A wrong key is refused before any episode starts; a model the endpoint does not know
    # stops the eval at the first rollout: every other one would fail the same way.
    monkeypatch.setenv("SCRIPTED_KEY", "sk-wrong")
    with ScriptedOpenAI(ToyScript(), api_key="sk-right") as server:
        argv = ["toy", "--model", "m", "-b", server.base_url, "-k", "SCRIPTED_KEY", "--server"]
        assert await cli(*argv, eval_server.address, "--out", str(tmp_path / "a")) == 1
        check_one_line_error(capsys.readouterr().err, "answered 401: Incorrect API key provided")
    with model_server(lambda request: error(404, "The model `m` does not exist.")) as server:
        argv = ["toy", "--model", "m", "-b", server.base_url, "--server", eval_server.address]
        assert await cli(*argv, "-n", "2", "-r", "2", "-c", "1", "--out", str(tmp_path / "b")) == 1
        check_one_line_error(capsys.readouterr().err, "answered 404: The model `m` does not")
        assert len(server.completions()) == 1
    assert json.loads((tmp_path / "b" / "metadata.json").read_text())["status"] == "failed"
    assert eval_server.engine.live_count == 0

    dead = ["--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--server"]
    assert await cli("toy", *dead, eval_server.address) == 1
    check_one_line_error(
        capsys.readouterr().err, "cannot reach the model endpoint at http://127.0.0.1:9/v1"
    )

    for bad in (["--sampling", "{not json"], ["-r", "0"], ["--sampling", '{"stream": true}']):
        assert await cli("toy", "--model", "m", *bad) == 2
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1].startswith("python -m runtime eval: error:"), err
        assert "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["b"]


@pytest.mark.parametrize("when", ["starting", "playing"])
@pytest.mark.parametrize("transport", ["in-process", "grpc"])
async def test_cancelling_an_eval_leaves_no_container(
    transport: str,
    when: str,
    owner: str,
    eval_server: RuntimeServer,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    if transport == "grpc":
        name, client = eval_server.settings.instance_name, GrpcClient(eval_server.address)
    else:
        name = f"{owner}-cancel"
        client = InProcessClient.for_environments([TOY], search_dirs=[], instance_name=name)
    meta = EvalMetadata(
        environment="toy", environment_id="toy", model="scripted", base_url="-",
        num_examples=3, rollouts_per_example=2,
    )  # fmt: skip
    plan = EvalPlan(environment_id="toy", example_indices=range(3), rollouts_per_example=2)
    with model_server(ToyScript(hiccups=False, delay_s=0.3)) as server:
        driver = RolloutDriver(client, endpoint(server))
        store = ResultsStore.open(tmp_path, meta, resume=False)
        task = asyncio.create_task(run_eval(driver, plan, store))
        # Cancel while episodes are still being started (the first rollout talks to the
        # model), or once every rollout has a sandbox and talks to the model.
        started = 1 if when == "starting" else 3
        await eventually(lambda: len({r.prompt for r in server.completions()}) >= started)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        store.finish("interrupted")
        await driver.close()
        await client.close()
    assert await wait_until_gone(docker_client, name) == []
    assert eval_server.engine.live_count == 0


async def test_ctrl_c_keeps_finished_rollouts_and_resume_runs_only_the_rest(
    owner: str, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    name, out = f"{owner}-sigint", tmp_path / "run"
    # A slow model: the run cannot finish between two finished rollouts and the signal, even
    # on a loaded machine.
    with model_server(ToyScript(hiccups=False, delay_s=1.5)) as server:
        argv = [TOY, "--model", "scripted", "--base-url", server.base_url, "-n", "3",
                "-r", "2", "-c", "2", "--instance-name", name]  # fmt: skip
        # SIGINT as a terminal would deliver it: a test run started in the background by a
        # non-interactive shell passes SIGINT down ignored, and Python keeps it that way.
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "runtime", "eval", *argv, "--out", str(out),
            cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        try:
            await eventually(lambda: len(read_jsonl(out / "results.jsonl")) >= 2, timeout_s=60)
            process.send_signal(signal.SIGINT)
            stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        finally:
            if process.returncode is None:
                process.kill()
    err = stderr.decode()
    assert process.returncode == 130, (err, stdout.decode()[-2000:])
    assert "Traceback" not in err
    assert f"--resume {out}" in err
    assert await wait_until_gone(docker_client, name) == []
    kept = {(r["example_index"], r["rollout_index"]) for r in read_jsonl(out / "results.jsonl")}
    assert 2 <= len(kept) < 6
    assert json.loads((out / "metadata.json").read_text())["status"] == "interrupted"

    with model_server(ToyScript(hiccups=False)) as server:
        argv[argv.index("--base-url") + 1] = server.base_url
        assert await cli(*argv, "--resume", str(out)) == 0
        started = first_turn_counts(server)
    lines = read_jsonl(out / "results.jsonl")
    keys = [(r["example_index"], r["rollout_index"]) for r in lines]
    assert sorted(keys) == [(e, i) for e in range(3) for i in range(2)]  # once each
    prompts = [SIX_TIMES_SEVEN, GREETING, ANYTHING]
    missing = Counter(prompts[e] for e, i in set(keys) - kept)
    assert started == missing  # the model saw no work for a rollout already kept
    meta = json.loads((out / "metadata.json").read_text())
    assert (meta["status"], len(meta["resumed_at"])) == ("finished", 1)
    assert await wait_until_gone(docker_client, name) == []


def start_bystander(client: docker.DockerClient, instance: str) -> str:
    """A running container labelled as a sandbox of another instance (another eval or server)."""
    container = client.containers.run(
        "runtime/python:latest",
        ["sleep", "infinity"],
        detach=True,
        labels=labels.container_labels(instance, "bystander", "bystander"),
        network_mode="none",
    )
    return str(container.id)


def remove_instance(client: docker.DockerClient, instance: str) -> None:
    for item in client.api.containers(all=True, filters=labels.owner_filter(instance)):
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_container(item["Id"], force=True)


async def test_resume_after_kill_9_removes_the_sandboxes_the_killed_run_left(
    owner: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`kill -9` of an in-process eval leaves its sandboxes; `--resume` removes them first, by
    the instance name the results directory recorded, and touches no other instance's."""
    name, bystander, out = f"{owner}-kill9", f"{owner}-bystander", tmp_path / "run"
    asked: list[str] = []
    release = threading.Event()

    def stuck(request: Request) -> Reply:  # every rollout waits on the model, sandbox held
        asked.append(request.prompt)
        release.wait(120)
        return error(503, "released")

    other = start_bystander(docker_client, bystander)
    try:
        with model_server(stuck) as server:
            argv = [TOY, "--model", "scripted", "--base-url", server.base_url, "-n", "2",
                    "-r", "1", "-c", "2"]  # fmt: skip
            with (tmp_path / "killed.log").open("wb") as log:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "runtime", "eval", *argv, "--instance-name", name,
                    "--out", str(out), cwd=REPO, stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL, stderr=log,
                )  # fmt: skip

            def holding_sandboxes() -> bool:
                if process.returncode is not None:
                    log_text = (tmp_path / "killed.log").read_text(errors="replace")
                    pytest.fail(f"the eval ended on its own:\n{log_text}")
                return len(asked) >= 2 and len(leftover_containers(docker_client, name)) == 2

            try:
                await eventually(holding_sandboxes, timeout_s=60)
                os.kill(process.pid, signal.SIGKILL)
                await asyncio.wait_for(process.wait(), 30)
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
                release.set()
        left = docker_client.api.containers(all=True, filters=labels.owner_filter(name))
        assert len(left) == 2, "kill -9 should leave the run's sandboxes behind"

        # The resume is told nothing but the directory: it finds the instance name there.
        with model_server(ToyScript(hiccups=False)) as server:
            argv[argv.index("--base-url") + 1] = server.base_url
            code = await cli(*argv, "--resume", str(out))
        err = capsys.readouterr().err
        assert code == 0, err
        assert f"removed 2 sandbox(es) left by an earlier run of instance {name}" in err
        for item in left:
            with pytest.raises(docker.errors.NotFound):
                docker_client.api.inspect_container(item["Id"])
        keys = sorted(
            (r["example_index"], r["rollout_index"]) for r in read_jsonl(out / "results.jsonl")
        )
        assert keys == [(0, 0), (1, 0)]
        assert json.loads((out / "metadata.json").read_text())["instance_name"] == name
        assert await wait_until_gone(docker_client, name) == []
        state = docker_client.api.inspect_container(other)["State"]
        assert state["Running"], "the resume removed another instance's sandbox"
    finally:
        remove_instance(docker_client, name)
        remove_instance(docker_client, bystander)
