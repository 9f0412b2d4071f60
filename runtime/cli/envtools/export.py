"""`python -m runtime env sft ENV --out FILE.jsonl`: gold outputs as chat examples for SFT."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.authoring.replay import RowResult
from runtime.authoring.sft import sft_record, write_jsonl
from runtime.cli.envtools.common import CommandError, add_replay_flags

PROG = "python -m runtime env sft"

DESCRIPTION = """\
Write one chat example per dataset row, each a JSON line
  {"messages": [...], "tools": [...], "metadata": {"environment", "example_index", "score"}}
in the OpenAI chat format that SFT trainers load (a `messages` column and a `tools` column).

Every row's gold `output` is replayed in a real episode, as `env test` does: `messages` are the
environment's opening messages (system prompt and user turn), then the gold assistant turns
with the tool results produced by really running their calls in a sandbox. A scalar gold is
played as by `env test` (a `submit` call, or the answer as content without tools); an
environment's `gold_actions(example)`, when it returns messages, is played instead. Each
example ends with the last assistant message: what the environment answered after it (such as
submit's "answer submitted") is left out, so the training target ends with the assistant's
turn. Tool-call `arguments` are JSON strings, as in the OpenAI API.

Rows whose gold fails (see `env test`) are reported on stderr and left out, unless
--include-failing. Exit status: 0 when every row passed, 1 when some failed or on an error
(the passing rows are written all the same), 2 bad usage."""

EPILOG = """examples:
  python -m runtime env sft python_math --out sft/python_math.jsonl
  python -m runtime env sft environments/my_env --out my_env.jsonl --limit 50 -c 8
"""


def build_parser() -> argparse.ArgumentParser:
    """The flags of `env sft`."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_replay_flags(parser, "env-sft")
    parser.add_argument(
        "-o", "--out", type=Path, required=True, metavar="FILE", help="the JSONL file to write"
    )
    parser.add_argument(
        "--include-failing",
        action="store_true",
        help="write the rows whose gold fails too",
    )
    return parser


def check_out(out: Path) -> None:
    """Refuse an output path that cannot be a file."""
    if out.is_dir():
        raise CommandError(f"--out {out} is a directory; give a file path such as {out}/sft.jsonl")


def write(args: argparse.Namespace, env_id: str, results: list[RowResult]) -> int:
    """Write the examples; report failing rows on stderr; the exit status."""
    failed = [r for r in results if not r.passed]
    for r in failed:
        print(f"row {r.index}: FAIL: {r.reason}", file=sys.stderr)
    kept = [r for r in results if r.passed or (args.include_failing and r.messages)]
    if not kept:
        raise CommandError(f"no row of {env_id!r} passed; nothing written to {args.out}")
    try:
        count = write_jsonl(args.out, (sft_record(r, env_id) for r in kept))
    except OSError as exc:
        raise CommandError(f"cannot write {args.out}: {exc}") from None
    note = (
        f" ({len(failed)} failing row(s) left out)" if failed and not args.include_failing else ""
    )
    print(f"wrote {count} example(s) of {env_id} to {args.out}{note}")
    return 1 if failed else 0
