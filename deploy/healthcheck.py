"""Health probe of an episode server: exit 0 when `grpc.health.v1` says SERVING, else 1.

The server image runs it as docker-compose.yml's health check; it works from the host too:

    .venv/bin/python deploy/healthcheck.py --address 127.0.0.1:50051

Health checks need no bearer token (the server exempts them). Plaintext only: the compose stack
serves on loopback without TLS.
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVICE = "runtime.v1.EpisodeService"


def main(argv: list[str] | None = None) -> int:
    """Check once; print the status (stdout) or the failure (stderr)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    port = os.environ.get("RUNTIME_PORT", "50051")
    parser.add_argument("--address", default=f"127.0.0.1:{port}", help="host:port to probe")
    parser.add_argument(
        "--service", default=SERVICE, help="service to ask about; '' for the whole server"
    )
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for an answer")
    args = parser.parse_args(argv)
    request = health_pb2.HealthCheckRequest(service=args.service)
    try:
        with grpc.insecure_channel(args.address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(request, timeout=args.timeout)
    except grpc.RpcError as exc:
        print(f"unhealthy: {args.address}: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{args.address} {args.service or '(server)'}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main())
