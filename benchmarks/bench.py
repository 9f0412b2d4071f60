"""`make bench`: the DESIGN.md performance figures, each beside a raw-Docker baseline.

Everything is measured in one run on this machine:

* the baseline drives the Docker SDK directly (`containers.run`, `exec_run`) with the same
  hardening as our sandboxes (`container_options`), a plain `sleep infinity` as the command;
* our figures go end to end through real `python -m runtime serve` subprocesses over gRPC
  (`grpc.aio`, the generated stubs), with real sandboxes.

Each server gets its own instance name (`bench-<run>-<role>`); every container this script or
its servers create carries one of those names, and all of them are removed on the way out, as
are the server processes this script started (and only those).

Usage: `.venv/bin/python benchmarks/bench.py [--quick] [--out PATH] [--max-live N] [--skip-live]`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib
import json
import math
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import docker
import docker.errors
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from runtime.sandbox import labels
from runtime.sandbox.docker_backend import container_options
from runtime.sandbox.spec import SandboxSpec
from runtime.v1 import runtime_pb2 as pb
from runtime.v1 import runtime_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent
ENV_PATH = Path(__file__).resolve().parent / "bench_env"
ENV_ID = "bench_env"
DEFAULT_OUT = Path("bench-results/bench.json")

RPC_TIMEOUT_S = 120.0
"""Deadline of every RPC, so a hung server fails its phase instead of hanging the run."""
SERVER_READY_TIMEOUT_S = 60.0
SERVER_STOP_GRACE_S = 30.0
"""SIGTERM, then SIGKILL after this long (the server removes its sandboxes while it stops)."""
POOL_SETTLE_S = 0.4
"""Extra wait after the pool's containers run, for their agents to answer the handshake."""
CONCURRENCY = 32
START_PARALLELISM = 8
"""Episodes started or closed at once when a phase needs many (not a timed figure)."""

# DESIGN.md, "Performance targets" (2-core CI machine).
TARGET_WARM_START_MS = 15.0
TARGET_STEP_MS = 5.0
TARGET_STEPS_PER_S = 400.0
TARGET_LIVE_EPISODES = 200.0
TARGET_RSS_KIB = 1024.0


class SetupError(Exception):
    """The benchmark cannot run at all (Docker, image, environment or output dir missing)."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Config:
    """Sample counts and durations of one run."""

    run_n: int
    exec_n: int
    start_n: int
    step_n: int
    duration_s: float
    concurrency: int
    pool_size: int
    max_live: int
    skip_live: bool
    quick: bool
    out: Path


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(
        prog="benchmarks/bench.py",
        description="Measure the DESIGN.md performance targets beside a raw Docker SDK baseline.",
    )
    parser.add_argument("--quick", action="store_true", help="small N and D: a smoke run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    parser.add_argument(
        "--max-live",
        type=int,
        default=None,
        help="idle episodes to try to hold at once (default 250; 20 with --quick)",
    )
    parser.add_argument("--skip-live", action="store_true", help="skip the live-episodes phase")
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds of each throughput phase"
    )
    parser.add_argument(
        "--pool-size", type=int, default=8, help="warm pool size of the warm-start server"
    )
    ns = parser.parse_args(argv)
    quick: bool = ns.quick
    max_live = ns.max_live if ns.max_live is not None else (20 if quick else 250)
    duration = ns.duration if ns.duration is not None else (1.0 if quick else 5.0)
    if max_live < 1 or duration <= 0 or ns.pool_size < 1:
        parser.error("--max-live, --duration and --pool-size must be positive")
    return Config(
        run_n=5 if quick else 15,
        exec_n=10 if quick else 50,
        start_n=5 if quick else 15,
        step_n=20 if quick else 200,
        duration_s=duration,
        concurrency=CONCURRENCY,
        pool_size=ns.pool_size,
        max_live=max_live,
        skip_live=ns.skip_live,
        quick=quick,
        out=ns.out,
    )


# --------------------------------------------------------------------------- figures


@dataclass
class Figure:
    """One measured number, or why it could not be measured."""

    value: float | None = None
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


Figures = dict[str, Figure]


def describe(exc: BaseException) -> str:
    """One line naming what went wrong."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (p99 of fewer than 100 samples is the largest)."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def record_latency(figs: Figures, prefix: str, samples_s: Sequence[float]) -> None:
    """`<prefix>_p50` / `<prefix>_p99` in milliseconds from samples in seconds."""
    if not samples_s:
        raise RuntimeError("no samples")
    ms = [s * 1000.0 for s in samples_s]
    detail = {
        "n": len(ms),
        "min_ms": min(ms),
        "mean_ms": statistics.fmean(ms),
        "max_ms": max(ms),
    }
    figs[f"{prefix}_p50"] = Figure(value=statistics.median(ms), detail=detail)
    figs[f"{prefix}_p99"] = Figure(value=percentile(ms, 99), detail=detail)


