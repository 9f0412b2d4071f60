"""`python -m runtime env SUBCOMMAND`: tools for writing environments (test, sft, init).

Errors a user meets are one ``error:`` line on stderr (exit 1); bad flags exit 2.
"""

from __future__ import annotations

import asyncio
import sys

from runtime.errors import RuntimeServiceError

USAGE = """usage: python -m runtime env SUBCOMMAND [options]

subcommands:
  test    replay every dataset row's gold output through real episodes; overall PASS/FAIL
  sft     write the gold outputs as chat examples (messages + tools) for SFT, one JSON line each
  init    scaffold a working environment (module, dataset, README, test) that passes `env test`

python -m runtime env SUBCOMMAND --help for each one's options.
"""


def _replay_command(name: str, argv: list[str]) -> int:
    from runtime.cli.envtools import check, export
    from runtime.cli.envtools.common import replay_stoppable

    parser = check.build_parser() if name == "test" else export.build_parser()
    args = parser.parse_args(argv)
    if name == "sft":
        export.check_out(args.out)
    env_id, results = asyncio.run(replay_stoppable(args))
    if name == "test":
        return check.show(args, env_id, results)
    return export.write(args, env_id, results)


def main(argv: list[str]) -> int:
    """Run an env subcommand; returns the exit code."""
    from runtime.cli.envtools.common import CommandError

    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in ("test", "sft", "init"):
        print(f"error: unknown env subcommand {name!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    try:
        if name == "init":
            from runtime.cli.envtools import scaffold

            return scaffold.run(scaffold.build_parser().parse_args(rest))
        return _replay_command(name, rest)
    except SystemExit as exc:  # bad flags: argparse printed usage and one error line
        return exc.code if isinstance(exc.code, int) else 2
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted: sandboxes removed", file=sys.stderr)
        return 130
    except (CommandError, RuntimeServiceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:  # e.g. a dataset file that does not load
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
