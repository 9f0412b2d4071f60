"""`python -m runtime env init NAME`: scaffold a working environment that passes `env test`."""

from __future__ import annotations

import argparse
import importlib.util
import keyword
import shutil
from pathlib import Path

from runtime.cli.envtools.common import CommandError
from runtime.cli.templates.environment import render

PROG = "python -m runtime env init"

DESCRIPTION = """\
Create DIR/NAME/ with a working environment: __init__.py (an Environment with a dataset file,
system prompt, the python and submit tools, a Rubric with a correctness function and a format
metric, its hooks documented), data.jsonl (rows with scalar and trajectory gold outputs),
README.md and test_NAME.py (a pytest test that runs `env test` on it). An existing DIR/NAME is
never overwritten."""


def build_parser() -> argparse.ArgumentParser:
    """The flags of `env init`."""
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", metavar="NAME", help="the environment's name: a Python identifier")
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path("environments"),
        metavar="DIR",
        help="the folder to create NAME in (default: %(default)s)",
    )
    return parser


def check_name(name: str) -> None:
    """Refuse a name that is no identifier, a keyword, or that shadows an importable module."""
    if not name.isidentifier() or not name.isascii():
        raise CommandError(
            f"NAME must be a Python identifier (letters, digits, _; not starting with a digit), "
            f"got {name!r}"
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise CommandError(f"NAME must not be a Python keyword, got {name!r}")
    if name.startswith("_"):
        raise CommandError(f"NAME must not start with '_' (discovery skips such folders): {name!r}")
    try:
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        found = True
    if found:
        raise CommandError(
            f"NAME {name!r} is the name of an importable module; choose another so that "
            "imports (and pytest) do not confuse the two"
        )


def create(name: str, parent: Path) -> Path:
    """Write the scaffold to ``parent/name``; returns the folder."""
    check_name(name)
    folder = parent / name
    if folder.exists() or folder.is_symlink():
        raise CommandError(f"{folder} already exists; not overwriting it")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir()
    except OSError as exc:
        raise CommandError(f"cannot create {folder}: {exc}") from None
    try:
        for relative, text in render(name).items():
            (folder / relative).write_text(text, encoding="utf-8")
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise CommandError(f"cannot write {folder}: {exc}") from None
    return folder


def run(args: argparse.Namespace) -> int:
    """Create the scaffold and say what to do next."""
    folder = create(args.name, args.dir)
    for path in sorted(folder.iterdir()):
        print(f"created {path}")
    print(f"next: python -m runtime env test {folder}")
    return 0