def record_error(figs: Figures, keys: Iterable[str], exc: BaseException) -> None:
    """Mark every not-yet-measured figure in ``keys`` as failed with ``exc``."""
    message = describe(exc)
    for key in keys:
        if key not in figs:
            figs[key] = Figure(error=message)


def latency_keys(prefix: str) -> list[str]:
    return [f"{prefix}_p50", f"{prefix}_p99"]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- process/cleanup


class Tracker:
    """Every server process and instance name this run created, for the final cleanup."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.procs: list[subprocess.Popen[bytes]] = []
        self.owners: list[str] = []
        self._docker: docker.DockerClient | None = None

    def owner(self, role: str) -> str:
        name = f"bench-{self.run_id}-{role}"
        if name not in self.owners:
            self.owners.append(name)
        return name

    def docker(self) -> docker.DockerClient:
        if self._docker is None:
            self._docker = docker.from_env(timeout=120, max_pool_size=2 * CONCURRENCY)
        return self._docker

    def remove_containers(self, owner: str) -> int:
        """Force-remove every container labelled with ``owner``; how many there were."""
        api = self.docker().api
        found = api.containers(all=True, quiet=True, filters=labels.owner_filter(owner))
        for item in found:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_container(item["Id"], force=True, v=True)
        return len(found)

    def cleanup(self) -> None:
        """Stop what is still running and remove what is still labelled; never raises."""
        for proc in self.procs:
            with contextlib.suppress(Exception):
                stop_process(proc, grace_s=5.0)
        for owner in self.owners:
            try:
                removed = self.remove_containers(owner)
                if removed:
                    log(f"cleanup: removed {removed} container(s) of {owner}")
            except Exception as exc:
                log(f"cleanup: could not remove containers of {owner}: {describe(exc)}")
        if self._docker is not None:
            with contextlib.suppress(Exception):
                self._docker.close()


def stop_process(proc: subprocess.Popen[bytes], grace_s: float = SERVER_STOP_GRACE_S) -> str:
    """SIGTERM the process we started, SIGKILL it after ``grace_s``; how it ended."""
    if proc.poll() is not None:
        return f"already exited ({proc.returncode})"
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
        return f"exited ({proc.returncode})"
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        return f"killed after {grace_s:.0f} s"


def spawn(command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start a server process in its own session, its output in ``log_path``."""
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of the bench reaches it only through us
        )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def vmrss_kib(pid: int) -> int:
    """Resident set size of ``pid`` from /proc, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


# --------------------------------------------------------------------------- baseline (raw SDK)


def baseline_options(owner: str) -> dict[str, Any]:
    """`containers.run` kwargs: our sandbox hardening, `sleep infinity` instead of the agent."""
    opts = container_options(SandboxSpec(), labels.container_labels(owner, "baseline", "baseline"))
    opts.update(opts.pop("host_config"))
    opts.update(command=["sleep", "infinity"], detach=True, stdin_open=False)
    return opts


def run_container(client: docker.DockerClient, opts: dict[str, Any]) -> Any:
    return client.containers.run(**opts)


def remove_container(container: Any) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        container.remove(force=True, v=True)


def exec_echo(container: Any) -> None:
    result = container.exec_run("echo hi")
    if result.exit_code != 0 or result.output.strip() != b"hi":
        raise RuntimeError(f"exec_run('echo hi') gave {result.exit_code}: {result.output!r}")


def baseline_run(client: docker.DockerClient, opts: dict[str, Any], n: int) -> list[float]:
    """`containers.run` (create + start), each container removed untimed after."""
    samples: list[float] = []
    for _ in range(n):
        started = time.perf_counter()
        container = run_container(client, opts)
        samples.append(time.perf_counter() - started)
        remove_container(container)
    return samples


def baseline_exec(client: docker.DockerClient, opts: dict[str, Any], n: int) -> list[float]:
    """`exec_run("echo hi")` on one container, after one untimed warm-up exec."""
    container = run_container(client, opts)
    try:
        exec_echo(container)
        samples: list[float] = []
        for _ in range(n):
            started = time.perf_counter()
            exec_echo(container)
            samples.append(time.perf_counter() - started)
        return samples
    finally:
        remove_container(container)


def baseline_exec_throughput(
    client: docker.DockerClient, opts: dict[str, Any], threads: int, duration_s: float
) -> tuple[float, dict[str, Any]]:
    """`threads` threads, each looping `exec_run` on its own container (one per episode)."""
    with ThreadPoolExecutor(threads) as pool, ThreadPoolExecutor(START_PARALLELISM) as setup:
        containers: list[Any] = []
        try:
            futures = [setup.submit(run_container, client, opts) for _ in range(threads)]
            errors: list[BaseException] = []
            for future in futures:
                try:
                    containers.append(future.result())
                except Exception as exc:
                    errors.append(exc)
            if errors:
                raise errors[0]
            list(pool.map(exec_echo, containers))  # warm-up, untimed
            barrier = threading.Barrier(threads + 1)
            stop = threading.Event()

            def worker(container: Any) -> int:
                barrier.wait()
                count = 0
                while not stop.is_set():
                    exec_echo(container)
                    count += 1
                return count

            workers = [pool.submit(worker, c) for c in containers]
            try:
                barrier.wait()
                started = time.perf_counter()
                time.sleep(duration_s)
            finally:
                stop.set()
                barrier.abort()  # frees workers still waiting if we were interrupted
            counts = [w.result() for w in workers]
            elapsed = time.perf_counter() - started
        finally:
            list(setup.map(remove_container, containers))
    total = sum(counts)
    return total / elapsed, {"execs": total, "elapsed_s": elapsed, "threads": threads}


def run_baseline(cfg: Config, tracker: Tracker, figs: Figures) -> None:
    owner = tracker.owner("baseline")
    client = tracker.docker()
    opts = baseline_options(owner)
    log(f"baseline: containers.run x{cfg.run_n}")
    try:
        record_latency(figs, "run", baseline_run(client, opts, cfg.run_n))
    except Exception as exc:
        record_error(figs, latency_keys("run"), exc)
    log(f"baseline: exec_run x{cfg.exec_n}")
    try:
        record_latency(figs, "exec", baseline_exec(client, opts, cfg.exec_n))
    except Exception as exc:
        record_error(figs, latency_keys("exec"), exc)
    log(f"baseline: exec_run, {cfg.concurrency} threads for {cfg.duration_s:g} s")
    try:
        rate, detail = baseline_exec_throughput(client, opts, cfg.concurrency, cfg.duration_s)
        figs["exec_tput"] = Figure(value=rate, detail=detail)
    except Exception as exc:
        record_error(figs, ["exec_tput"], exc)
    with contextlib.suppress(Exception):
        tracker.remove_containers(owner)


# --------------------------------------------------------------------------- our server


@dataclass
class Server:
    """A running `python -m runtime serve` subprocess and a stub on one channel to it."""

    role: str
    owner: str
    proc: subprocess.Popen[bytes]
    address: str
    log_path: Path
    stub: pb_grpc.EpisodeServiceStub


async def wait_serving(
    address: str, proc: subprocess.Popen[bytes], log_path: Path, timeout_s: float
) -> None:
    """Poll grpc.health.v1 until the server answers SERVING."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"server exited ({proc.returncode}) before serving: {tail(log_path)}"
                )
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.aio.AioRpcError as exc:
                last = describe(exc)
            if time.monotonic() > deadline:
                raise TimeoutError(f"server not SERVING after {timeout_s:.0f} s ({last})")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def running_server(
    cfg: Config, tracker: Tracker, role: str, *, pool_size: int, max_live: int
) -> AsyncIterator[Server]:
    """Start a server subprocess, wait for SERVING, yield it; always stop it and clean up."""
    owner = tracker.owner(role)
    port = free_port()
    log_path = cfg.out.parent / f"server-{role}.log"
    command = [
        sys.executable,
        "-m",
        "runtime",
        "serve",
        "--port",
        str(port),
        "--instance-name",
        owner,
        "--environments",
        str(ENV_PATH),
        "--pool-size",
        str(pool_size),
        "--max-live-episodes",
        str(max_live),
        "--max-live-sandboxes",
        str(max_live + pool_size),
        "--max-turns",
        "100000",
        "--shutdown-grace-s",
        "1",
        "--log-level",
        "WARNING",
    ]
    proc = spawn(command, log_path)
    tracker.procs.append(proc)
    address = f"127.0.0.1:{port}"
    log(f"server {owner} (pid {proc.pid}, pool {pool_size}) starting on {address}")
    try:
        await wait_serving(address, proc, log_path, SERVER_READY_TIMEOUT_S)
        async with grpc.aio.insecure_channel(address) as channel:
            stub = pb_grpc.EpisodeServiceStub(channel)  # type: ignore[no-untyped-call]
            yield Server(role, owner, proc, address, log_path, stub)
    finally:
        how = await asyncio.to_thread(stop_process, proc)
        removed = await asyncio.to_thread(tracker.remove_containers, owner)
        log(
            f"server {owner} {how}"
            + (f"; removed {removed} container(s) it left" if removed else "")
        )


