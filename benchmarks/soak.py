"""`make soak`: hostile episodes through a real server; every canary answered, nothing left.

The program starts `python -m runtime serve` on a free loopback port under its own instance name
(`soak-<random>` unless told), with every sandbox forced onto one container runtime
(`--sandbox-isolation`), offering the toy environment (the built-in tools). It then plays N
episodes over gRPC, C at a time. Each episode is:

    StartEpisode (call timeout 5 s) -> ONE hostile tool call -> `bash: echo canary`
    -> ScoreEpisode -> CloseEpisode

The hostile calls come from `HOSTILE_ACTIONS` in rotation. Per action it reports the canary
outcomes, the status code of every RPC, the error kind the hostile call's observation carried
(so runc and gVisor can be compared), and the sandboxes lost; for the run, the server's RSS
before and after, and the containers and host processes left once the server has stopped.

It exits 1 on any unanswered canary, any lost sandbox, any INTERNAL or UNKNOWN status, any
container or process left behind, or a server that did not stop cleanly; 2 when it could not
run at all. Observation kinds that differ from the expected ones are reported, never fatal.

Only the server process this program started is signalled (by pid), and only containers
labelled with this run's instance name are removed, on every way out.

Usage: `.venv/bin/python benchmarks/soak.py [--episodes N] [--concurrency C]
[--isolation runc|gvisor] [--json PATH] [--instance-name NAME]`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import docker
import docker.errors
import grpc
from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.table import Table

from runtime.sandbox import labels
from runtime.v1 import runtime_pb2 as pb
from runtime.v1 import runtime_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent
TOY = ROOT / "tests" / "environments" / "toy"
ENV_ID = "toy"

CALL_TIMEOUT_S = 5.0
"""Per-call timeout asked for in StartEpisode, so `sleep 120` is cut short."""
RPC_TIMEOUT_S = 120.0
"""Deadline of every RPC, so a hung server fails an episode instead of hanging the run."""
SERVER_READY_TIMEOUT_S = 60.0
SERVER_STOP_GRACE_S = 60.0
"""SIGTERM, then SIGKILL after this long (the server removes its sandboxes while it stops)."""
LEFTOVER_WAIT_S = 15.0
"""How long containers may take to disappear after the server exited before they count."""
CANARY = "canary"
FATAL_CODES = frozenset({"INTERNAL", "UNKNOWN"})
RPCS = ("StartEpisode", "Hostile", "Canary", "ScoreEpisode", "CloseEpisode")
"""The RPCs of one episode, in order; the two StepEpisode calls are told apart."""
T = TypeVar("T")
OK_KIND = "ok"
CANARY_KINDS = frozenset({OK_KIND, "process_limit"})
"""What an answered canary may report: nothing, or that the runtime was just ending a fork bomb
left running by the hostile call (the canary ran and printed; the model is told why its
background processes are gone)."""
"""The observation kind of a call that reported no error."""


# --------------------------------------------------------------------------- hostile actions


@dataclass(frozen=True)
class HostileAction:
    """One thing a hostile model does in a single tool call."""

    name: str
    tool: Literal["bash", "python"]
    source: str
    """The command (bash) or program (python)."""
    expected: frozenset[str]
    """Observation kinds this action should produce on every runtime (reported if not)."""

    def call(self) -> tuple[str, str]:
        """The tool name and its JSON arguments."""
        key = "command" if self.tool == "bash" else "code"
        return self.tool, json.dumps({key: self.source})


OPEN_FILES = """\
import os
fds = []
try:
    while len(fds) < 100_000:
        fds.append(os.open("/dev/null", os.O_RDONLY))
except OSError as exc:
    print(len(fds), "open:", exc.strerror)
else:
    print(len(fds), "open")
"""

CPU_BURN = """\
import time
end = time.monotonic() + 3
while time.monotonic() < end:
    pass
