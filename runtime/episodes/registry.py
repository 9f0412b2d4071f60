"""The environments a server offers, each loaded once per distinct set of params."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.env.environment import Environment
from runtime.env.loader import load_environment
from runtime.errors import (
    DeadlineExceededError,
    EnvironmentHookError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    RuntimeServiceError,
)

log = logging.getLogger(__name__)
RELOAD_CHECK_S = 1.0
_WATCHED = (".py", ".json", ".jsonl", ".txt", ".yaml", ".yml", ".toml")


def _stamp(env: Environment) -> float:
    """Newest modification time among an environment's source and data files: its package
    folder, or for a single-file module just that file and its dataset (never the whole folder
    the file happens to sit in, which may be site-packages)."""
    module = sys.modules.get(type(env).__module__)
    source = Path(getattr(module, "__file__", "") or "")
    if source.name == "__init__.py":
        paths: Iterable[Path] = (
            p for p in source.parent.rglob("*")
            if p.suffix in _WATCHED and "__pycache__" not in p.parts
        )  # fmt: skip
    else:
        paths = [source]
        if isinstance(env.dataset, str | Path):
            paths.append(env.source_dir / env.dataset)
    newest = 0.0
    for path in paths:
        with contextlib.suppress(OSError):
            newest = max(newest, path.stat().st_mtime)
    return newest


MAX_LOADED = 128
"""Default bound on environments kept loaded with non-default params (LRU beyond it)."""
LOADS_QUEUED_PER_THREAD = 16
"""Loads that may wait for each load thread; beyond them new params are RESOURCE_EXHAUSTED."""
Key = tuple[str, str]


@dataclass(frozen=True)
class EnvironmentInfo:
    """What `DescribeEnvironment` reports."""

    id: str
    description: str
    system_prompt: str | None
    tools: list[dict[str, Any]]
    max_turns: int
    dataset_size: int


class EnvironmentRegistry:
    """Maps environment ids to references, and (id, params) to loaded environments."""

    def __init__(
        self,
        refs: Sequence[str],
        search_dirs: Sequence[Path] = (),
        *,
        reload: bool = False,
    ) -> None:
        self._search_dirs = [Path(d) for d in search_dirs]
        self._reload = reload
        self._load_timeout_s = 60.0
        self._max_loaded = MAX_LOADED
        self._max_parallel_loads = 2
        self._executor: ThreadPoolExecutor | None = None
        self._running = 0
        self._running_lock = threading.Lock()
        self._inflight: dict[Key, asyncio.Task[Environment]] = {}
        self._refs: dict[str, str] = {}
        self._loaded: OrderedDict[Key, Environment] = OrderedDict()
        self._stamps: dict[str, float] = {}
        self._checked: dict[str, float] = {}
        for ref in refs:
            env = load_environment(ref, search_dirs=self._search_dirs)
            if env.id in self._refs:
                raise ValueError(f"two environments have the id {env.id!r}")
            self._refs[env.id] = ref
            self._loaded[(env.id, "{}")] = env
            if reload:
                self._stamps[env.id] = _stamp(env)

    @property
    def ids(self) -> list[str]:
        """Ids of every environment offered."""
        return sorted(self._refs)

    def configure_loads(self, *, timeout_s: float, max_loaded: int, max_parallel: int) -> None:
        """Set the load deadline, the bound on loaded param sets, and the load threads (the
        engine does, from its limits)."""
        self._load_timeout_s = timeout_s
        self._max_loaded = max_loaded
        self._max_parallel_loads = max_parallel

    def get(self, env_id: str, params: Mapping[str, Any] | None = None) -> Environment:
        """The environment ``env_id`` loaded with ``params``; loaded on first use, on this
        thread (for command-line tools; a server uses `load`)."""
        key = self._key(env_id, params)
        env = self._cached(key)
        if env is None:
            env = self._build(key, params)
            self._keep(key, env)
        return env

    async def load(self, env_id: str, params: Mapping[str, Any] | None = None) -> Environment:
        """The environment ``env_id`` loaded with ``params``, loading it on a worker thread when
        it is not loaded yet, so a slow `load_environment` never holds up the event loop.

        Loads beyond the load threads wait for one, within the same deadline. Raises
        `DeadlineExceededError` (DEADLINE_EXCEEDED) past the load deadline and
        `ResourceExhaustedError` when that many loads already wait. Concurrent requests for the
        same params share one load.
        """
        key = self._key(env_id, params)
        env = self._cached(key)
        if env is not None:
            return env
        task = self._inflight.get(key)
        if task is None:
            with self._running_lock:
                if self._running >= self._max_parallel_loads * LOADS_QUEUED_PER_THREAD:
                    raise ResourceExhaustedError(
                        f"{self._running} environment loads are running or waiting, the most "
                        "this server takes at once; retry later or use params already loaded"
                    )
                self._running += 1
            task = asyncio.create_task(self._load_off_loop(key, dict(params or {})))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._load_done(key, done))
        # Shielded: a caller that gives up does not cancel the load others wait for.
        return await asyncio.shield(task)

    async def _load_off_loop(self, key: Key, params: dict[str, Any]) -> Environment:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self._max_parallel_loads, thread_name_prefix="env-load"
            )
        job: Future[Environment] = self._executor.submit(self._build_in_thread, key, params)
        job.add_done_callback(self._load_finished)
        try:
            env = await asyncio.wait_for(asyncio.wrap_future(job), self._load_timeout_s)
        except TimeoutError:
            raise DeadlineExceededError(
                f"environment {key[0]!r} did not load within {self._load_timeout_s:g} s with "
                "these params (load_environment is still running on the server)"
            ) from None
        self._keep(key, env)
        return env

    def _load_done(self, key: Key, task: asyncio.Task[Environment]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have given up already

    def _load_finished(self, _: Future[Environment]) -> None:
        with self._running_lock:
            self._running -= 1

    def _build_in_thread(self, key: Key, params: dict[str, Any]) -> Environment:
        """Load on a worker thread; anything the environment's code raises, `SystemExit` and
        `KeyboardInterrupt` included (signals never reach this thread), is its bug."""
        try:
            env = self._build(key, params)
            with contextlib.suppress(Exception):
                env.examples  # noqa: B018  (warm the dataset here, not on the event loop)
            return env
        except RuntimeServiceError:
            raise
        except BaseException as exc:
            log.error("environment %r: loading raised %s", key[0], type(exc).__name__)
            raise EnvironmentHookError(
                f"environment {key[0]!r} failed in load_environment: {type(exc).__name__}: {exc}"
            ) from None

    def _build(self, key: Key, params: Mapping[str, Any] | None) -> Environment:
        env = load_environment(self._refs[key[0]], params, search_dirs=self._search_dirs)
        env.id = key[0]
        return env

    def _key(self, env_id: str, params: Mapping[str, Any] | None) -> Key:
        if env_id not in self._refs:
            offered = ", ".join(self.ids) or "none"
            raise NotFoundError(f"unknown environment {env_id!r}; this server offers: {offered}")
        try:
            return env_id, json.dumps(dict(params or {}), sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"params must be JSON-serialisable: {exc}") from exc

    def _cached(self, key: Key) -> Environment | None:
        if self._reload:
            self._drop_if_edited(key[0])
        env = self._loaded.get(key)
        if env is not None:
            self._loaded.move_to_end(key)
        return env

    def _keep(self, key: Key, env: Environment) -> None:
        self._loaded[key] = env
        self._loaded.move_to_end(key)
        # Bounded: clients choose params, so the cache must not grow without limit.
        while len(self._loaded) > self._max_loaded + len(self._refs):
            oldest = next((k for k in self._loaded if k[1] != "{}"), None)
            if oldest is None:
                break
            del self._loaded[oldest]

    def close(self) -> None:
        """Stop the load threads (a load still running finishes on its own)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def _drop_if_edited(self, env_id: str) -> None:
        """Forget the loaded copies of an environment whose files changed (at most once a
        second), so the next episode imports the edited code: the dev loop's hot reload."""
        now = time.monotonic()
        if now - self._checked.get(env_id, 0.0) < RELOAD_CHECK_S:
            return
        self._checked[env_id] = now
        loaded = next((e for (i, _), e in self._loaded.items() if i == env_id), None)
        if loaded is None:
            return
        stamp = _stamp(loaded)
        if stamp != self._stamps.get(env_id):
            log.info("environment %r changed on disk; reloading it", env_id)
            for key in [k for k in self._loaded if k[0] == env_id]:
                del self._loaded[key]
            self._stamps[env_id] = stamp

    def describe(self, env_id: str, params: Mapping[str, Any] | None = None) -> EnvironmentInfo:
        """The public description of one environment (loaded on this thread if need be)."""
        return self.info(env_id, self.get(env_id, params))

    @staticmethod
    def info(env_id: str, env: Environment) -> EnvironmentInfo:
        """The public description of a loaded environment."""
        if (
            not isinstance(env.max_turns, int)
            or isinstance(env.max_turns, bool)
            or env.max_turns < 1
        ):
            raise EnvironmentHookError(
                f"environment {env_id!r}: max_turns is {env.max_turns!r}, not a positive integer"
            )
        try:
            size = len(env.examples)
            tools = env.tool_schemas()
        except (OSError, ValueError, TypeError) as exc:
            raise EnvironmentHookError(
                f"environment {env_id!r}: its dataset or tools failed to load: {exc}"
            ) from exc
        return EnvironmentInfo(
            id=env_id,
            description=env.description or (type(env).__doc__ or "").strip().split("\n")[0],
            system_prompt=env.system_prompt,
            tools=tools,
            max_turns=env.max_turns,
            dataset_size=size,
        )
