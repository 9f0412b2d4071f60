"""`python -m runtime eval ENV`: evaluate a model served behind an OpenAI-compatible endpoint.

Runs ``-n`` examples x ``-r`` rollouts at ``-c`` concurrency against an episode server
(``--server``) or an in-process runtime, writes each finished rollout to ``results.jsonl`` at
once, resumes an interrupted run (``--resume DIR``), and prints a summary table. Errors a user
meets are one ``error:`` line on stderr; Ctrl-C keeps what finished and removes the sandboxes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shlex
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runtime.client.base import EpisodeClient
from runtime.client.in_process import InProcessClient
from runtime.client.models import EpisodeLimitsRequest
from runtime.episodes.limits import EngineLimits
from runtime.errors import NotFoundError, RuntimeServiceError
from runtime.rollout.driver import RolloutDriver
from runtime.rollout.endpoint import EndpointError, ModelEndpoint
from runtime.rollout.report import Reporter
from runtime.rollout.results import EvalMetadata, ResultsError, ResultsStore
from runtime.rollout.runner import EvalAborted, EvalPlan, run_eval
from runtime.rollout.summary import summarize
from runtime.sandbox.docker_backend import DockerBackend

PROG = "python -m runtime eval"


class EvalError(Exception):
    """A failure reported as one ``error:`` line."""


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, got {text!r}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The eval command's flags."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    p.add_argument(
        "env",
        metavar="ENV",
        help="environment: an id on --server, else a name in --env-dirs, a path or a module",
    )
    p.add_argument("--model", "-m", required=True, help="model name sent to the endpoint")
    p.add_argument(
        "--base-url",
        "-b",
        default="http://127.0.0.1:8000/v1",
        help="OpenAI-compatible API base URL (default: %(default)s)",
    )
    p.add_argument(
        "--api-key-var",
        "-k",
        default="OPENAI_API_KEY",
        help="environment variable holding the API key; unset sends 'EMPTY'",
    )
    p.add_argument(
        "-n",
        "--num-examples",
        type=int,
        default=5,
        help="first N examples of the dataset; -1 for all (default: 5)",
    )
    p.add_argument("-r", "--rollouts-per-example", type=_positive, default=3)
    p.add_argument("-c", "--max-concurrency", type=_positive, default=32)
    p.add_argument(
        "--sampling",
        "-S",
        type=_json_object,
        default={},
        help="JSON object of sampling arguments passed through, e.g. "
        '\'{"top_p": 0.95, "top_k": 20}\'',
    )
    p.add_argument("-t", "--temperature", type=float)
    p.add_argument("--max-tokens", type=_positive, help="per model call")
    p.add_argument(
        "--env-params",
        "-a",
        type=_json_object,
        default={},
        help="JSON object passed to the environment's load_environment()",
    )
    p.add_argument("--max-turns", type=_positive, help="per-episode turn limit")
    p.add_argument("--seed", type=int, help="base episode seed (rollout e,r gets seed+10000e+r)")
    p.add_argument("--server", metavar="HOST:PORT", help="episode server; in-process if unset")
    p.add_argument(
        "--env-dirs",
        nargs="+",
        type=Path,
        default=[Path("environments")],
        help="folders searched for ENV in-process (default: environments)",
    )
    p.add_argument(
        "--instance-name",
        default="eval",
        help="labels the in-process runtime's sandboxes (default: eval)",
    )
    p.add_argument(
        "--out", "-o", type=Path, help="results directory (default: results/<env>-<model>-<time>)"
    )
    p.add_argument("--resume", type=Path, metavar="DIR", help="continue the run kept in DIR")
    p.add_argument("--request-timeout", type=float, default=600.0, help="seconds per model call")
    p.add_argument("--max-retries", type=int, default=4, help="retries of 429/5xx/timeouts")
    return p


def _endpoint(args: argparse.Namespace, parser: argparse.ArgumentParser) -> ModelEndpoint:
    sampling = dict(args.sampling)
    if args.temperature is not None:
        sampling["temperature"] = args.temperature
    if args.max_tokens is not None:
        sampling["max_tokens"] = args.max_tokens
    try:
        return ModelEndpoint(
            model=args.model,
            base_url=args.base_url,
            api_key=os.environ.get(args.api_key_var) or "EMPTY",
            sampling=sampling,
            timeout_s=args.request_timeout,
            max_retries=args.max_retries,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        parser.error(f"{where}: {first['msg']}")


def _client(args: argparse.Namespace) -> EpisodeClient:
    if args.server:
        from runtime.client.grpc_client import GrpcClient

        return GrpcClient(args.server, timeout_s=60.0, step_timeout_s=3600.0, retries=3)
    try:
        return InProcessClient.for_environments(
            [args.env],
            search_dirs=args.env_dirs,
            instance_name=args.instance_name,
            limits=EngineLimits(max_live_episodes=max(256, args.max_concurrency)),
        )
    except (RuntimeServiceError, ValueError) as exc:
        raise EvalError(str(exc)) from None


def _default_out(env: str, model: str) -> Path:
    clean = [re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(v).name or v).strip("_") for v in (env, model)]
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path("results") / f"{clean[0]}-{clean[1]}-{stamp}"


def resume_command(argv: list[str], directory: Path) -> str:
    """The command line that continues this run."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--out", "-o", "--resume"):
            skip = True
            continue
        if arg.startswith(("--out=", "--resume=")):
            continue
        kept.append(arg)
    return shlex.join([*PROG.split(), *kept, "--resume", str(directory)])