print("burned")
"""

HOSTILE_ACTIONS: tuple[HostileAction, ...] = (
    # bash backgrounds the bomb (`:|:&`), so the call itself may return at once (`ok`); the
    # bomb then meets the process limit, and what the model reads about it is on the canary.
    HostileAction(
        "fork_bomb", "bash", ":(){ :|:& };:", frozenset({OK_KIND, "process_limit", "timeout"})
    ),
    HostileAction(
        "memory_2gib", "python", "x = bytearray(2 * 1024**3)", frozenset({"out_of_memory"})
    ),
    HostileAction(
        "output_50mb",
        "bash",
        "head -c 50000000 /dev/zero | tr '\\0' x",
        frozenset({"output_truncated"}),
    ),
    HostileAction(
        "setsid_daemon",
        "bash",
        "setsid nohup sleep 1000 >/dev/null 2>&1 & echo started",
        frozenset({OK_KIND}),
    ),
    HostileAction(
        "fill_tmp",
        "bash",
        "dd if=/dev/zero of=/tmp/fill bs=1M count=4096",
        frozenset({"nonzero_exit"}),
    ),
    HostileAction("sleep_past_timeout", "bash", "sleep 120", frozenset({"timeout"})),
    HostileAction("kill_all", "bash", "kill -9 -1", frozenset({"nonzero_exit"})),
    HostileAction("open_files", "python", OPEN_FILES, frozenset({OK_KIND})),
    HostileAction("cpu_burn_3s", "python", CPU_BURN, frozenset({OK_KIND})),
    HostileAction(
        "stdin_reader",
        "bash",
        "cat /proc/1/fd/0 >/dev/null 2>&1 & echo started",
        frozenset({OK_KIND}),
    ),
)
"""The hostile calls, played in rotation: add one here and every soak plays it."""


# --------------------------------------------------------------------------- one episode


@dataclass
class EpisodeResult:
    """What one episode saw."""

    action: str
    codes: dict[str, str] = field(default_factory=dict)
    """RPC (see RPCS) -> status code name; an RPC not sent is absent."""
    hostile_kind: str | None = None
    """The hostile call's observation kind (`ok` when it reported none)."""
    hostile_seen: str = ""
    """The hostile call's observation (first 300 characters)."""
    canary_answered: bool = False
    """The canary call succeeded and its output starts with the line `canary`."""
    canary_clean: bool = False
    """Its observation was exactly `canary` (no note from the runtime, no stray stderr)."""
    canary_seen: str = ""
    """The canary's observation when it was not exactly `canary` (first 300 characters)."""
    sandbox_lost: bool = False
    lost_message: str = ""


def call_kind(step: pb.StepEpisodeResponse) -> str:
    """The error kind of a step's single call, `ok` when it had none."""
    return (step.calls[0].error if step.calls else "no_call") or OK_KIND


def lost(step: pb.StepEpisodeResponse) -> str:
    """The observation that says the sandbox is gone, or ''."""
    for info, message in zip(step.calls, step.observations, strict=False):
        if info.error == "sandbox_error" or message.content.startswith("sandbox error"):
            return message.content[:300]
    return ""


def tool_step(episode_id: str, turn: int, tool: str, arguments: str) -> pb.StepEpisodeRequest:
    call = pb.ToolCall(id=f"call-{turn}", name=tool, arguments=arguments)
    action = pb.Action(message=pb.Message(role="assistant", tool_calls=[call]))
    return pb.StepEpisodeRequest(episode_id=episode_id, action=action, turn=turn)


async def play(stub: pb_grpc.EpisodeServiceStub, action: HostileAction) -> EpisodeResult:
    """One episode: start, the hostile call, the canary, score, close. Never raises an RPC
    error: each RPC's status is recorded instead."""
    result = EpisodeResult(action=action.name)

    async def rpc(name: str, send: Callable[[], Awaitable[T]]) -> T | None:
        try:
            response = await send()
        except grpc.aio.AioRpcError as exc:
            result.codes[name] = exc.code().name
            return None
        result.codes[name] = "OK"
        return response

    limits = pb.EpisodeLimits(call_timeout_seconds=CALL_TIMEOUT_S, max_turns=4)
    start = pb.StartEpisodeRequest(environment_id=ENV_ID, example_index=0, limits=limits)
    started = await rpc("StartEpisode", lambda: stub.StartEpisode(start, timeout=RPC_TIMEOUT_S))
    if not isinstance(started, pb.StartEpisodeResponse):
        return result
    episode_id = started.episode_id
    try:
        tool, arguments = action.call()
        request = tool_step(episode_id, 1, tool, arguments)
        hostile = await rpc("Hostile", lambda: stub.StepEpisode(request, timeout=RPC_TIMEOUT_S))
        if isinstance(hostile, pb.StepEpisodeResponse):
            result.hostile_kind = call_kind(hostile)
            result.hostile_seen = (
                hostile.observations[0].content[:300] if hostile.observations else ""
            )
            result.lost_message = lost(hostile)
        canary_request = tool_step(episode_id, 2, "bash", json.dumps({"command": "echo canary"}))
        canary = await rpc(
            "Canary", lambda: stub.StepEpisode(canary_request, timeout=RPC_TIMEOUT_S)
        )
        if isinstance(canary, pb.StepEpisodeResponse):
            text = canary.observations[0].content if canary.observations else ""
            first_line = text.split("\n", 1)[0].strip()
            result.canary_answered = first_line == CANARY and call_kind(canary) in CANARY_KINDS
            result.canary_clean = result.canary_answered and text.strip() == CANARY
            if not result.canary_clean:
                result.canary_seen = f"[{call_kind(canary)}] {text[:300]}"
            result.lost_message = result.lost_message or lost(canary)
        score = pb.ScoreEpisodeRequest(episode_id=episode_id)
        await rpc("ScoreEpisode", lambda: stub.ScoreEpisode(score, timeout=RPC_TIMEOUT_S))
    finally:
        close = pb.CloseEpisodeRequest(episode_id=episode_id)
        await rpc("CloseEpisode", lambda: stub.CloseEpisode(close, timeout=RPC_TIMEOUT_S))
    result.sandbox_lost = bool(result.lost_message)
    return result