def start_request() -> pb.StartEpisodeRequest:
    return pb.StartEpisodeRequest(environment_id=ENV_ID, example_index=0)


def tool_action(tool: str, arguments: dict[str, str]) -> pb.Action:
    call = pb.ToolCall(id="call_1", name=tool, arguments=json.dumps(arguments))
    return pb.Action(message=pb.Message(role="assistant", tool_calls=[call]))


BASH_ECHO = tool_action("bash", {"command": "echo hi"})
PYTHON_PRINT = tool_action("python", {"code": "print('hi')"})


async def start_episode(stub: pb_grpc.EpisodeServiceStub) -> str:
    reply = await stub.StartEpisode(start_request(), timeout=RPC_TIMEOUT_S)
    episode_id: str = reply.episode_id
    return episode_id


async def close_episode(stub: pb_grpc.EpisodeServiceStub, episode_id: str) -> None:
    await stub.CloseEpisode(pb.CloseEpisodeRequest(episode_id=episode_id), timeout=RPC_TIMEOUT_S)


async def step(
    stub: pb_grpc.EpisodeServiceStub, episode_id: str, action: pb.Action, turn: int
) -> None:
    """Play one turn and check that the call ran (a fast failure must not pass as a step)."""
    request = pb.StepEpisodeRequest(episode_id=episode_id, action=action, turn=turn)
    reply = await stub.StepEpisode(request, timeout=RPC_TIMEOUT_S)
    if reply.turn != turn or reply.replayed or len(reply.calls) != 1 or reply.calls[0].error:
        error = reply.calls[0].error if reply.calls else "no call"
        raise RuntimeError(f"turn {turn} did not run cleanly (turn {reply.turn}, {error})")
    if "hi" not in (reply.observations[0].content if reply.observations else ""):
        raise RuntimeError(f"turn {turn}: unexpected output {reply.observations!r}"[:300])


