"""Shared fixtures: a Docker sandbox backend whose containers carry this run's owner label.

Everything a test creates is removed by label when the session ends, even after failures, and
the session fails if anything of ours is still there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

import docker
import docker.errors
import pytest

from runtime.client.in_process import InProcessClient
from runtime.sandbox import labels
from runtime.sandbox.docker_backend import DockerBackend
from runtime.sandbox.spec import SandboxSpec

SANDBOX_IMAGE = os.environ.get("RUNTIME_TEST_IMAGE", "runtime/python:latest")
ISOLATION: Literal["runc", "gvisor"] = (
    "gvisor" if os.environ.get("RUNTIME_TEST_ISOLATION") == "gvisor" else "runc"
)
"""The container runtime the sandbox tests run under; CI runs them under both."""
GVISOR = ISOLATION == "gvisor"


def sandbox_spec(**overrides: Any) -> SandboxSpec:
    """A sandbox spec on the test image under the isolation this run tests."""
    return SandboxSpec(image=SANDBOX_IMAGE, isolation=ISOLATION, **overrides)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A Docker SDK client; tests need a running daemon and fail loudly without one."""
    client = docker.from_env()
    client.ping()
    yield client
    client.close()


@pytest.fixture(scope="session")
def owner(docker_client: docker.DockerClient) -> Iterator[str]:
    """This test run's owner label; at the end, nothing labelled with it may remain."""
    name = os.environ.get("RUNTIME_TEST_OWNER") or f"pytest-{secrets.token_hex(4)}"
    yield name
    leftovers = docker_client.api.containers(all=True, filters=labels.owner_filter(name))
    for item in leftovers:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_container(item["Id"], force=True)
    assert not leftovers, f"containers left behind: {[item['Names'] for item in leftovers]}"


def leftover_containers(client: docker.DockerClient, owner_name: str) -> list[str]:
    """Names of the containers still labelled with ``owner_name``."""
    # The low-level list: no per-container inspect that could race a removal in progress.
    found = client.api.containers(all=True, filters=labels.owner_filter(owner_name))
    return [str(item["Names"][0]).lstrip("/") for item in found]


async def wait_until_gone(
    client: docker.DockerClient, owner_name: str, timeout_s: float = 15
) -> list[str]:
    """Poll until no container of ``owner_name`` exists; returns what is left at the timeout."""
    left: list[str] = []
    for _ in range(int(timeout_s * 10)):
        left = await asyncio.to_thread(leftover_containers, client, owner_name)
        if not left:
            return []
        await asyncio.sleep(0.1)
    return left


@pytest.fixture(scope="session")
async def backend(owner: str) -> AsyncIterator[DockerBackend]:
    """One sandbox backend for the session, closed (its containers removed) at the end."""
    instance = DockerBackend(owner=owner, boot_id="tests")
    try:
        yield instance
    finally:
        await instance.close()


@pytest.fixture
def spec() -> SandboxSpec:
    """The default sandbox spec on the test image."""
    return sandbox_spec()


@contextlib.asynccontextmanager
async def in_process_runtime(
    env_dir: Path, instance: str, client: docker.DockerClient
) -> AsyncIterator[InProcessClient]:
    """An in-process runtime offering one environment under its own owner label; on exit it
    is closed and none of its containers may remain."""
    runtime = InProcessClient.for_environments([str(env_dir)], instance_name=instance)
    try:
        yield runtime
    finally:
        await runtime.close()
        assert await wait_until_gone(client, instance) == []