# --------------------------------------------------------------------------- host processes


def proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, session id) of a live process, None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[1]), int(fields[3])


def all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    return ""


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is ``pid``."""
    return [p for p in all_pids() if (stat := proc_stat(p)) is not None and stat[0] == pid]


def stray_processes(server_pid: int, container_ids: set[str]) -> list[str]:
    """`find_strays`, given a few seconds for the last shims to exit after their containers."""
    deadline = time.monotonic() + LEFTOVER_WAIT_S
    while (found := find_strays(server_pid, container_ids)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return found


def find_strays(server_pid: int, container_ids: set[str]) -> list[str]:
    """Processes still alive that belong to the stopped server: its session (it ran in a
    session of its own, so anything it started and left keeps that session id) and any host
    process naming one of its containers (a `runsc` sandbox or a `containerd-shim`)."""
    found: list[str] = []
    for pid in all_pids():
        stat = proc_stat(pid)
        if stat is None or pid == os.getpid():
            continue
        line = cmdline(pid)
        if stat[1] == server_pid or any(cid in line for cid in container_ids):
            found.append(f"{pid} {line[:160]}")
    return found


def vmrss_kib(pid: int) -> int | None:
    """Resident set size of ``pid`` from /proc/<pid>/status, in KiB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


# --------------------------------------------------------------------------- the server


class SetupError(Exception):
    """The soak cannot run at all (no Docker, the server would not start)."""