async def bounded(limit: int, jobs: Iterable[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run the jobs at most ``limit`` at a time; results and exceptions, in order."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(one(j) for j in jobs), return_exceptions=True))


async def close_all(stub: pb_grpc.EpisodeServiceStub, episode_ids: Sequence[str]) -> None:
    await bounded(
        START_PARALLELISM, [functools.partial(close_episode, stub, e) for e in episode_ids]
    )


@contextlib.asynccontextmanager
async def episodes(stub: pb_grpc.EpisodeServiceStub, count: int) -> AsyncIterator[list[str]]:
    """``count`` started episodes (started a few at a time), all closed on exit."""
    results = await bounded(START_PARALLELISM, [lambda: start_episode(stub)] * count)
    ids = [r for r in results if isinstance(r, str)]
    try:
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise failed[0]
        yield ids
    finally:
        await close_all(stub, ids)


async def measure_starts(
    stub: pb_grpc.EpisodeServiceStub,
    n: int,
    before_each: Callable[[], Awaitable[None]] | None = None,
) -> list[float]:
    """StartEpisode latencies; each episode closed (untimed) right after."""
    samples: list[float] = []
    for _ in range(n):
        if before_each is not None:
            await before_each()
        started = time.perf_counter()
        episode_id = await start_episode(stub)
        samples.append(time.perf_counter() - started)
        await close_episode(stub, episode_id)
    return samples


async def measure_steps(stub: pb_grpc.EpisodeServiceStub, action: pb.Action, n: int) -> list[float]:
    """``n`` sequential steps on one episode, after one untimed step that starts the session."""
    async with episodes(stub, 1) as (episode_id,):
        await step(stub, episode_id, action, 1)
        samples: list[float] = []
        for turn in range(2, n + 2):
            started = time.perf_counter()
            await step(stub, episode_id, action, turn)
            samples.append(time.perf_counter() - started)
        return samples


async def measure_step_throughput(
    stub: pb_grpc.EpisodeServiceStub, concurrency: int, duration_s: float
) -> tuple[float, dict[str, Any]]:
    """``concurrency`` episodes, each a loop of `echo hi` steps for ``duration_s``."""
    async with episodes(stub, concurrency) as ids:
        await asyncio.gather(*(step(stub, e, BASH_ECHO, 1) for e in ids))  # warm-up, untimed
        latencies: list[float] = []
        started = time.perf_counter()
        deadline = started + duration_s

        async def loop(episode_id: str) -> int:
            turn, count = 2, 0
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                await step(stub, episode_id, BASH_ECHO, turn)
                latencies.append(time.perf_counter() - t0)
                turn += 1
                count += 1
            return count

        counts = await asyncio.gather(*(loop(e) for e in ids))
        elapsed = time.perf_counter() - started
    total = sum(counts)
    return total / elapsed, {
        "steps": total,
        "elapsed_s": elapsed,
        "episodes": concurrency,
        "step_p50_ms": statistics.median(latencies) * 1000.0 if latencies else None,
        "step_p99_ms": percentile(latencies, 99) * 1000.0 if latencies else None,
    }


async def running_count(tracker: Tracker, owner: str) -> int:
    filters = labels.owner_filter(owner) | {"status": ["running"]}
    found = await asyncio.to_thread(tracker.docker().api.containers, quiet=True, filters=filters)
    return len(found)


async def phase_cold_and_steps(cfg: Config, tracker: Tracker, figs: Figures) -> None:
    """Server without a pool: cold starts, sequential steps, concurrent steps."""
    keys = [*latency_keys("cold"), *latency_keys("bash"), *latency_keys("py"), "steps_tput"]
    try:
        async with running_server(
            cfg, tracker, "cold", pool_size=0, max_live=cfg.concurrency + 16
        ) as server:
            stub = server.stub
            await close_episode(stub, await start_episode(stub))  # first-use costs, untimed
            log(f"ours: StartEpisode cold x{cfg.start_n}")
            try:
                record_latency(figs, "cold", await measure_starts(stub, cfg.start_n))
            except Exception as exc:
                record_error(figs, latency_keys("cold"), exc)
            for prefix, action, what in (
                ("bash", BASH_ECHO, "bash echo hi"),
                ("py", PYTHON_PRINT, "python print('hi')"),
            ):
                log(f"ours: StepEpisode {what} x{cfg.step_n}")
                try:
                    record_latency(figs, prefix, await measure_steps(stub, action, cfg.step_n))
                except Exception as exc:
                    record_error(figs, latency_keys(prefix), exc)
            log(f"ours: {cfg.concurrency} concurrent episodes stepping for {cfg.duration_s:g} s")
            try:
                rate, detail = await measure_step_throughput(stub, cfg.concurrency, cfg.duration_s)
                figs["steps_tput"] = Figure(value=rate, detail=detail)
            except Exception as exc:
                record_error(figs, ["steps_tput"], exc)
    except Exception as exc:
        record_error(figs, keys, exc)


async def phase_warm(cfg: Config, tracker: Tracker, figs: Figures) -> None:
    """Server with a warm pool: each start waits until the pool is full again."""
    keys = latency_keys("warm")
    try:
        async with running_server(
            cfg, tracker, "warm", pool_size=cfg.pool_size, max_live=cfg.concurrency
        ) as server:

            async def pool_full() -> None:
                deadline = time.monotonic() + 60.0
                while await running_count(tracker, server.owner) < cfg.pool_size:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"the warm pool did not refill to {cfg.pool_size}")
                    await asyncio.sleep(0.1)
                await asyncio.sleep(POOL_SETTLE_S)

            log(f"ours: StartEpisode warm (pool {cfg.pool_size}) x{cfg.start_n}")
            await pool_full()
            await close_episode(server.stub, await start_episode(server.stub))  # untimed
            record_latency(figs, "warm", await measure_starts(server.stub, cfg.start_n, pool_full))
    except Exception as exc:
        record_error(figs, keys, exc)


async def phase_live(cfg: Config, tracker: Tracker, figs: Figures) -> None:
    """Hold idle episodes up to the target; the server's RSS growth per episode."""
    keys = ["live_count", "rss_kib"]
    target = cfg.max_live
    try:
        async with running_server(
            cfg, tracker, "live", pool_size=0, max_live=target + 16
        ) as server:
            stub = server.stub
            async with episodes(stub, 1) as (episode_id,):  # first-use costs, untimed
                await step(stub, episode_id, BASH_ECHO, 1)
            await asyncio.sleep(0.5)
            rss_before = vmrss_kib(server.proc.pid)
            held: list[str] = []
            failure: str | None = None
            log(f"ours: holding up to {target} idle episodes")
            started = time.perf_counter()
            try:
                for index in range(target):
                    try:
                        held.append(await start_episode(stub))
                    except Exception as exc:
                        failure = f"episode {index + 1} failed: {describe(exc)}"
                        log(failure)
                        break
                    if (index + 1) % 50 == 0:
                        log(f"ours: {index + 1} episodes live")
                elapsed = time.perf_counter() - started
                await asyncio.sleep(0.5)
                rss_after = vmrss_kib(server.proc.pid)
            finally:
                log(f"ours: closing {len(held)} episodes")
                await close_all(stub, held)
            count = len(held)
            detail: dict[str, Any] = {
                "asked": target,
                "first_failure": failure,
                "start_elapsed_s": elapsed,
            }
            figs["live_count"] = Figure(value=float(count), detail=detail)
            if count == 0:
                raise RuntimeError(failure or "no episode could be started")
            figs["rss_kib"] = Figure(
                value=(rss_after - rss_before) / count,
                detail={"rss_before_kib": rss_before, "rss_after_kib": rss_after, "n": count},
            )
    except Exception as exc:
        record_error(figs, keys, exc)


FILL_COMMAND = "head -c 1048576 /dev/zero | tr '\\0' o; head -c 1048576 /dev/zero | tr '\\0' e >&2"
"""1 MiB to stdout and 1 MiB to stderr: over a turn's observation cap, at the largest output
cap a client may ask for."""


async def phase_record_at_caps(cfg: Config, tracker: Tracker, figs: Figures) -> None:
    """Server memory for one episode whose record is at the caps: turns of 2 MiB of output
    until the record is full (the episode ends truncated), then the whole trajectory fetched
    page by page. The figure is the server's RSS growth over an idle episode's."""
    keys = ["record_rss_kib"]
    try:
        async with running_server(cfg, tracker, "record", pool_size=0, max_live=4) as server:
            stub = server.stub
            async with episodes(stub, 1) as (episode_id,):  # first-use costs, not counted
                await step(stub, episode_id, BASH_ECHO, 1)
            await asyncio.sleep(0.5)
            rss_before = vmrss_kib(server.proc.pid)
            request = start_request()
            request.limits.output_cap_bytes = 1024 * 1024
            started = await stub.StartEpisode(request, timeout=RPC_TIMEOUT_S)
            episode_id = started.episode_id
            try:
                action = tool_action("bash", {"command": FILL_COMMAND})
                turn, done = 0, False
                while not done and turn < 1000:
                    turn += 1
                    reply = await stub.StepEpisode(
                        pb.StepEpisodeRequest(episode_id=episode_id, action=action, turn=turn),
                        timeout=RPC_TIMEOUT_S,
                    )
                    done = reply.done
                pages, page_bytes, token = 0, 0, ""
                while pages == 0 or token:
                    page = await stub.GetTrajectory(
                        pb.GetTrajectoryRequest(
                            episode_id=episode_id, page_token=token, max_page_bytes=4 * 1024**2
                        ),
                        timeout=RPC_TIMEOUT_S,
                    )
                    pages += 1
                    page_bytes += page.ByteSize()
                    token = page.trajectory.next_page_token
                await asyncio.sleep(0.5)
                rss_after = vmrss_kib(server.proc.pid)
            finally:
                await close_episode(stub, episode_id)
            figs["record_rss_kib"] = Figure(
                value=float(rss_after - rss_before),
                detail={
                    "turns": turn,
                    "trajectory_pages": pages,
                    "trajectory_bytes": page_bytes,
                    "rss_before_kib": rss_before,
                    "rss_after_kib": rss_after,
                },
            )
    except Exception as exc:
        record_error(figs, keys, exc)


async def run_ours(cfg: Config, tracker: Tracker, figs: Figures) -> None:
    await phase_cold_and_steps(cfg, tracker, figs)
    await phase_warm(cfg, tracker, figs)
    if cfg.skip_live:
        for key in ("live_count", "rss_kib"):
            figs[key] = Figure(error="skipped (--skip-live)")
    else:
        await phase_live(cfg, tracker, figs)
    await phase_record_at_caps(cfg, tracker, figs)


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Row:
    """How one of our figures is shown: its baseline and its DESIGN.md target."""

    key: str
    label: str
    unit: Literal["ms", "/s", "episodes", "KiB"]
    baseline_key: str | None = None
    baseline_label: str = ""
    target: float | None = None
    higher_is_better: bool = False


ROWS = [
    Row("cold_p50", "StartEpisode p50, cold (pool 0)", "ms", "run_p50", "containers.run p50"),
    Row("cold_p99", "StartEpisode p99, cold (pool 0)", "ms", "run_p99", "containers.run p99"),
    Row(
        "warm_p50",
        "StartEpisode p50, warm pool",
        "ms",
        "run_p50",
        "containers.run p50",
        TARGET_WARM_START_MS,
    ),
    Row("warm_p99", "StartEpisode p99, warm pool", "ms", "run_p99", "containers.run p99"),
    Row(
        "bash_p50",
        "StepEpisode p50, bash `echo hi`",
        "ms",
        "exec_p50",
        "exec_run p50",
        TARGET_STEP_MS,
    ),
    Row("bash_p99", "StepEpisode p99, bash `echo hi`", "ms", "exec_p99", "exec_run p99"),
    Row(
        "py_p50",
        "StepEpisode p50, python `print('hi')`",
        "ms",
        "exec_p50",
        "exec_run p50",
        TARGET_STEP_MS,
    ),
    Row("py_p99", "StepEpisode p99, python `print('hi')`", "ms", "exec_p99", "exec_run p99"),
    Row(
        "steps_tput",
        f"steps/s, {CONCURRENCY} concurrent episodes",
        "/s",
        "exec_tput",
        f"exec_run/s, {CONCURRENCY} threads",
        TARGET_STEPS_PER_S,
        higher_is_better=True,
    ),
    Row(
        "live_count",
        "live episodes held at once",
        "episodes",
        target=TARGET_LIVE_EPISODES,
        higher_is_better=True,
    ),
    Row("rss_kib", "server RSS per idle episode", "KiB", target=TARGET_RSS_KIB),
    Row("record_rss_kib", "server memory for one episode at the caps", "KiB"),
]

HEADERS = ["figure", "ours", "baseline (raw docker SDK)", "ours/base", "target", "result"]


def fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.1f} ms" if value >= 10 else f"{value:.2f} ms"
    if unit == "/s":
        return f"{value:.0f}/s"
    if unit == "episodes":
        return f"{value:.0f}"
    return f"{value:.0f} KiB ({value / 1024:.2f} MiB)"


