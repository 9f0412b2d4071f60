"""`make clean` removes the sandboxes of the instances it is told, and never another server's.

Real containers of the sandbox image, labelled as sandboxes of three instances: two of this test
run's (one named exactly, one matched by a pattern) and one of "another server" on the same
Docker daemon. `make clean INSTANCES=...` must remove the first two and leave the third running.
With RUNTIME_TEST_ISOLATION=gvisor the containers run under runsc.
The test names its instances explicitly: the default (every `pytest-*` instance) would also take
the sandboxes of any other test run on this machine.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from conftest import GVISOR

from runtime.sandbox import labels

REPO = Path(__file__).resolve().parents[1]
IMAGE = "runtime/python:latest"


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def sandboxes(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """Container ids this test created; every one is removed at the end, pass or fail."""
    created: list[str] = []
    yield created
    for container_id in created:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_container(container_id, force=True)


def start_sandbox(client: docker.DockerClient, owner_name: str, created: list[str]) -> str:
    """A running container labelled as a sandbox of instance ``owner_name``."""
    container = client.containers.run(
        IMAGE,
        ["sleep", "infinity"],
        detach=True,
        labels=labels.container_labels(owner_name, "ops-test", f"ep-{secrets.token_hex(3)}"),
        network_mode="none",
        runtime="runsc" if GVISOR else None,  # under gVisor too, when the test run asks for it
    )
    created.append(container.id)
    return str(container.id)


def running(client: docker.DockerClient, container_id: str) -> bool:
    try:
        return bool(client.api.inspect_container(container_id)["State"]["Running"])
    except docker.errors.NotFound:
        return False


def test_make_clean_removes_only_the_named_instances(
    owner: str, docker_client: docker.DockerClient, sandboxes: list[str]
) -> None:
    token = secrets.token_hex(3)
    mine = f"{owner}-clean-{token}"
    patterned = f"{owner}-cleanpat-{token}"
    other = f"other-server-{token}"  # matches none of the patterns below
    mine_ids = [start_sandbox(docker_client, mine, sandboxes) for _ in range(2)]
    pattern_id = start_sandbox(docker_client, patterned, sandboxes)
    other_id = start_sandbox(docker_client, other, sandboxes)

    result = make("clean", f"INSTANCES={mine} {owner}-cleanpat-*")

    assert result.returncode == 0, result.stderr
    assert not any(running(docker_client, c) for c in [*mine_ids, pattern_id])
    assert docker_client.api.containers(all=True, filters=labels.owner_filter(mine)) == []
    assert running(docker_client, other_id), "make clean removed another instance's sandbox"
    assert f"removed 3 sandbox(es) of: {mine} (2), {patterned} (1)" in result.stderr
    assert "container(s) of other instances alone" in result.stderr

    again = make("clean", f"INSTANCES={mine}")
    assert again.returncode == 0, again.stderr
    assert f"no sandboxes of instance(s) {mine}" in again.stderr
    assert running(docker_client, other_id)


def test_make_clean_says_whose_sandboxes_it_removes() -> None:
    result = make("help")
    assert result.returncode == 0, result.stderr
    line = next(li for li in result.stdout.splitlines() if li.startswith("make clean"))
    assert "instances pytest-* compose" in line
    assert "INSTANCES=" in result.stdout
    dry = make("-n", "clean", "RUNTIME_DEV_INSTANCE=mydev")
    assert "scripts/clean.sh 'pytest-*' 'mydev'" in dry.stdout
