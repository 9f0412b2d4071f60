"""Assembles and runs the server: engine, gRPC service, health, reflection, graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from runtime.episodes.engine import EpisodeEngine
from runtime.episodes.limits import EngineLimits, check_sandbox
from runtime.episodes.registry import EnvironmentRegistry
from runtime.errors import FailedPreconditionError
from runtime.sandbox.docker_backend import DockerBackend
from runtime.sandbox.pool import SandboxPool
from runtime.server.auth import BearerTokenInterceptor
from runtime.server.service import EpisodeService
from runtime.server.settings import ServerSettings
from runtime.v1 import runtime_pb2 as pb

log = logging.getLogger(__name__)
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["EpisodeService"].full_name


class RuntimeServer:
    """One running server; `start` binds and serves, `stop` drains and removes every sandbox."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        docker_backend = DockerBackend(owner=settings.instance_name, boot_id=secrets.token_hex(6))
        self.backend = docker_backend
        self.pool = SandboxPool(
            docker_backend, size=settings.pool_size, max_live=settings.max_live_sandboxes
        )
        self.registry = EnvironmentRegistry(
            settings.environments, settings.env_dirs, reload=settings.reload_environments
        )
        self.engine = EpisodeEngine(self.registry, self.pool, _fitted_limits(settings))
        self.health = health.aio.HealthServicer()
        self.port = 0
        self._server: grpc.aio.Server | None = None
        self._stopped = False

    @property
    def address(self) -> str:
        """host:port the server listens on."""
        return f"{self.settings.host}:{self.port}"

    async def start(self) -> None:
        """Check Docker, remove what an earlier run of this instance left, then serve."""
        await self.backend.ping()
        removed = await self.backend.remove_owned()
        if removed:
            log.info(
                "removed %d sandbox(es) left by an earlier run of %r",
                removed,
                self.settings.instance_name,
            )
        limit = self.settings.max_message_bytes
        token = self.settings.bearer_token()
        server = grpc.aio.server(
            interceptors=[BearerTokenInterceptor(token)] if token else None,
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
            ],
        )
        EpisodeService(self.engine, max_message_bytes=limit).add_to_server(server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        address = f"{self.settings.host}:{self.settings.port}"
        credentials = self._tls_credentials()
        if credentials is None:
            self.port = server.add_insecure_port(address)
        else:
            self.port = server.add_secure_port(address, credentials)
        if self.port == 0:
            raise OSError(f"cannot listen on {self.settings.host}:{self.settings.port}")
        await server.start()
        self._server = server
        self.engine.start_reaper()
        for env_id in self.registry.ids:
            spec = self.registry.get(env_id).sandbox
            if spec is not None:
                with contextlib.suppress(FailedPreconditionError):
                    self.pool.warm(check_sandbox(spec, self.engine.limits, env_id))
        for name in ("", SERVICE_NAME):
            await self._set_health(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "serving %s on %s (environments: %s)",
            SERVICE_NAME,
            self.address,
            ", ".join(self.registry.ids),
        )

    async def stop(self, grace_s: float | None = None) -> None:
        """NOT_SERVING, stop taking RPCs, let running ones finish within the grace, clean up."""
        if self._stopped:
            return
        self._stopped = True
        for name in ("", SERVICE_NAME):
            await self._set_health(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        if self._server is not None:
            grace = self.settings.shutdown_grace_s if grace_s is None else grace_s
            await self._server.stop(grace)
        await self.engine.close()
        await self.pool.close()
        self.registry.close()
        log.info("stopped; every sandbox removed")

    def _tls_credentials(self) -> grpc.ServerCredentials | None:
        settings = self.settings
        if settings.tls_cert is None or settings.tls_key is None:
            return None
        chain = settings.tls_cert.read_bytes()
        key = settings.tls_key.read_bytes()
        client_ca = settings.tls_client_ca.read_bytes() if settings.tls_client_ca else None
        return grpc.ssl_server_credentials(
            [(key, chain)],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,
        )

    async def wait(self) -> None:
        """Block until the gRPC server terminates."""
        if self._server is not None:
            await self._server.wait_for_termination()

    async def _set_health(self, name: str, status: int) -> None:
        result = self.health.set(name, status)
        if asyncio.iscoroutine(result):
            await result


def _fitted_limits(settings: ServerSettings) -> EngineLimits:
    """The engine's caps, with a turn's record (action and observations) kept within half the
    message limit, so that every trajectory page, which holds at least one turn, can be sent."""
    limits = settings.engine_limits()
    room = settings.max_message_bytes // 2
    if limits.max_action_bytes + limits.max_turn_observation_bytes <= room:
        return limits
    fitted = dataclasses.replace(
        limits,
        max_action_bytes=min(limits.max_action_bytes, room // 2),
        max_turn_observation_bytes=min(limits.max_turn_observation_bytes, room // 2),
    )
    log.warning(
        "max message size %d bytes: a turn may hold at most %d action bytes and %d "
        "observation bytes, so that it fits a trajectory page",
        settings.max_message_bytes,
        fitted.max_action_bytes,
        fitted.max_turn_observation_bytes,
    )
    return fitted


async def serve(settings: ServerSettings) -> None:
    """Run until SIGINT or SIGTERM, then shut down gracefully."""
    server = RuntimeServer(settings)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"episode runtime listening on {server.address}", flush=True)
    waiter = asyncio.create_task(server.wait())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    await server.stop()
    for task in (waiter, stopper):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