class Server:
    """The `python -m runtime serve` process this soak starts, and the containers it makes."""

    def __init__(self, instance: str, isolation: str, concurrency: int, log_path: Path) -> None:
        self.instance = instance
        self.log_path = log_path
        self.command = [
            sys.executable, "-m", "runtime", "serve",
            "--host", "127.0.0.1", "--port", "0",
            "--instance-name", instance,
            "--environments", json.dumps([str(TOY)]),
            "--sandbox-isolation", isolation,
            "--max-live-episodes", str(max(64, 2 * concurrency)),
            "--log-level", "WARNING",
        ]  # fmt: skip
        try:
            self.docker = docker.from_env(timeout=120)
            self.docker.ping()
        except docker.errors.DockerException as exc:
            raise SetupError(f"cannot reach Docker: {exc}") from exc
        self.container_ids: set[str] = set()
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = ""

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the server was not started"
        return self.proc.pid

    def start(self) -> None:
        """Spawn the server in a session of its own (its leftovers keep that session id, and a
        Ctrl-C of the soak reaches it only through us); its output goes to the log file."""
        with self.log_path.open("wb") as log_file:
            self.proc = subprocess.Popen(
                self.command,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self) -> str:
        """The address it listens on, once it has said so."""
        deadline = time.monotonic() + SERVER_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            for line in self.log_path.read_text(errors="replace").splitlines():
                if "listening on" in line:
                    self.address = line.rsplit(" ", 1)[-1].strip()
                    return self.address
            if self.proc is None or self.proc.poll() is not None:
                raise SetupError(f"the server is not running: {self.log_tail()}")
            time.sleep(0.2)
        raise SetupError(f"the server did not listen within {SERVER_READY_TIMEOUT_S:.0f} s")

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:])

    def containers(self) -> list[dict[str, object]]:
        found: list[dict[str, object]] = self.docker.api.containers(
            all=True, filters=labels.owner_filter(self.instance)
        )
        return found

    def watch_containers(self) -> Callable[[], None]:
        """Collect the id of every container this instance creates, from Docker's live event
        stream (so short-lived ones count too), to find their host processes later; returns
        the function that ends the watch."""
        filters = {"type": "container", "event": "create", **labels.owner_filter(self.instance)}
        stream = self.docker.api.events(filters=filters, decode=True)

        def collect() -> None:
            with contextlib.suppress(Exception):  # ends when the stream is closed
                for event in stream:
                    self.container_ids.add(str(event.get("id") or event["Actor"]["ID"]))

        thread = threading.Thread(target=collect, name="soak-docker-events", daemon=True)
        thread.start()

        def stop() -> None:
            time.sleep(0.5)  # the last events are on their way
            with contextlib.suppress(Exception):
                stream.close()
            thread.join(timeout=5)

        return stop

    def stop(self) -> str:
        """SIGTERM the server, SIGKILL it after the grace; how it ended."""
        if self.proc is None:
            return "never started"
        if self.proc.poll() is not None:
            return f"had exited ({self.proc.returncode})"
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=SERVER_STOP_GRACE_S)
            return f"exited ({self.proc.returncode})"
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return f"killed after {SERVER_STOP_GRACE_S:.0f} s"

    def leftover_containers(self) -> list[str]:
        """Names of this instance's containers still there, after a short wait."""
        deadline = time.monotonic() + LEFTOVER_WAIT_S
        while True:
            names = [str(item["Names"][0]).lstrip("/") for item in self.containers()]  # type: ignore[index]
            if not names or time.monotonic() > deadline:
                return names
            time.sleep(0.5)

    def remove_containers(self) -> None:
        """Force-remove every container of this instance; never raises."""
        with contextlib.suppress(Exception):
            for item in self.containers():
                with contextlib.suppress(docker.errors.NotFound):
                    self.docker.api.remove_container(item["Id"], force=True, v=True)
        with contextlib.suppress(Exception):
            self.docker.close()


# --------------------------------------------------------------------------- report


class ActionReport(BaseModel):
    """The figures of one hostile action over the run."""

    model_config = ConfigDict(extra="forbid")

    episodes: int = 0
    canaries_answered: int = 0
    canaries_clean: int = 0
    """Canaries whose observation was exactly `canary`: the others carried a note."""
    canary_failures: list[str] = []
    """What the first few unanswered canaries saw."""
    canary_notes: list[str] = []
    """What the first few answered canaries carried beside `canary`."""
    rpc_codes: dict[str, dict[str, int]] = {}
    """RPC -> status code -> count."""
    hostile_kinds: dict[str, int] = {}
    """Observation kind of the hostile call -> count."""
    hostile_samples: dict[str, str] = {}
    """Observation kind -> the first hostile observation of that kind (300 characters)."""
    expected_kinds: list[str] = []
    sandboxes_lost: int = 0
    lost_messages: list[str] = []


class SoakReport(BaseModel):
    """The whole run, as written by `--json`."""

    model_config = ConfigDict(extra="forbid")

    isolation: str
    instance: str
    episodes: int
    concurrency: int
    started_at: str
    duration_s: float = 0.0
    actions: dict[str, ActionReport] = {}
    server_rss_kib_before: int | None = None
    server_rss_kib_after: int | None = None
    server_exit: str = ""
    server_children_before_stop: list[str] = []
    containers_created: int = 0
    """Containers the server created (Docker's events), whose host processes were looked for."""
    containers_left: list[str] = []
    processes_left: list[str] = []
    failures: list[str] = []
    """Why the soak failed; empty when it passed."""
    notes: list[str] = []
    """Reported, not failures: kinds other than the expected ones."""


