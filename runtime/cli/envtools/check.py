"""`python -m runtime env test ENV`: replay every row's gold output through a real episode."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from runtime.authoring.replay import RowResult
from runtime.cli.envtools.common import add_replay_flags

PROG = "python -m runtime env test"

DESCRIPTION = """\
Replay each dataset row's gold `output` through a real episode: a real sandbox, the
environment's own hooks and reward. A scalar output is played as a `submit` call (as the
message content when the environment has no `submit` tool), every turn until the episode ends;
a message-list output has its assistant messages played turn by turn, the tool results coming
from the sandbox. An environment whose `output` is no playable answer (a task id, say) may
define `gold_actions(example) -> list[Message] | None`: a list it returns is played instead.
A row FAILs when a hook raises, the reward is not finite, a reward function fails, a gold
tool call is broken (unknown tool, bad arguments, timeout, sandbox failure), or the reward is
not a success (score below the threshold).

Prints a table, then `overall: PASS` or `overall: FAIL` as the last line (--json: one JSON
document instead). Exit status: 0 PASS, 1 FAIL or error, 2 bad usage."""

EPILOG = """examples:
  python -m runtime env test python_math --limit 5
  python -m runtime env test environments/my_env --json
  python -m runtime env test python_math -a '{"families": ["modular"]}' -c 8
"""


def build_parser() -> argparse.ArgumentParser:
    """The flags of `env test`."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_replay_flags(parser, "env-test")
    parser.add_argument("--json", action="store_true", help="print a JSON document")
    return parser


def _number(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4g}"


def overall(results: list[RowResult]) -> str:
    """PASS when every row passed."""
    return "PASS" if results and all(r.passed for r in results) else "FAIL"


def report(env_id: str, params: dict[str, Any], results: list[RowResult]) -> dict[str, Any]:
    """The JSON document of `--json`."""
    passed = sum(r.passed for r in results)
    return {
        "environment": env_id,
        "params": params,
        "rows": [r.summary() for r in results],
        "passed": passed,
        "failed": len(results) - passed,
        "overall": overall(results),
    }


def print_table(env_id: str, results: list[RowResult]) -> None:
    """The per-row table, a count, and ``overall: PASS|FAIL`` as the last line."""
    out = Console(file=sys.stdout, width=max(Console(file=sys.stdout).width, 120))
    table = Table(title=escape(f"{env_id}: gold replay"), show_header=True)
    for name in ("row", "gold", "turns", "score", "threshold"):
        table.add_column(name, justify="right" if name != "gold" else "left")
    table.add_column("result")
    table.add_column("reason", overflow="fold")
    for r in results:
        verdict = "[green]PASS[/green]" if r.passed else "[red]FAIL[/red]"
        table.add_row(
            str(r.index),
            r.gold or "-",
            str(r.turns),
            _number(r.score),
            _number(r.threshold),
            verdict,
            escape(r.reason[:500]),
        )
    out.print(table)
    passed = sum(r.passed for r in results)
    out.print(f"{passed}/{len(results)} rows passed", markup=False)
    sys.stdout.flush()
    print(f"overall: {overall(results)}", flush=True)


def show(args: argparse.Namespace, env_id: str, results: list[RowResult]) -> int:
    """Print the outcome; the exit status."""
    if args.json:
        print(json.dumps(report(env_id, args.env_params, results), indent=2), flush=True)
    else:
        print_table(env_id, results)
    return 0 if overall(results) == "PASS" else 1
