"""`python -m runtime eval ENV`: evaluate a model served behind an OpenAI-compatible endpoint.

Runs ``-n`` examples x ``-r`` rollouts at ``-c`` concurrency against an episode server
(``--server``) or an in-process runtime, writes each finished rollout to ``results.jsonl`` at
once, resumes an interrupted run (``--resume DIR``), and prints a summary table. Errors a user
meets are one ``error:`` line on stderr; Ctrl-C keeps what finished and removes the sandboxes.

In-process, the sandboxes carry an instance name of the run's own (``eval-<random>`` unless
``--instance-name`` says otherwise), recorded in the results directory. A run killed outright
(``kill -9``, a power cut) cannot remove its sandboxes; ``--resume`` removes them before it
starts any episode, by that name, so no other eval's or server's sandbox is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import threading
from pathlib import Path

from pydantic import ValidationError

from runtime.cli.argtypes import instance_name, json_object, positive
from runtime.client.base import EpisodeClient
from runtime.client.in_process import InProcessClient
from runtime.client.models import EpisodeLimitsRequest
from runtime.episodes.limits import EngineLimits
from runtime.errors import NotFoundError, RuntimeServiceError
from runtime.rollout.driver import RolloutDriver
from runtime.rollout.endpoint import EndpointError, ModelEndpoint
from runtime.rollout.report import Reporter
from runtime.rollout.results import (
    EvalMetadata,
    ResultsError,
    ResultsStore,
    default_out,
    recorded_instance,
    resume_command,
)
from runtime.rollout.runner import EvalAborted, EvalPlan, run_eval
from runtime.rollout.summary import summarize
from runtime.sandbox.docker_backend import DockerBackend

PROG = "python -m runtime eval"


class EvalError(Exception):
    """A failure reported as one ``error:`` line."""


EPILOG = """examples:
  python -m runtime eval python_math --model Qwen/Qwen3-8B -n 20 -r 4 -t 0.7
  python -m runtime eval toy --server 127.0.0.1:50051 --model gpt-4.1-mini \\
      --base-url https://api.openai.com/v1 --sampling '{"top_p": 0.95}'
  python -m runtime eval python_math --model Qwen/Qwen3-8B --resume results/DIR
"""


def build_parser() -> argparse.ArgumentParser:
    """The eval command's flags."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Evaluate a model behind an OpenAI-compatible endpoint on an environment.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = p.add_argument
    add(
        "env",
        metavar="ENV",
        help="an environment id on --server; in-process, a name in --env-dirs, a path or a module",
    )
    add("-m", "--model", required=True, help="model name sent to the endpoint")
    add(
        "-b",
        "--base-url",
        default="http://127.0.0.1:8000/v1",
        metavar="URL",
        help="OpenAI-compatible API base URL (default: %(default)s)",
    )
    add(
        "-k",
        "--api-key-var",
        default="OPENAI_API_KEY",
        metavar="VAR",
        help="environment variable holding the API key; unset: 'EMPTY' (default: %(default)s)",
    )
    add(
        "-n",
        "--num-examples",
        type=int,
        default=5,
        metavar="N",
        help="the first N examples of the dataset; -1 for all (default: %(default)s)",
    )
    add(
        "-r",
        "--rollouts-per-example",
        type=positive,
        default=3,
        metavar="R",
        help="rollouts of each example (default: %(default)s)",
    )
    add(
        "-c",
        "--max-concurrency",
        type=positive,
        default=32,
        metavar="C",
        help="rollouts at once (default: %(default)s)",
    )
    add(
        "-S",
        "--sampling",
        type=json_object,
        default={},
        metavar="JSON",
        help='sampling arguments passed through, e.g. \'{"top_p": 0.95, "top_k": 20}\'',
    )
    add("-t", "--temperature", type=float, help="sampling temperature")
    add("--max-tokens", type=positive, metavar="N", help="completion tokens per model call")
    add(
        "-a",
        "--env-params",
        type=json_object,
        default={},
        metavar="JSON",
        help="arguments of the environment's load_environment()",
    )
    add("--max-turns", type=positive, metavar="N", help="per-episode turn limit")
    add("--seed", type=int, help="base episode seed: rollout (e, r) gets seed + 10000e + r")
    add("--server", metavar="HOST:PORT", help="episode server; an in-process runtime if unset")
    add(
        "--env-dirs",
        nargs="+",
        type=Path,
        default=[Path("environments")],
        metavar="DIR",
        help="in-process: folders searched for ENV (default: environments)",
    )
    add(
        "--instance-name",
        type=instance_name,
        metavar="NAME",
        help="in-process: owner label of the sandboxes (default: eval-<random>, a new one per "
        "run; --resume reuses the run's and first removes the sandboxes it left)",
    )
    add(
        "-o",
        "--out",
        type=Path,
        metavar="DIR",
        help="results directory (default: results/<env>-<model>-<time>)",
    )
    add("--resume", type=Path, metavar="DIR", help="continue the run whose results are in DIR")
    add(
        "--request-timeout",
        type=float,
        default=600.0,
        metavar="S",
        help="seconds per model request (default: %(default)s)",
    )
    add(
        "--max-retries",
        type=int,
        default=4,
        metavar="N",
        help="retries of a 429, 5xx, timeout or refused connection (default: %(default)s)",
    )
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


