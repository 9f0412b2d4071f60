"""List settings from environment variables: `python -m runtime serve` as an operator starts it.

`RUNTIME_ENVIRONMENTS=a,b` (and every other list setting) takes the forms the flags take, the
comma form and a JSON list; a bad value is one `error:` line and a non-zero exit, no traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from runtime.v1 import runtime_pb2 as pb
from runtime.v1 import runtime_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[1]
TEST_ENVS = REPO / "tests" / "environments"
LISTENING = "episode runtime listening on "


def serve_env(owner: str, **variables: str) -> dict[str, str]:
    """The environment of a `serve` process: this run's instance name, a free port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNTIME_")}
    env.update(RUNTIME_INSTANCE_NAME=owner, RUNTIME_PORT="0", **variables)
    return env


@contextlib.contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    """Start `python -m runtime serve`, yield its address; stop it (by its pid) at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime", "serve"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        line = proc.stdout.readline().strip()  # the first line, or '' if the process ended
        if not line.startswith(LISTENING):
            proc.kill()
            pytest.fail(f"serve did not start: {line!r}\n{proc.stderr.read()}")
        yield line.removeprefix(LISTENING)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def offered(address: str) -> set[str]:
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.EpisodeServiceStub(channel)
        listed = stub.ListEnvironments(pb.ListEnvironmentsRequest(), timeout=60)
    return {env.id for env in listed.environments}


@pytest.mark.parametrize("form", ["comma", "json"])
def test_serve_takes_list_settings_from_environment_variables(owner: str, form: str) -> None:
    dirs = [str(REPO / "no-such-folder"), str(TEST_ENVS)]
    names = ["toy", "nosandbox"]
    if form == "comma":
        values = {"RUNTIME_ENVIRONMENTS": " toy, nosandbox", "RUNTIME_ENV_DIRS": ",".join(dirs)}
    else:
        values = {"RUNTIME_ENVIRONMENTS": json.dumps(names), "RUNTIME_ENV_DIRS": json.dumps(dirs)}
    with serving(serve_env(f"{owner}-envlist", **values)) as address:
        assert offered(address) == set(names)


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("RUNTIME_ENVIRONMENTS", '["toy", 2]', "not a list of strings"),
        ("RUNTIME_ENVIRONMENTS", '["toy",', "not a JSON list"),
        ("RUNTIME_ENVIRONMENTS", "toy,,nosandbox", "has an empty item"),
        ("RUNTIME_ENVIRONMENTS", "", "no environment to offer"),
        ("RUNTIME_ENV_DIRS", "[", "not a JSON list"),
    ],
)
def test_a_bad_list_value_is_one_line(owner: str, variable: str, value: str, fragment: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "runtime", "serve"],
        cwd=REPO,
        env=serve_env(f"{owner}-badlist", **{variable: value}),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert fragment in lines[0]
    if value:
        assert variable in lines[0]  # the operator learns which setting to fix
    assert result.stdout == ""