def tally(report: SoakReport, results: Sequence[EpisodeResult]) -> None:
    """Fold the episodes into per-action figures."""
    for action in HOSTILE_ACTIONS:
        report.actions[action.name] = ActionReport(expected_kinds=sorted(action.expected))
    for res in results:
        entry = report.actions[res.action]
        entry.episodes += 1
        entry.canaries_answered += res.canary_answered
        entry.canaries_clean += res.canary_clean
        if not res.canary_answered and len(entry.canary_failures) < 3:
            entry.canary_failures.append(res.canary_seen or f"canary RPC: {res.codes}")
        elif not res.canary_clean and len(entry.canary_notes) < 3:
            entry.canary_notes.append(res.canary_seen)
        for rpc, code in res.codes.items():
            per_rpc = entry.rpc_codes.setdefault(rpc, {})
            per_rpc[code] = per_rpc.get(code, 0) + 1
        kind = res.hostile_kind or "no_observation"
        entry.hostile_kinds[kind] = entry.hostile_kinds.get(kind, 0) + 1
        entry.hostile_samples.setdefault(kind, res.hostile_seen)
        if res.sandbox_lost:
            entry.sandboxes_lost += 1
            if len(entry.lost_messages) < 3:
                entry.lost_messages.append(res.lost_message)


def judge(report: SoakReport) -> None:
    """Fill in the failures and notes."""
    for name, entry in report.actions.items():
        missed = entry.episodes - entry.canaries_answered
        if missed:
            report.failures.append(f"{name}: {missed} of {entry.episodes} canaries unanswered")
        if entry.sandboxes_lost:
            report.failures.append(f"{name}: {entry.sandboxes_lost} sandbox(es) lost")
        for rpc, codes in entry.rpc_codes.items():
            for code in FATAL_CODES & codes.keys():
                report.failures.append(f"{name}: {rpc} answered {code} {codes[code]} time(s)")
        odd = set(entry.hostile_kinds) - set(entry.expected_kinds)
        if odd:
            report.notes.append(
                f"{name}: kinds {sorted(odd)} beside the expected {entry.expected_kinds}"
            )
    if report.containers_left:
        report.failures.append(f"{len(report.containers_left)} container(s) left")
    if report.processes_left:
        report.failures.append(f"{len(report.processes_left)} host process(es) left")
    if not report.server_exit.startswith("exited (0)"):
        report.failures.append(f"the server did not stop cleanly: {report.server_exit}")


def codes_text(codes: dict[str, int]) -> str:
    return " ".join(f"{code}:{n}" for code, n in sorted(codes.items()))


def render(report: SoakReport, console: Console, verbose: bool = False) -> None:
    """The per-action table, the run's figures, then what went wrong (and, with ``verbose``,
    a sample observation of each kind)."""
    table = Table(
        title=f"soak: {report.episodes} episodes, {report.concurrency} at a time, "
        f"{report.isolation}, {report.duration_s:.0f} s",
        caption="RPC columns: status code:count; canary: answered/episodes (clean = exactly "
        "'canary', no note)",
    )
    table.add_column("action")
    table.add_column("canary", justify="right")
    table.add_column("clean", justify="right")
    table.add_column("hostile call's kind")
    table.add_column("lost", justify="right")
    for rpc in RPCS:
        table.add_column(rpc.removesuffix("Episode"))
    for name, entry in report.actions.items():
        kinds = codes_text(entry.hostile_kinds)
        if set(entry.hostile_kinds) - set(entry.expected_kinds):
            kinds += f" (expected {'/'.join(entry.expected_kinds)})"
        bad = entry.canaries_answered < entry.episodes or entry.sandboxes_lost
        table.add_row(
            name,
            f"{entry.canaries_answered}/{entry.episodes}",
            str(entry.canaries_clean),
            kinds,
            str(entry.sandboxes_lost),
            *(codes_text(entry.rpc_codes.get(rpc, {})) for rpc in RPCS),
            style="red" if bad else None,
        )
    console.print(table)

    def mib(kib: int | None) -> str:
        return "?" if kib is None else f"{kib / 1024:.1f} MiB"

    console.print(
        f"server RSS {mib(report.server_rss_kib_before)} -> {mib(report.server_rss_kib_after)}; "
        f"server {report.server_exit}; containers created {report.containers_created}, "
        f"left: {len(report.containers_left)}; "
        f"host processes left: {len(report.processes_left)}"
    )
    for line in report.containers_left + report.processes_left:
        console.print(f"  left: {line}", markup=False)
    for name, entry in report.actions.items():
        shown = entry.canary_failures + entry.lost_messages
        if verbose:
            shown += entry.canary_notes
            shown += [f"hostile [{k}]: {text}" for k, text in entry.hostile_samples.items()]
        for seen in shown:
            console.print(f"  {name}: {seen!r}", markup=False)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}")
    for failure in report.failures:
        console.print(f"[red]FAIL:[/] {failure}")
    console.print("[green]soak passed[/]" if not report.failures else "[red]soak failed[/]")


