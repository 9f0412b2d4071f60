"""The results directory of an eval: what was asked, what finished, what failed.

- ``metadata.json``: the run's settings (`EvalMetadata`), rewritten atomically on each change;
- ``results.jsonl``: one `RolloutResult` per finished rollout, appended, flushed and fsynced
  the moment it finishes, each (example_index, rollout_index) at most once;
- ``errors.jsonl``: rollouts that failed (endpoint or runtime errors); resuming runs them again;
- ``summary.json``: the figures of the last summary.

Resuming reads ``results.jsonl`` (dropping a torn last line left by a crash) and schedules only
the keys it does not hold; it refuses a directory whose settings differ from the command's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shlex
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, Field, ValidationError

from runtime.rollout.driver import RolloutResult

log = logging.getLogger(__name__)
MUST_MATCH = ("environment_id", "params", "model", "sampling", "max_turns", "seed")
"""Settings a resumed run must share with the run it continues."""


class ResultsError(Exception):
    """The results directory cannot be used as asked (one readable line)."""


def _version() -> str:
    try:
        return version("episode-runtime")
    except PackageNotFoundError:
        return ""


def default_out(environment: str, model: str) -> Path:
    """results/<env>-<model>-<UTC time>, names reduced to safe characters."""
    names = [
        re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(v).name or v).strip("_") for v in (environment, model)
    ]
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path("results") / f"{names[0]}-{names[1]}-{stamp}"


def resume_command(prog: str, argv: list[str], directory: Path) -> str:
    """The command line that continues a run: ``argv`` without --out, plus --resume DIR."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--out", "-o", "--resume"):
            skip = True
        elif not arg.startswith(("--out=", "--resume=")):
            kept.append(arg)
    return shlex.join([*prog.split(), *kept, "--resume", str(directory)])


def now() -> str:
    """The current UTC time, ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class EvalMetadata(BaseModel):
    """What an eval run was asked to do."""

    environment: str
    """The environment as given on the command line."""
    environment_id: str
    params: dict[str, Any] = Field(default_factory=dict)
    model: str
    base_url: str
    sampling: dict[str, Any] = Field(default_factory=dict)
    num_examples: int
    rollouts_per_example: int
    max_turns: int | None = None
    seed: int | None = None
    server: str | None = None
    """The episode server's address, None for an in-process runtime."""
    instance_name: str | None = None
    """In-process: the owner label of the run's sandboxes. A resume reuses it, and first
    removes the sandboxes a crashed run left under it (and no others)."""
    version: str = Field(default_factory=_version)
    """The episode-runtime package version that ran it."""
    started_at: str = Field(default_factory=now)
    resumed_at: list[str] = Field(default_factory=list)
    finished_at: str | None = None
    status: str = "running"
    """running, finished, interrupted or failed."""


def recorded_instance(directory: Path) -> str | None:
    """The instance name the run kept in ``directory`` used, if it recorded one.

    Read leniently: a missing or unreadable metadata.json gives None here, and the store says
    what is wrong with it when it opens the directory.
    """
    try:
        data = json.loads((directory / "metadata.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    name = data.get("instance_name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else None


class ResultsStore:
    """One results directory; `open` creates it or resumes it."""

    def __init__(self, directory: Path, metadata: EvalMetadata) -> None:
        self.directory = directory
        self.metadata = metadata
        self.results_path = directory / "results.jsonl"
        self.errors_path = directory / "errors.jsonl"
        self.metadata_path = directory / "metadata.json"
        self.summary_path = directory / "summary.json"
        self.results: dict[tuple[int, int], RolloutResult] = {}
        self._results_file: IO[str] | None = None
        self._errors_file: IO[str] | None = None

    @classmethod
    def open(cls, directory: Path, metadata: EvalMetadata, *, resume: bool) -> ResultsStore:
        """Create a fresh results directory, or (``resume``) continue the run kept in one."""
        store = cls(directory, metadata)
        if resume:
            store._resume()
        elif store.metadata_path.exists() or store.results_path.exists():
            raise ResultsError(
                f"{directory} already holds results; pass --resume {directory} to continue "
                "that run, or choose another --out"
            )
        try:
            directory.mkdir(parents=True, exist_ok=True)
            store.write_metadata()
            store._results_file = store.results_path.open("a", encoding="utf-8")
            store._errors_file = store.errors_path.open("a", encoding="utf-8")
        except OSError as exc:
            raise ResultsError(f"cannot write results to {directory}: {exc}") from None
        return store

    def _resume(self) -> None:
        if not self.metadata_path.exists():
            raise ResultsError(f"nothing to resume: {self.metadata_path} does not exist")
        try:
            earlier = EvalMetadata.model_validate_json(self.metadata_path.read_text("utf-8"))
        except (OSError, ValidationError) as exc:
            first = str(exc).splitlines()[0]
            raise ResultsError(f"cannot read {self.metadata_path}: {first}") from None
        mine, theirs = self.metadata.model_dump(), earlier.model_dump()
        differ = [key for key in MUST_MATCH if mine[key] != theirs[key]]
        if differ:
            detail = "; ".join(f"{k}: {theirs[k]!r} there, {mine[k]!r} now" for k in differ)
            raise ResultsError(f"cannot resume {self.directory}: the run differs ({detail})")
        self.metadata.started_at = earlier.started_at
        self.metadata.resumed_at = [*earlier.resumed_at, now()]
        self.results = self._read_results()

    def _read_results(self) -> dict[tuple[int, int], RolloutResult]:
        found: dict[tuple[int, int], RolloutResult] = {}
        if not self.results_path.exists():
            return found
        data = self.results_path.read_bytes()
        if data and not data.endswith(b"\n"):
            # A crash mid-write leaves a torn last line: drop it, that rollout runs again.
            keep = data.rfind(b"\n") + 1
            log.warning("dropping a torn last line of %s", self.results_path)
            with self.results_path.open("r+b") as handle:
                handle.truncate(keep)
            data = data[:keep]
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                result = RolloutResult.model_validate_json(line)
            except ValidationError:
                log.warning("%s:%d is not a rollout result; ignored", self.results_path, number)
                continue
            found.setdefault(result.key, result)
        return found

    def add(self, result: RolloutResult) -> None:
        """Write one finished rollout (to results.jsonl, or errors.jsonl if it failed) now."""
        failed = result.error is not None
        handle = self._errors_file if failed else self._results_file
        if handle is None:
            raise ResultsError("the results store is closed")
        if not failed:
            if result.key in self.results:
                raise ResultsError(f"rollout {result.key} is already in {self.results_path}")
            self.results[result.key] = result
        handle.write(result.model_dump_json() + "\n")
        handle.flush()
        os.fsync(handle.fileno())

    def write_metadata(self) -> None:
        """Replace metadata.json atomically."""
        self._write_atomic(self.metadata_path, self.metadata.model_dump_json(indent=2))

    def write_summary(self, summary: BaseModel) -> None:
        """Replace summary.json atomically."""
        self._write_atomic(self.summary_path, summary.model_dump_json(indent=2))

    def finish(self, status: str) -> None:
        """Record how the run ended and close the files."""
        self.metadata.status = status
        if status == "finished":
            self.metadata.finished_at = now()
        with contextlib.suppress(OSError):
            self.write_metadata()
        for handle in (self._results_file, self._errors_file):
            if handle is not None:
                handle.close()
        self._results_file = self._errors_file = None

    @staticmethod
    def _write_atomic(path: Path, text: str) -> None:
        temporary = path.with_name(path.name + ".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON line of a file (for tests and tools)."""
    lines = path.read_text("utf-8").splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.strip()]
