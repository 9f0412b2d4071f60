"""The server's security settings, end to end: bearer-token auth, TLS and mutual TLS, the loopback
default, unguessable episode ids, idle and lifetime reaping, the message size cap.

Real servers on loopback ports, real Docker sandboxes, real certificates made with the `openssl`
command line for each run; nothing is mocked. See SECURITY.md for what each setting protects.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import grpc
import pytest
from conftest import wait_until_gone
from grpc_fixtures import (
    ENV_DIR,
    RPC_TIMEOUT,
    assistant,
    bash,
    call,
    close_quietly,
    connected,
    episode_containers,
    expect_error,
    open_episode,
    running_server,
    start_request,
    step,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from pydantic import SecretStr, ValidationError

from runtime.server.app import SERVICE_NAME, RuntimeServer
from runtime.server.settings import ServerSettings
from runtime.v1 import runtime_pb2 as pb
from runtime.v1 import runtime_pb2_grpc as pb_grpc

Stub = pb_grpc.EpisodeServiceStub
NOSANDBOX = str(ENV_DIR / "nosandbox")
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
FAILED = grpc.StatusCode.FAILED_PRECONDITION
EPISODE_ID = re.compile(r"^ep_([A-Za-z0-9_-]+)$")


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """gRPC call metadata carrying ``token``."""
    return (("authorization", f"Bearer {token}"),)


async def health_status(channel: grpc.aio.Channel, service: str = "") -> int:
    health = health_pb2_grpc.HealthStub(channel)
    answer = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    status: int = answer.status
    return status


def assert_not_logged(caplog: pytest.LogCaptureFixture, secret: str) -> None:
    """``secret`` appears in no captured log record: message, arguments or traceback."""
    assert secret not in caplog.text
    for record in caplog.records:
        assert secret not in record.getMessage(), record.getMessage()
        assert secret not in repr(record.args)
        assert secret not in (record.exc_text or "")


@pytest.fixture(autouse=True)
def _no_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """RUNTIME_* variables in the developer's shell must not leak into these servers."""
    for name in ("HOST", "AUTH_TOKEN", "AUTH_TOKEN_FILE", "TLS_CERT", "TLS_KEY", "TLS_CLIENT_CA"):
        monkeypatch.delenv(f"RUNTIME_{name}", raising=False)


# --- bearer-token authentication ---------------------------------------------------------------