# --------------------------------------------------------------------------- the run


async def run_episodes(
    server: Server, total: int, concurrency: int, console: Console
) -> list[EpisodeResult]:
    """N episodes, C at a time, the actions in rotation; a progress line every tenth."""
    gate = asyncio.Semaphore(concurrency)
    done = Counter[str]()
    started = time.monotonic()

    async with grpc.aio.insecure_channel(server.address) as channel:
        await asyncio.wait_for(channel.channel_ready(), SERVER_READY_TIMEOUT_S)
        stub = pb_grpc.EpisodeServiceStub(channel)  # type: ignore[no-untyped-call]

        async def bounded(index: int) -> EpisodeResult:
            async with gate:
                result = await play(stub, HOSTILE_ACTIONS[index % len(HOSTILE_ACTIONS)])
            done["all"] += 1
            done["failed"] += not result.canary_answered
            if done["all"] % max(1, total // 10) == 0 or done["all"] == total:
                console.log(
                    f"{done['all']}/{total} episodes, {done['failed']} canary failure(s), "
                    f"{time.monotonic() - started:.0f} s"
                )
            return result

        return await asyncio.gather(*(bounded(i) for i in range(total)))


def soak(args: argparse.Namespace, console: Console) -> SoakReport:
    """Start the server, play the episodes, stop it, look for leftovers; always cleans up."""
    report = SoakReport(
        isolation=args.isolation,
        instance=args.instance_name,
        episodes=args.episodes,
        concurrency=args.concurrency,
        started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        server = Server(args.instance_name, args.isolation, args.concurrency, Path(tmp) / "log")
        stop_watch = server.watch_containers()
        try:
            server.start()
            address = server.wait_ready()
            console.log(f"server pid {server.pid} at {address} ({args.instance_name})")
            report.server_rss_kib_before = vmrss_kib(server.pid)
            began = time.monotonic()
            results = asyncio.run(run_episodes(server, args.episodes, args.concurrency, console))
            report.duration_s = time.monotonic() - began
            report.server_rss_kib_after = vmrss_kib(server.pid)
            tally(report, results)
            report.server_children_before_stop = [
                f"{pid} {cmdline(pid)[:160]}" for pid in children_of(server.pid)
            ]
        finally:
            report.server_exit = server.stop()
            stop_watch()
            try:
                report.containers_left = server.leftover_containers()
                report.containers_created = len(server.container_ids)
                if server.proc is not None:
                    report.processes_left = stray_processes(server.pid, server.container_ids)
            finally:
                server.remove_containers()
                if report.server_exit != "exited (0)":
                    console.print(f"server log: {server.log_tail()}", markup=False)
                if args.json is not None:  # the whole server log, beside the report
                    args.json.parent.mkdir(parents=True, exist_ok=True)
                    with contextlib.suppress(OSError):
                        shutil.copyfile(server.log_path, server_log_path(args.json))
    judge(report)
    return report


def server_log_path(report_path: Path) -> Path:
    """Where the server's log is kept: beside the JSON report."""
    return report_path.with_suffix(".server.log")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/soak.py",
        description="Hostile episodes against a real server: canaries, status codes, leftovers.",
    )
    parser.add_argument("--episodes", type=int, default=1000, help="episodes to play")
    parser.add_argument("--concurrency", type=int, default=16, help="episodes at a time")
    parser.add_argument(
        "--isolation", choices=("runc", "gvisor"), default="runc", help="container runtime"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument(
        "--instance-name",
        default=f"soak-{secrets.token_hex(4)}",
        help="the server's instance name (its containers' owner label)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="print a sample observation of every kind"
    )
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.concurrency < 1:
        parser.error("--episodes and --concurrency must be positive")
    return args


def interrupt(signum: int, frame: object) -> None:
    """SIGTERM is handled like Ctrl-C: the server is stopped and its containers removed."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)
    console = Console(stderr=False, width=max(120, Console().width))
    try:
        report = soak(args, console)
    except (SetupError, TimeoutError) as exc:
        console.print("[red]soak could not run:[/]", f"{type(exc).__name__}: {exc}")
        return 2
    except KeyboardInterrupt:
        console.print("[red]soak interrupted[/] (its server was stopped, its containers removed)")
        return 130
    render(report, console, verbose=args.verbose)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(report.model_dump_json(indent=2) + "\n")
        console.print(f"report: {args.json}, server log: {server_log_path(args.json)}")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