async def _environment(client: EpisodeClient, args: argparse.Namespace) -> tuple[str, int]:
    """(environment id, dataset size), checking the environment, its params and the runtime."""
    env_id = args.env
    if isinstance(client, InProcessClient):
        if isinstance(client.engine.backend, DockerBackend):
            await client.engine.backend.ping()
        env_id = (await client.list_environments())[0].id
    try:
        described = await client.describe_environment(env_id, args.env_params)
    except NotFoundError as exc:
        raise EvalError(str(exc)) from None
    return described.id, described.dataset_size


async def _run(args: argparse.Namespace, endpoint: ModelEndpoint, rep: Reporter) -> int:
    client = _client(args)
    store: ResultsStore | None = None
    try:
        env_id, size = await _environment(client, args)
        if size < 1:
            raise EvalError(f"environment {env_id!r} has no dataset to evaluate")
        n = size if args.num_examples < 0 else min(args.num_examples, size)
        out: Path = args.resume or args.out or _default_out(args.env, args.model)
        metadata = EvalMetadata(
            environment=args.env,
            environment_id=env_id,
            params=args.env_params,
            model=args.model,
            base_url=args.base_url,
            sampling=endpoint.sampling,
            num_examples=n,
            rollouts_per_example=args.rollouts_per_example,
            max_turns=args.max_turns,
            seed=args.seed,
            server=args.server,
            version=_version(),
        )
        limits = EpisodeLimitsRequest(max_turns=args.max_turns) if args.max_turns else None
        async with RolloutDriver(client, endpoint, limits=limits) as driver:
            await driver.model.check()
            store = ResultsStore.open(out, metadata, resume=args.resume is not None)
            rep.directory = out
            plan = EvalPlan(
                environment_id=env_id,
                example_indices=range(n),
                rollouts_per_example=args.rollouts_per_example,
                params=args.env_params,
                max_concurrency=args.max_concurrency,
                seed=args.seed,
            )
            rep.start(len(plan.keys()), len(store.results))
            try:
                outcome = await run_eval(driver, plan, store, on_result=rep.advance)
            finally:
                rep.stop()
        summary = summarize(store.results.values(), k=args.rollouts_per_example)
        summary.failed = len(outcome.failed)
        store.write_summary(summary)
        store.finish("finished" if not outcome.failed else "incomplete")
        rep.summary(summary, metadata, outcome)
        return 0 if not outcome.failed else 1
    except BaseException as exc:
        if store is not None:
            interrupted = isinstance(exc, asyncio.CancelledError | KeyboardInterrupt)
            store.finish("interrupted" if interrupted else "failed")
        raise
    finally:
        await client.close()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("episode-runtime")
    except PackageNotFoundError:
        return ""


async def _main(args: argparse.Namespace, endpoint: ModelEndpoint, rep: Reporter) -> int:
    task = asyncio.current_task()
    if task is not None and threading.current_thread() is threading.main_thread():
        # SIGTERM stops like Ctrl-C (asyncio.run already turns SIGINT into a cancellation).
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await _run(args, endpoint, rep)


def main(argv: list[str]) -> int:
    """Run the eval command; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.num_examples == 0 or args.num_examples < -1:
            parser.error("-n/--num-examples must be -1 (all) or at least 1")
        if args.out and args.resume:
            parser.error("--out and --resume exclude each other: --resume DIR writes to DIR")
        endpoint = _endpoint(args, parser)
    except SystemExit as exc:  # bad flags: argparse printed usage and one error line
        return exc.code if isinstance(exc.code, int) else 2
    rep = Reporter()
    try:
        return asyncio.run(_main(args, endpoint, rep))
    except (KeyboardInterrupt, asyncio.CancelledError):
        rep.interrupted(resume_command(argv, rep.directory) if rep.directory else None)
        return 130
    except (EvalError, EvalAborted, EndpointError, ResultsError, RuntimeServiceError) as exc:
        rep.error(str(exc))
        return 1