async def test_bearer_token_guards_every_rpc_but_health(
    owner: str, caplog: pytest.LogCaptureFixture, docker_client: docker.DockerClient
) -> None:
    caplog.set_level(logging.DEBUG)
    token = "tok-" + secrets.token_urlsafe(32)
    wrong = token[:-6] + "WRONG1"
    instance = f"{owner}-auth"
    errors: list[grpc.aio.AioRpcError] = []
    async with (
        running_server(instance, auth_token=token, log_level="DEBUG") as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        stub = Stub(channel)
        listing = pb.ListEnvironmentsRequest()

        # No metadata at all: told that a bearer token is required, and how to send it.
        errors.append(
            await expect_error(
                stub.ListEnvironments(listing, timeout=RPC_TIMEOUT),
                UNAUTHENTICATED,
                "requires a bearer token",
                "authorization: Bearer",
            )
        )
        # The handler never runs: no episode, no container.
        errors.append(
            await expect_error(
                stub.StartEpisode(start_request("toy"), timeout=RPC_TIMEOUT),
                UNAUTHENTICATED,
                "bearer token",
            )
        )
        assert server.engine.live_count == 0
        assert server.pool.live_count == 0
        # Another scheme, an empty bearer, the token without a scheme: not a bearer token.
        for value in (f"Basic {token}", "Bearer ", "Bearer", token):
            errors.append(
                await expect_error(
                    stub.ListEnvironments(
                        listing, metadata=(("authorization", value),), timeout=RPC_TIMEOUT
                    ),
                    UNAUTHENTICATED,
                    "requires a bearer token",
                )
            )
        # A wrong token, one that differs only in its tail, and the right one with extra text.
        for candidate in (wrong, "x", token + "x", token[:-1]):
            errors.append(
                await expect_error(
                    stub.ListEnvironments(listing, metadata=bearer(candidate), timeout=RPC_TIMEOUT),
                    UNAUTHENTICATED,
                    "not valid",
                )
            )
        # A wrong token on a StepEpisode of a real episode id does not touch the episode.
        md = bearer(token)
        started = await stub.StartEpisode(start_request("toy"), metadata=md, timeout=RPC_TIMEOUT)
        try:
            request = pb.StepEpisodeRequest(
                episode_id=started.episode_id, action=assistant(bash("echo pwned", "c0"))
            )
            errors.append(
                await expect_error(
                    stub.StepEpisode(request, metadata=bearer(wrong), timeout=RPC_TIMEOUT),
                    UNAUTHENTICATED,
                )
            )
            assert server.engine.get_trajectory(started.episode_id).turn_count == 0

            # The right token: a whole short episode.
            first = await stub.StepEpisode(
                pb.StepEpisodeRequest(
                    episode_id=started.episode_id,
                    action=assistant(bash("echo authorised", "c1")),
                    turn=1,
                ),
                metadata=md,
                timeout=RPC_TIMEOUT,
            )
            assert "authorised" in first.observations[0].content
            assert not first.done
            second = await stub.StepEpisode(
                pb.StepEpisodeRequest(
                    episode_id=started.episode_id,
                    action=assistant(call("submit", {"answer": "42"}, "c2")),
                    turn=2,
                ),
                metadata=md,
                timeout=RPC_TIMEOUT,
            )
            assert second.done
            scored = await stub.ScoreEpisode(
                pb.ScoreEpisodeRequest(episode_id=started.episode_id, include_trajectory=True),
                metadata=md,
                timeout=RPC_TIMEOUT,
            )
            assert scored.reward.success
            assert len(scored.trajectory.turns) == 2
        finally:
            closed = await stub.CloseEpisode(
                pb.CloseEpisodeRequest(episode_id=started.episode_id),
                metadata=md,
                timeout=RPC_TIMEOUT,
            )
        assert closed.closed

        # Health checks stay open, for orchestrators that probe without a token.
        assert await health_status(channel) == health_pb2.HealthCheckResponse.SERVING
        assert await health_status(channel, SERVICE_NAME) == health_pb2.HealthCheckResponse.SERVING
        # The settings object never prints the token either.
        assert token not in repr(server.settings)
        assert token not in str(server.settings.model_dump())

    for error in errors:
        assert token not in (error.details() or "")
        assert token not in (error.debug_error_string() or "")
        assert wrong not in (error.details() or "")
    assert_not_logged(caplog, token)
    assert_not_logged(caplog, wrong)
    assert await wait_until_gone(docker_client, instance) == []


async def test_streaming_rpcs_need_the_token_too(owner: str) -> None:
    """Server reflection is a bidirectional stream: it is refused without a token as well."""
    token = secrets.token_urlsafe(24)
    async with (
        running_server(f"{owner}-auth-stream", auth_token=token, environments=[NOSANDBOX]) as srv,
        grpc.aio.insecure_channel(srv.address) as channel,
    ):
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")

        async def services(metadata: tuple[tuple[str, str], ...] | None) -> list[str]:
            stream = reflection.ServerReflectionInfo(
                iter([request]), metadata=metadata, timeout=RPC_TIMEOUT
            )
            names: list[str] = []
            async for answer in stream:
                names.extend(s.name for s in answer.list_services_response.service)
            return names

        with pytest.raises(grpc.aio.AioRpcError) as info:
            await services(None)
        assert info.value.code() == UNAUTHENTICATED, info.value.details()
        assert "bearer token" in (info.value.details() or "")
        assert SERVICE_NAME in await services(bearer(token))


async def test_auth_token_file(
    owner: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = secrets.token_urlsafe(32)
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    async with (
        running_server(
            f"{owner}-auth-file", auth_token_file=token_file, environments=[NOSANDBOX]
        ) as server,
        connected(server) as stub,
    ):
        listing = pb.ListEnvironmentsRequest()
        error = await expect_error(
            stub.ListEnvironments(listing, timeout=RPC_TIMEOUT),
            UNAUTHENTICATED,
            "requires a bearer token",
        )
        assert token not in (error.details() or "")
        wrong = await expect_error(
            stub.ListEnvironments(listing, metadata=bearer(token[::-1]), timeout=RPC_TIMEOUT),
            UNAUTHENTICATED,
            "not valid",
        )
        assert token not in (wrong.details() or "")
        answer = await stub.ListEnvironments(listing, metadata=bearer(token), timeout=RPC_TIMEOUT)
        assert [e.id for e in answer.environments] == ["nosandbox"]
    assert_not_logged(caplog, token)


def test_auth_settings_validation(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("abc\n")
    with pytest.raises(ValidationError, match="not both"):
        ServerSettings(auth_token=SecretStr("abc"), auth_token_file=token_file)
    empty = tmp_path / "empty"
    empty.write_text("\n  \n")
    with pytest.raises(ValueError, match="holds no token"):
        ServerSettings(auth_token_file=empty).bearer_token()
    assert ServerSettings(auth_token_file=token_file).bearer_token() == "abc"
    assert ServerSettings().bearer_token() is None
    # A secret in the settings is masked wherever the settings are printed.
    settings = ServerSettings(auth_token=SecretStr("hunter2-secret"))
    assert "hunter2-secret" not in repr(settings)
    assert settings.bearer_token() == "hunter2-secret"


def test_an_empty_auth_token_is_rejected_not_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """`RUNTIME_AUTH_TOKEN: ${TOKEN}` in a compose file with TOKEN unset gives an empty string:
    the operator asked for auth, so the server must refuse to start, not serve without it."""
    monkeypatch.setenv("RUNTIME_AUTH_TOKEN", "")
    with pytest.raises(ValueError, match="token"):
        ServerSettings().bearer_token()


def test_serve_refuses_an_empty_token_file_with_a_clear_error(owner: str, tmp_path: Path) -> None:
    empty = tmp_path / "token"
    empty.write_text("\n")
    result = subprocess.run(
        [sys.executable, "-m", "runtime", "serve", "--port", "0", "--instance-name",
         f"{owner}-empty-file", "--environments", NOSANDBOX, "--auth-token-file", str(empty)],
        capture_output=True, text=True, timeout=60, cwd=ENV_DIR.parent.parent,
    )  # fmt: skip
    assert result.returncode != 0  # fails closed: it never serves without the token
    assert "holds no token" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr


# --- TLS and mutual TLS ------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A throwaway CA with a server certificate (127.0.0.1, localhost) and a client certificate;
    plus a rogue CA and a client certificate it signed."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_ca: Path
    rogue_client_cert: Path
    rogue_client_key: Path


def _openssl(*args: str | Path, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"openssl {args[0]} failed: {result.stderr}"


def _make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _openssl(
        "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    return cert, key


def _make_leaf(
    folder: Path, name: str, ca: tuple[Path, Path], extensions: str
) -> tuple[Path, Path]:
    cert, key, csr = folder / f"{name}.pem", folder / f"{name}.key", folder / f"{name}.csr"
    ext = folder / f"{name}.ext"
    ext.write_text(extensions)
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", csr, "-subj", f"/CN={name}",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", ext,
        cwd=folder,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = _make_ca(folder, "test-ca")
    server = _make_leaf(
        folder,
        "server",
        ca,
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    client_ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
    client_ext += "extendedKeyUsage=clientAuth\n"
    client = _make_leaf(folder, "client", ca, client_ext)
    rogue_ca = _make_ca(folder, "rogue-ca")
    rogue = _make_leaf(folder, "rogue-client", rogue_ca, client_ext)
    return Pki(ca[0], *server, *client, rogue_ca[0], *rogue)


def tls_credentials(pki: Pki, client: tuple[Path, Path] | None = None) -> grpc.ChannelCredentials:
    """Client credentials trusting the test CA, optionally presenting (cert, key)."""
    if client is None:
        return grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
    return grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=client[1].read_bytes(),
        certificate_chain=client[0].read_bytes(),
    )


async def list_ids(channel: grpc.aio.Channel, deadline_s: float = RPC_TIMEOUT) -> list[str]:
    answer = await Stub(channel).ListEnvironments(pb.ListEnvironmentsRequest(), timeout=deadline_s)
    return [e.id for e in answer.environments]


async def refused(channel: grpc.aio.Channel) -> grpc.aio.AioRpcError:
    """The RPC fails at the transport; the error is returned."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await list_ids(channel, deadline_s=10)
    return info.value


async def test_tls_server(owner: str, pki: Pki) -> None:
    async with running_server(
        f"{owner}-tls",
        environments=[NOSANDBOX],
        tls_cert=pki.server_cert,
        tls_key=pki.server_key,
    ) as server:
        port = server.port
        # By IP (the certificate names IP:127.0.0.1) and by name (DNS:localhost).
        for target in (f"127.0.0.1:{port}", f"localhost:{port}"):
            async with grpc.aio.secure_channel(target, tls_credentials(pki)) as channel:
                assert await list_ids(channel) == ["nosandbox"]
        # A client that speaks plaintext HTTP/2 to the TLS port gets nowhere.
        async with grpc.aio.insecure_channel(server.address) as channel:
            error = await refused(channel)
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
        # A client that does not trust the server's CA refuses the connection.
        untrusting = grpc.ssl_channel_credentials(root_certificates=pki.rogue_ca.read_bytes())
        async with grpc.aio.secure_channel(server.address, untrusting) as channel:
            error = await refused(channel)
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()


async def test_mutual_tls(owner: str, pki: Pki) -> None:
    async with running_server(
        f"{owner}-mtls",
        environments=[NOSANDBOX],
        tls_cert=pki.server_cert,
        tls_key=pki.server_key,
        tls_client_ca=pki.ca,
    ) as server:
        # No client certificate: the handshake fails.
        async with grpc.aio.secure_channel(server.address, tls_credentials(pki)) as channel:
            error = await refused(channel)
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
        # A client certificate from another CA: refused as well.
        rogue = tls_credentials(pki, (pki.rogue_client_cert, pki.rogue_client_key))
        async with grpc.aio.secure_channel(server.address, rogue) as channel:
            error = await refused(channel)
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
        # Plaintext: refused.
        async with grpc.aio.insecure_channel(server.address) as channel:
            error = await refused(channel)
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
        # The CA's client certificate: served, health included.
        good = tls_credentials(pki, (pki.client_cert, pki.client_key))
        async with grpc.aio.secure_channel(server.address, good) as channel:
            assert await list_ids(channel) == ["nosandbox"]
            assert await health_status(channel) == health_pb2.HealthCheckResponse.SERVING


async def test_tls_and_token_together(owner: str, pki: Pki) -> None:
    """TLS protects the token on the wire; the token is still checked over TLS."""
    token = secrets.token_urlsafe(24)
    async with (
        running_server(
            f"{owner}-tls-auth",
            environments=[NOSANDBOX],
            tls_cert=pki.server_cert,
            tls_key=pki.server_key,
            auth_token=token,
        ) as server,
        grpc.aio.secure_channel(server.address, tls_credentials(pki)) as channel,
    ):
        stub = Stub(channel)
        await expect_error(
            stub.ListEnvironments(pb.ListEnvironmentsRequest(), timeout=RPC_TIMEOUT),
            UNAUTHENTICATED,
            "requires a bearer token",
        )
        answer = await stub.ListEnvironments(
            pb.ListEnvironmentsRequest(), metadata=bearer(token), timeout=RPC_TIMEOUT
        )
        assert [e.id for e in answer.environments] == ["nosandbox"]


def test_tls_settings_validation(pki: Pki) -> None:
    with pytest.raises(ValidationError, match="--tls-cert and --tls-key go together"):
        ServerSettings(tls_cert=pki.server_cert)
    with pytest.raises(ValidationError, match="--tls-cert and --tls-key go together"):
        ServerSettings(tls_key=pki.server_key)
    with pytest.raises(ValidationError, match="needs --tls-cert"):
        ServerSettings(tls_client_ca=pki.ca)
    # pydantic's ValidationError is a ValueError: callers catching ValueError see it too.
    with pytest.raises(ValueError, match="go together"):
        ServerSettings(tls_cert=pki.server_cert)
    ok = ServerSettings(tls_cert=pki.server_cert, tls_key=pki.server_key, tls_client_ca=pki.ca)
    assert ok.tls_client_ca == pki.ca


# --- loopback by default -----------------------------------------------------------------------


def non_loopback_ipv4() -> list[str]:
    """This machine's IPv4 addresses other than loopback (may be empty)."""
    found: set[str] = set()
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1; UDP connect sends nothing
        found.add(probe.getsockname()[0])
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5)
        found.update(out.stdout.split())
    result = []
    for text in found:
        with contextlib.suppress(ValueError):
            address = ipaddress.ip_address(text)
            if address.version == 4 and not address.is_loopback and not address.is_unspecified:
                result.append(text)
    return sorted(result)


def test_default_host_is_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNTIME_HOST", raising=False)
    assert ServerSettings().host == "127.0.0.1"


async def test_default_server_listens_on_loopback_only(
    owner: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNTIME_HOST", raising=False)
    settings = ServerSettings(
        port=0,
        environments=[NOSANDBOX],
        env_dirs=[ENV_DIR],
        instance_name=f"{owner}-loopback",
        shutdown_grace_s=0.5,
    )
    assert "host" not in settings.model_fields_set
    server = RuntimeServer(settings)
    try:
        await server.start()
        host, _, port = server.address.rpartition(":")
        assert ipaddress.ip_address(host).is_loopback
        assert int(port) == server.port > 0
        with socket.create_connection(("127.0.0.1", server.port), timeout=5):
            pass
        for address in non_loopback_ipv4():
            with (
                pytest.raises(ConnectionRefusedError),
                socket.create_connection((address, server.port), 2),
            ):
                pass
    finally:
        await server.stop(grace_s=0.5)


# --- episode ids -------------------------------------------------------------------------------


async def test_episode_ids_are_unique_and_unguessable(owner: str) -> None:
    async with (
        running_server(f"{owner}-ids", environments=[NOSANDBOX]) as server,
        connected(server) as stub,
    ):
        started = await asyncio.gather(
            *(
                stub.StartEpisode(start_request("nosandbox"), timeout=RPC_TIMEOUT)
                for _ in range(200)
            )
        )
        ids = [s.episode_id for s in started]
        try:
            assert len(set(ids)) == 200
            suffixes = []
            for episode_id in ids:
                match = EPISODE_ID.match(episode_id)
                assert match is not None, f"{episode_id!r} is not ep_ + URL-safe characters"
                assert len(match.group(1)) >= 20, episode_id
                suffixes.append(match.group(1))
            # Random, not a counter or a timestamp: no shared prefix, and the characters
            # spread over (nearly) the whole URL-safe alphabet.
            assert len({s[:4] for s in suffixes}) > 190
            assert len(set("".join(suffixes))) > 55
        finally:
            await asyncio.gather(*(close_quietly(stub, i) for i in ids))
        assert server.engine.live_count == 0


# --- idle TTL and lifetime ---------------------------------------------------------------------


async def test_idle_episodes_are_reaped_active_ones_are_not(
    owner: str, docker_client: docker.DockerClient
) -> None:
    instance = f"{owner}-idle"
    async with (
        running_server(instance, episode_idle_ttl_s=2.0) as server,
        connected(server) as stub,
        open_episode(stub, "toy") as idle,
        open_episode(stub, "toy") as active,
    ):
        assert episode_containers(docker_client, idle.episode_id)
        await asyncio.sleep(2.3)
        stepped = await step(stub, active.episode_id, assistant(bash("echo still here", "c1")))
        assert "still here" in stepped.observations[0].content
        await server.engine.reap_expired()

        assert server.engine.live_count == 1
        await expect_error(
            step(stub, idle.episode_id, assistant(bash("echo hi", "c1"))),
            FAILED,
            idle.episode_id,
            "idle",
        )
        assert episode_containers(docker_client, idle.episode_id) == []
        # The active one was left alone, its sandbox included.
        again = await step(stub, active.episode_id, assistant(bash("echo again", "c2")))
        assert "again" in again.observations[0].content
        assert episode_containers(docker_client, active.episode_id)
    assert await wait_until_gone(docker_client, instance) == []


async def test_idle_ttl_counts_from_the_end_of_a_long_step(owner: str) -> None:
    """A step that outlasts the TTL does not make its episode look idle right after."""
    async with (
        running_server(f"{owner}-idle-long", episode_idle_ttl_s=1.0) as server,
        connected(server) as stub,
        open_episode(stub, "toy") as started,
    ):
        reaper = asyncio.create_task(_reap_repeatedly(server, 2.0))
        done = await step(stub, started.episode_id, assistant(bash("sleep 1.5; echo ok", "c1")))
        assert "ok" in done.observations[0].content
        assert await reaper == []
        follow = await step(stub, started.episode_id, assistant(bash("echo next", "c2")))
        assert "next" in follow.observations[0].content


async def _reap_repeatedly(server: RuntimeServer, seconds: float) -> list[str]:
    reaped: list[str] = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        reaped += await server.engine.reap_expired()
        await asyncio.sleep(0.1)
    return reaped


async def test_lifetime_limit_reaps_even_an_active_episode(
    owner: str, docker_client: docker.DockerClient
) -> None:
    instance = f"{owner}-lifetime"
    async with (
        running_server(instance, episode_max_lifetime_s=1.5, max_turns=50) as server,
        connected(server) as stub,
        open_episode(stub, "toy", params={"max_turns": 50}) as started,
    ):
        began = time.monotonic()
        turns = 0
        while time.monotonic() - began < 1.8:
            turns += 1
            answer = await step(stub, started.episode_id, assistant(bash("true", f"c{turns}")))
            assert not answer.done
            if time.monotonic() - began < 1.0:
                assert await server.engine.reap_expired() == []  # young and active: kept
            await asyncio.sleep(0.2)
        assert turns >= 5
        # Just stepped, so not idle; but older than its lifetime.
        assert await server.engine.reap_expired() == [started.episode_id]
        await expect_error(
            step(stub, started.episode_id, assistant(bash("echo hi", "late"))),
            FAILED,
            started.episode_id,
            "lifetime",
        )
        assert episode_containers(docker_client, started.episode_id) == []
    assert await wait_until_gone(docker_client, instance) == []


@pytest.mark.slow
async def test_background_reaper_closes_idle_episodes(
    owner: str, docker_client: docker.DockerClient
) -> None:
    """The reaper `RuntimeServer.start` launches runs by itself (every 5 s)."""
    instance = f"{owner}-reaper"
    async with (
        running_server(instance, episode_idle_ttl_s=0.5) as server,
        connected(server) as stub,
        open_episode(stub, "toy") as started,
    ):
        assert episode_containers(docker_client, started.episode_id)
        # No RPC while waiting: an RPC would make the episode active. The engine forgets the
        # episode first, then removes its container.
        left = await asyncio.to_thread(episode_containers, docker_client, started.episode_id)
        for _ in range(75):
            if not left:
                break
            await asyncio.sleep(0.2)
            left = await asyncio.to_thread(episode_containers, docker_client, started.episode_id)
        assert left == []
        assert server.engine.live_count == 0
        await expect_error(
            stub.GetTrajectory(
                pb.GetTrajectoryRequest(episode_id=started.episode_id), timeout=RPC_TIMEOUT
            ),
            FAILED,
            "idle",
        )
    assert await wait_until_gone(docker_client, instance) == []


# --- what the model prints stays off the host's disk -------------------------------------------


async def test_tool_output_is_not_copied_to_the_host_disk(
    owner: str, docker_client: docker.DockerClient
) -> None:
    """The agent's stdout is the channel to the server, so Docker's log driver would store every
    reply on the host, unbounded across turns: host disk becomes a sink the model controls."""
    marker = "MARK" + secrets.token_hex(8)
    async with (
        running_server(f"{owner}-hostlog") as server,
        connected(server) as stub,
        open_episode(stub, "toy") as started,
    ):
        code = f"python3 -c \"print('{marker}' * 2000)\""
        answer = await step(stub, started.episode_id, assistant(bash(code, "c1")))
        assert marker in answer.observations[0].content
        names = episode_containers(docker_client, started.episode_id)
        info = await asyncio.to_thread(docker_client.api.inspect_container, names[0])
        log_path = Path(info.get("LogPath") or "/nonexistent")
        stored = await asyncio.to_thread(
            lambda: log_path.read_bytes() if log_path.is_file() else b""
        )
        assert marker.encode() not in stored, (
            f"{len(stored)} bytes of tool output in {log_path} "
            f"(log driver {info['HostConfig']['LogConfig']['Type']})"
        )


# --- message size ------------------------------------------------------------------------------


async def test_oversized_request_is_resource_exhausted(owner: str) -> None:
    async with (
        running_server(f"{owner}-msgsize", max_message_bytes=64 * 1024) as server,
        connected(server) as stub,
        open_episode(stub, "toy") as started,
    ):
        huge = assistant(call("bash", {"command": "echo " + "x" * (1024 * 1024)}, "c1"))
        error = await expect_error(
            step(stub, started.episode_id, huge), grpc.StatusCode.RESOURCE_EXHAUSTED
        )
        assert "larger than max" in (error.details() or "").lower()
        # Nothing was played; the same episode and the server go on.
        fine = await step(stub, started.episode_id, assistant(bash("echo fine", "c1")), turn=1)
        assert "fine" in fine.observations[0].content
        assert fine.turn == 1
        listing = await stub.ListEnvironments(pb.ListEnvironmentsRequest(), timeout=RPC_TIMEOUT)
        assert listing.environments
