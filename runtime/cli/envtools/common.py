"""What `env test` and `env sft` share: their flags, and replaying rows on an in-process engine."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import threading
from pathlib import Path

from runtime.authoring.replay import RowResult, replay_rows
from runtime.cli.argtypes import json_object, positive
from runtime.client.in_process import InProcessClient
from runtime.episodes.limits import EngineLimits
from runtime.errors import RuntimeServiceError
from runtime.sandbox.docker_backend import DockerBackend


class CommandError(Exception):
    """A failure reported as one ``error:`` line (exit code 1)."""


def add_replay_flags(parser: argparse.ArgumentParser, instance: str) -> None:
    """ENV and the flags that choose rows, params and sandboxes."""
    add = parser.add_argument
    add("env", metavar="ENV", help="a name in --env-dirs, a path to a folder or .py, or a module")
    add("-n", "--limit", type=positive, metavar="N", help="only the first N rows (default: all)")
    add(
        "-c",
        "--concurrency",
        type=positive,
        default=4,
        metavar="N",
        help="episodes at once (default: %(default)s)",
    )
    add(
        "-a",
        "--env-params",
        type=json_object,
        default={},
        metavar="JSON",
        help="arguments of the environment's load_environment()",
    )
    add(
        "--env-dirs",
        nargs="+",
        type=Path,
        default=[Path("environments")],
        metavar="DIR",
        help="folders searched for ENV (default: environments)",
    )
    add(
        "--instance-name",
        default=instance,
        metavar="NAME",
        help="owner label of the sandboxes (default: %(default)s)",
    )
    add(
        "--sandbox-isolation",
        choices=("runc", "gvisor"),
        default=None,
        help="run every sandbox under this runtime, whatever the environment asks for",
    )


async def replay(args: argparse.Namespace) -> tuple[str, list[RowResult]]:
    """Load ENV in-process and replay the gold output of its first ``--limit`` rows."""
    try:
        client = InProcessClient.for_environments(
            [args.env],
            search_dirs=args.env_dirs,
            instance_name=args.instance_name,
            limits=EngineLimits(
                max_live_episodes=max(256, args.concurrency),
                sandbox_isolation=args.sandbox_isolation,
            ),
        )
    except (RuntimeServiceError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    try:
        env_id = (await client.list_environments())[0].id
        described = await client.describe_environment(env_id, args.env_params)
        if described.dataset_size < 1:
            raise CommandError(f"environment {env_id!r} has no dataset rows to replay")
        backend = client.engine.backend
        env = client.engine.registry.get(env_id, args.env_params)
        if env.sandbox is not None and isinstance(backend, DockerBackend):
            await backend.ping()
        count = min(args.limit or described.dataset_size, described.dataset_size)
        results = await replay_rows(
            client,
            env_id,
            range(count),
            params=args.env_params,
            concurrency=args.concurrency,
        )
        return env_id, results
    finally:
        await client.close()


async def replay_stoppable(args: argparse.Namespace) -> tuple[str, list[RowResult]]:
    """`replay`, stopped by SIGTERM as by Ctrl-C (the sandboxes are removed either way)."""
    task = asyncio.current_task()
    if task is not None and threading.current_thread() is threading.main_thread():
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await replay(args)