def fmt_target(row: Row) -> str:
    if row.target is None:
        return "-"
    sign = ">=" if row.higher_is_better else "<="
    if row.unit == "KiB":
        return f"{sign} {row.target / 1024:g} MiB"
    if row.unit == "episodes":
        return f"{sign} {row.target:g}"
    return f"{sign} {fmt(row.target, row.unit)}"


def short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def build_rows(figs: Figures) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """The table's cells, and the same rows as JSON records."""
    cells: list[list[str]] = []
    records: list[dict[str, Any]] = []
    for row in ROWS:
        fig = figs.get(row.key, Figure(error="not measured"))
        base = None
        if row.baseline_key:
            base = figs.get(row.baseline_key, Figure(error="not measured"))
        record: dict[str, Any] = {
            "key": row.key,
            "figure": row.label,
            "unit": row.unit,
            "value": fig.value,
            "error": fig.error,
            "detail": fig.detail,
            "baseline": None,
            "ratio": None,
            "target": None,
            "result": None,
        }
        skipped = fig.value is None and (fig.error or "").startswith("skipped")
        if fig.value is not None:
            ours = fmt(fig.value, row.unit)
        else:
            ours = str(fig.error) if skipped else f"error: {fig.error}"
        if base is None:
            base_cell = f"n/a (target {fmt_target(row)})"
        elif base.value is None:
            base_cell = f"{row.baseline_label}: error: {base.error}"
        else:
            base_cell = f"{row.baseline_label} {fmt(base.value, row.unit)}"
        record["baseline"] = (
            None
            if base is None
            else {
                "key": row.baseline_key,
                "label": row.baseline_label,
                "value": base.value,
                "error": base.error,
                "detail": base.detail,
            }
        )
        ratio_cell = "-"
        if fig.value is not None and base is not None and base.value:
            ratio = fig.value / base.value
            record["ratio"] = ratio
            ratio_cell = f"{ratio:.3f}x" if ratio < 0.1 else f"{ratio:.2f}x"
        result_cell = "-"
        if row.target is not None:
            record["target"] = {
                "value": row.target,
                "op": ">=" if row.higher_is_better else "<=",
                "text": fmt_target(row),
            }
            asked = fig.detail.get("asked")
            capped = isinstance(asked, int) and asked < row.target
            if fig.value is not None and capped and fig.value >= float(asked or 0):
                # Everything asked for was held, but less was asked than the target needs.
                result_cell = f"n/a (--max-live {asked})"
                record["result"] = "not_tested"
            elif fig.value is not None:
                ok = fig.value >= row.target if row.higher_is_better else fig.value <= row.target
                result_cell = "pass" if ok else "MISS"
                record["result"] = result_cell.lower()
            else:
                result_cell = "skipped" if skipped else "error"
                record["result"] = result_cell
        cells.append(
            [row.label, short(ours), short(base_cell), ratio_cell, fmt_target(row), result_cell]
        )
        records.append(record)
    return cells, records