def _instance(args: argparse.Namespace) -> tuple[str, bool]:
    """The in-process instance name, and whether its leftover sandboxes are to be removed.

    Only a resume removes anything, and only under a name that is the run's: the one given, or
    the one the results directory recorded. Any other run gets a fresh name and removes nothing.
    """
    if args.resume is not None:
        name = args.instance_name or recorded_instance(args.resume)
        if name:
            return name, True
    return args.instance_name or f"eval-{secrets.token_hex(4)}", False


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


async def _environment(
    client: EpisodeClient, args: argparse.Namespace, rep: Reporter
) -> tuple[str, int]:
    """(environment id, dataset size), checking the environment, its params and the runtime.

    In-process, a resume first removes the sandboxes its instance left (a killed run's).
    """
    env_id = args.env
    if isinstance(client, InProcessClient):
        backend = client.engine.backend
        if isinstance(backend, DockerBackend):
            await backend.ping()
            if args.reap_instance:
                rep.removed_leftovers(backend.owner, await backend.remove_owned())
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
        env_id, size = await _environment(client, args, rep)
        if size < 1:
            raise EvalError(f"environment {env_id!r} has no dataset to evaluate")
        n = size if args.num_examples < 0 else min(args.num_examples, size)
        out: Path = args.resume or args.out or default_out(args.env, args.model)
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
            instance_name=None if args.server else args.instance_name,
        )
        limits = EpisodeLimitsRequest(max_turns=args.max_turns) if args.max_turns else None
        async with RolloutDriver(client, endpoint, limits=limits) as driver:
            try:
                await driver.model.check()
            except EndpointError as exc:
                unset = exc.kind == "endpoint_rejected" and not os.environ.get(args.api_key_var)
                hint = f" (no API key sent: {args.api_key_var} is not set)" if unset else ""
                raise EvalError(f"{exc}{hint}") from None
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
        args.instance_name, args.reap_instance = _instance(args)
        endpoint = _endpoint(args, parser)
    except SystemExit as exc:  # bad flags: argparse printed usage and one error line
        return exc.code if isinstance(exc.code, int) else 2
    rep = Reporter()
    try:
        return asyncio.run(_main(args, endpoint, rep))
    except (KeyboardInterrupt, asyncio.CancelledError):
        rep.interrupted(resume_command(PROG, argv, rep.directory) if rep.directory else None)
        return 130
    except (EvalError, EvalAborted, EndpointError, ResultsError, RuntimeServiceError) as exc:
        rep.error(str(exc))
        return 1
    except OSError as exc:  # e.g. the results disk is full
        rep.error(f"{type(exc).__name__}: {exc}")
        return 1
