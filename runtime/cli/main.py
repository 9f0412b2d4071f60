"""`python -m runtime COMMAND`: the command-line entry point."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from pydantic import ValidationError

from runtime.errors import RuntimeServiceError

USAGE = """usage: python -m runtime COMMAND [options]

commands:
  serve     run the gRPC episode server (python -m runtime serve --help for its settings)
  eval      evaluate a model on an environment (python -m runtime eval --help)
  env       write environments: `env test` replays the gold outputs through real episodes,
            `env sft` exports them as chat examples, `env init` scaffolds a new one
            (python -m runtime env --help)
"""


def _serve(argv: list[str]) -> int:
    from runtime.server.app import serve
    from runtime.server.settings import ServerSettings

    try:
        settings = ServerSettings(_cli_parse_args=argv, _cli_prog_name="python -m runtime serve")  # type: ignore[call-arg]
    except ValidationError as exc:
        for error in exc.errors():
            where = "--" + "-".join(str(p) for p in error["loc"]).replace("_", "-")
            message = str(error["msg"]).removeprefix("Value error, ")
            print(
                f"error: {where}: {message}" if error["loc"] else f"error: {message}",
                file=sys.stderr,
            )
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(serve(settings))
    except RuntimeServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a subcommand; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m runtime", usage=USAGE, add_help=False)
    parser.add_argument("command", nargs="?")
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    command, rest = args[0], args[1:]
    if command == "serve":
        return _serve(rest)
    if command == "eval":
        from runtime.cli.eval import main as eval_main

        return eval_main(rest)
    if command == "env":
        from runtime.cli.envtools import main as env_main

        return env_main(rest)
    print(f"error: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2
