"""The docker-compose dev loop end to end, exactly as a developer runs it.

`scripts/dev.sh up` (what `make dev` runs) brings docker-compose.yml up under a project name, a
host port and a server instance name of the test's own, with a temporary copy of
`environments/python_math` mounted instead of the real folder. `python -m runtime eval` then runs
through the published port against a scripted OpenAI-compatible model on the host, an edit of the
mounted copy shows in the next episode, and `scripts/dev.sh down` (`make dev-down`) must leave no
container, network or volume of the project and no sandbox of its server.

Runs with every compose found (`docker compose` v2, `docker-compose` v1), or only with $COMPOSE.
With none installed the test fails rather than skips: scripts/setup.sh installs docker-compose.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from scripted_openai import Reply, Request, ScriptedOpenAI, call, completion

from runtime.rollout.results import read_jsonl
from runtime.sandbox import labels

pytestmark = [pytest.mark.compose, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
DEV = REPO / "scripts" / "dev.sh"
PROJECT_LABEL = "com.docker.compose.project"
ENV_ID = "python_math"
PROMPT_START = "You solve math problems with the help of a Python sandbox."
SANDBOX_CODE = "import os; print('sandbox', os.getuid(), 6 * 7)"


def compose_variants() -> list[str]:
    """The compose commands to test: $COMPOSE, else each one installed."""
    if os.environ.get("COMPOSE"):
        return [os.environ["COMPOSE"]]
    found = []
    try:
        v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if v2.returncode == 0:
            found.append("docker compose")
    except (OSError, subprocess.TimeoutExpired):
        pass
    if shutil.which("docker-compose"):
        found.append("docker-compose")
    return found or ["docker-compose"]  # none installed: fail (below), never skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


class Stack:
    """One compose stack of the dev loop, named apart from a developer's own."""

    def __init__(self, compose: str, env_dir: Path, instance: str) -> None:
        token = secrets.token_hex(4)
        self.compose = compose
        self.project = f"episode-runtime-test-{token}"
        self.port = free_port()
        self.env_dir = env_dir
        self.instance = instance
        self.address = f"127.0.0.1:{self.port}"

    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            COMPOSE=self.compose,
            RUNTIME_DEV_PROJECT=self.project,
            RUNTIME_DEV_PORT=str(self.port),
            RUNTIME_ENV_DIR=str(self.env_dir),
            RUNTIME_DEV_ENVIRONMENTS=ENV_ID,
            RUNTIME_DEV_INSTANCE=self.instance,
            RUNTIME_DEV_POOL_SIZE="1",
        )
        return env

    def dev(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`scripts/dev.sh ARGS` for this stack."""
        return subprocess.run(
            ["bash", str(DEV), *args],
            cwd=REPO,
            env=self.environ(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def server_log(self) -> str:
        result = self.dev("compose", "logs", "--no-color", "server")
        return result.stdout + result.stderr

    def resources(self) -> dict[str, list[str]]:
        """Every container, network and volume of the project, and the server's sandboxes."""
        project = f"label={PROJECT_LABEL}={self.project}"
        sandboxes = [f"label={labels.MANAGED}=1", f"label={labels.OWNER}={self.instance}"]
        return {
            "containers": docker("ps", "-aq", "--filter", project).split(),
            "networks": docker("network", "ls", "-q", "--filter", project).split(),
            "volumes": docker("volume", "ls", "-q", "--filter", project).split(),
            "sandboxes": docker(
                "ps", "-aq", *(x for s in sandboxes for x in ("--filter", s))
            ).split(),
        }

    def force_remove(self) -> None:
        """Last resort after a failed test: remove whatever is left, by label."""
        left = self.resources()
        for cid in left["containers"] + left["sandboxes"]:
            subprocess.run(["docker", "rm", "-f", cid], capture_output=True, timeout=60)
        for nid in left["networks"]:
            subprocess.run(["docker", "network", "rm", nid], capture_output=True, timeout=60)
        for vid in left["volumes"]:
            subprocess.run(["docker", "volume", "rm", "-f", vid], capture_output=True, timeout=60)


class MathScript:
    """Solves python_math: runs code in the sandbox on turn 1, submits the reference on turn 2."""

    def __init__(self, data_file: Path) -> None:
        records = [json.loads(line) for line in data_file.read_text().splitlines() if line]
        self.answers = {str(r["input"]): str(r["output"]) for r in records}

    def __call__(self, request: Request) -> Reply:
        if request.turn == 1:
            return completion(request, calls=[call("python", {"code": SANDBOX_CODE})])
        return completion(request, calls=[call("submit", {"answer": self.answers[request.prompt]})])


def run_eval(stack: Stack, model: ScriptedOpenAI, out: Path, n: int) -> list[dict[str, Any]]:
    """`python -m runtime eval` through the stack; the results, each checked to be a success."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    argv = [
        sys.executable, "-m", "runtime", "eval", ENV_ID, "--server", stack.address,
        "--model", "scripted", "--base-url", model.base_url, "-n", str(n), "-r", "1",
        "-c", str(n), "--max-retries", "1", "--out", str(out),
    ]  # fmt: skip
    result = subprocess.run(
        argv,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"eval failed:\n{result.stdout}\n{result.stderr}"
    lines = read_jsonl(out / "results.jsonl")
    assert sorted(line["example_index"] for line in lines) == list(range(n))
    for line in lines:
        assert line["error"] is None, line["error"]
        assert line["reward"]["score"] == 1.0, line["reward"]
    metadata = json.loads((out / "metadata.json").read_text())
    assert (metadata["server"], metadata["status"]) == (stack.address, "finished")
    return lines


def health(address: str) -> str:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="runtime.v1.EpisodeService"), timeout=10
        )
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


@pytest.fixture(params=compose_variants())
def stack(request: pytest.FixtureRequest, owner: str, tmp_path: Path) -> Iterator[Stack]:
    """A stack (not yet up) over a private copy of python_math; anything left is removed."""
    compose = str(request.param)
    if compose == "docker-compose" and not shutil.which("docker-compose"):
        pytest.fail("no compose installed: run scripts/setup.sh (it installs docker-compose)")
    env_dir = tmp_path / "environments"
    shutil.copytree(
        REPO / "environments" / ENV_ID,
        env_dir / ENV_ID,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    instance = f"{owner}-compose-{secrets.token_hex(2)}"
    created = Stack(compose, env_dir, instance)
    try:
        yield created
    finally:
        if any(created.resources().values()):
            created.dev("down", timeout=120)
            created.force_remove()


def test_dev_loop_up_eval_edit_down(stack: Stack, tmp_path: Path) -> None:
    up = stack.dev("up", timeout=900)  # builds the server image first if it is out of date
    assert up.returncode == 0, f"dev.sh up failed:\n{up.stdout}\n{up.stderr}"
    assert f"--server {stack.address}" in up.stderr  # it says how to run an eval
    try:
        # Healthy by its grpc.health.v1 check, published on loopback only.
        resources = stack.resources()
        assert len(resources["containers"]) == 1, resources
        assert resources["networks"], resources
        server = resources["containers"][0]
        assert docker("inspect", "--format", "{{.State.Health.Status}}", server) == "healthy"
        assert docker("port", server, "50051/tcp") == stack.address
        assert health(stack.address) == "SERVING"

        # Its sandboxes are siblings on the host's daemon with nothing mounted into them: the
        # pool's warm one shows up labelled with the server's instance name.
        sandboxes: list[str] = []
        for _ in range(100):
            sandboxes = stack.resources()["sandboxes"]
            if sandboxes:
                break
            time.sleep(0.1)
        assert sandboxes, "no sandbox of the compose server appeared"
        inspected = json.loads(docker("inspect", *sandboxes))
        for info in inspected:
            assert info["Mounts"] == [], info["Mounts"]
            assert not info["HostConfig"]["Binds"]
            assert info["HostConfig"]["NetworkMode"] == "none"

        script = MathScript(stack.env_dir / ENV_ID / "data.jsonl")
        with ScriptedOpenAI(script) as model:
            # An eval through the stack: the tool ran in a sandbox, as uid 65534.
            run_eval(stack, model, tmp_path / "run1", n=2)
            first = model.completions()
            assert len(first) == 4
            assert all(r.messages[0]["content"].startswith(PROMPT_START) for r in first)
            outputs = [r.last_tool_output for r in first if r.turn == 2]
            assert len(outputs) == 2
            assert all("sandbox 65534 42" in o for o in outputs), outputs

            # Edit the mounted environment: the next episode has the new system prompt.
            marker = f"EDITED-{secrets.token_hex(4)}"
            source = stack.env_dir / ENV_ID / "__init__.py"
            text = source.read_text()
            assert text.count(PROMPT_START) == 1
            source.write_text(text.replace(PROMPT_START, f"{marker} {PROMPT_START}"))
            time.sleep(1.2)  # the server looks for edits at most once a second
            run_eval(stack, model, tmp_path / "run2", n=1)
            second = model.completions()[len(first) :]
            assert second
            assert all(r.messages[0]["content"].startswith(marker) for r in second)
        assert f"environment '{ENV_ID}' changed on disk; reloading it" in stack.server_log()
    finally:
        down = stack.dev("down", timeout=180)
    assert down.returncode == 0, f"dev.sh down failed:\n{down.stdout}\n{down.stderr}"
    assert stack.resources() == {"containers": [], "networks": [], "volumes": [], "sandboxes": []}
