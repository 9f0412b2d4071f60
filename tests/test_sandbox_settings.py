"""Server-wide sandbox settings: a forced isolation runtime, and caps on what an environment's
sandbox may ask for."""

from __future__ import annotations

import docker
import grpc
from grpc_fixtures import (
    ENV_DIR,
    RPC_TIMEOUT,
    TOY,
    assistant,
    bash,
    connected,
    expect_error,
    open_episode,
    running_server,
    start_request,
    step,
)

BIG = str(ENV_DIR / "big_sandbox")


async def test_server_can_force_gvisor_for_every_sandbox(
    owner: str, docker_client: docker.DockerClient
) -> None:
    async with (
        running_server(f"{owner}-forced", sandbox_isolation="gvisor") as server,
        connected(server) as stub,
        open_episode(stub, "toy") as started,
    ):
        host = await step(stub, started.episode_id, assistant(bash("hostname", "c1")))
        container = docker_client.containers.get(host.observations[0].content.strip())
        assert container.attrs["HostConfig"]["Runtime"] == "runsc"


async def test_an_environment_above_the_sandbox_caps_is_refused(owner: str) -> None:
    async with (
        running_server(f"{owner}-caps", environments=[TOY, BIG], max_sandbox_memory="1g") as server,
        connected(server) as stub,
    ):
        await expect_error(
            stub.StartEpisode(start_request("big_sandbox"), timeout=RPC_TIMEOUT),
            grpc.StatusCode.FAILED_PRECONDITION,
            "'big_sandbox'",
            "memory 2g",
            "1024 MiB",
        )
        async with open_episode(stub, "toy") as started:
            ok = await step(stub, started.episode_id, assistant(bash("echo fine", "c1")))
            assert ok.observations[0].content == "fine"