def print_table(title: str, cells: list[list[str]], notes: Sequence[str]) -> None:
    """With `rich` when it is installed, else plain aligned text."""
    try:
        rich_console: Any = importlib.import_module("rich.console")
        rich_table: Any = importlib.import_module("rich.table")
    except ImportError:
        widths = [max(len(r[i]) for r in [HEADERS, *cells]) for i in range(len(HEADERS))]
        line = "  ".join("-" * w for w in widths)
        print(title)
        print(line)
        print("  ".join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=True)).rstrip())
        print(line)
        for row in cells:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        print(line)
        for note in notes:
            print(note)
        return
    table = rich_table.Table(title=title, caption="\n".join(notes), caption_justify="left")
    for header in HEADERS:
        table.add_column(header, justify="right" if header in ("ours", "ours/base") else "left")
    for row in cells:
        table.add_row(*row)
    rich_console.Console(width=200).print(table)


def git_commit() -> str | None:
    with contextlib.suppress(Exception):
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    return None


def report(cfg: Config, tracker: Tracker, figs: Figures, started: float) -> None:
    cells, records = build_rows(figs)
    mode = "quick" if cfg.quick else "full"
    title = (
        f"episode-runtime bench ({mode}; {os.cpu_count()} CPUs; run {tracker.run_id}; "
        f"{time.time() - started:.0f} s)"
    )
    notes = [
        "ours/base: latency < 1 is faster than raw Docker; throughput > 1 is more than raw Docker.",
        f"N: containers.run {cfg.run_n}, exec_run {cfg.exec_n}, StartEpisode {cfg.start_n}, "
        f"StepEpisode {cfg.step_n}; throughput {cfg.duration_s:g} s; p99 is nearest-rank.",
        "Steps follow one untimed warm-up step (it starts the persistent session); baseline "
        f"throughput: {cfg.concurrency} threads, one container each.",
    ]
    print_table(title, cells, notes)
    payload = {
        "meta": {
            "run_id": tracker.run_id,
            "mode": mode,
            "started_unix": started,
            "elapsed_s": time.time() - started,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "commit": git_commit(),
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
            "notes": notes,
        },
        "rows": records,
        "figures": {key: asdict(fig) for key, fig in sorted(figs.items())},
    }
    cfg.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {cfg.out}")


# --------------------------------------------------------------------------- main


def check_setup(cfg: Config, tracker: Tracker) -> None:
    try:
        cfg.out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SetupError(f"cannot create {cfg.out.parent}: {exc}") from exc
    if not (ENV_PATH / "__init__.py").exists():
        raise SetupError(f"the bench environment is missing: {ENV_PATH}")
    image = SandboxSpec().image
    try:
        client = tracker.docker()
        client.ping()
        client.images.get(image)
    except docker.errors.ImageNotFound as exc:
        raise SetupError(f"image {image} not found; build it with `make images`") from exc
    except Exception as exc:
        raise SetupError(f"Docker is not usable: {describe(exc)}") from exc


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    tracker = Tracker(secrets.token_hex(3))
    signal.signal(signal.SIGTERM, _raise_interrupt)  # so the cleanup below still runs
    started = time.time()
    figs: Figures = {}
    try:
        check_setup(cfg, tracker)
        run_baseline(cfg, tracker, figs)
        asyncio.run(run_ours(cfg, tracker, figs))
    except SetupError as exc:
        print(f"bench: setup failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        tracker.cleanup()
    report(cfg, tracker, figs, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
