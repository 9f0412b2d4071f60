"""The follow-up commands `make dev` prints act on the stack it started, not the default one.

`scripts/dev.sh up` ends by printing `scripts/dev.sh hints`: how to follow the log, see the
status and take the stack down. With `RUNTIME_DEV_PROJECT` / `RUNTIME_DEV_INSTANCE` set, those
commands must carry them. The test runs the printed commands verbatim from a shell where the
variables are not set, on a project and instance of its own that do not exist, so nothing of
anyone's is touched, and reads from their output which project and instance they acted on.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def clean_env(**variables: str) -> dict[str, str]:
    """This environment without the variables that pick a dev stack, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNTIME_DEV_")}
    env.pop("COMPOSE", None)
    env.update(variables)
    return env


def hints(**variables: str) -> dict[str, str]:
    """`scripts/dev.sh hints` -> {label: command} for the lines that hold a command."""
    result = subprocess.run(
        ["bash", "scripts/dev.sh", "hints"],
        cwd=REPO,
        env=clean_env(**variables),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    found = {}
    for line in result.stderr.splitlines():
        label, sep, command = line.strip().partition(":")
        if sep and label in ("follow the log", "status", "stop and clean up"):
            found[label] = command.strip()
    assert set(found) == {"follow the log", "status", "stop and clean up"}, result.stderr
    return found


def run(command: str) -> str:
    """A printed command, run verbatim in a shell without the stack's variables."""
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def test_printed_commands_act_on_this_stack(owner: str) -> None:
    project = f"episode-runtime-hints-{secrets.token_hex(3)}"
    instance = f"{owner}-hints-{secrets.token_hex(3)}"
    commands = hints(RUNTIME_DEV_PROJECT=project, RUNTIME_DEV_INSTANCE=instance)
    for command in commands.values():
        assert f"RUNTIME_DEV_PROJECT={project}" in command
        assert f"RUNTIME_DEV_INSTANCE={instance}" in command
    # Run as printed: the status names this stack's instance, `down` this stack's project.
    assert f"sandboxes of instance {instance}:" in run(commands["status"])
    assert f"project {project} is down" in run(commands["stop and clean up"])


def test_the_default_stack_gets_plain_commands() -> None:
    commands = hints()
    assert commands["stop and clean up"] == "make dev-down"
    assert commands["follow the log"] == "scripts/dev.sh compose logs -f server"
    # A chosen compose is carried too, quoted for the shell.
    chosen = hints(COMPOSE="docker compose")
    assert chosen["stop and clean up"] == r"COMPOSE=docker\ compose make dev-down"
