"""The environments a server offers, each loaded once per distinct set of params."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.env.environment import Environment
from runtime.env.loader import load_environment
from runtime.errors import EnvironmentHookError, InvalidArgumentError, NotFoundError

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
"""Environments kept loaded with non-default params; the least recently used go first."""


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
        self, refs: Sequence[str], search_dirs: Sequence[Path] = (), *, reload: bool = False
    ) -> None:
        self._search_dirs = [Path(d) for d in search_dirs]
        self._reload = reload
        self._refs: dict[str, str] = {}
        self._loaded: OrderedDict[tuple[str, str], Environment] = OrderedDict()
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

    def get(self, env_id: str, params: Mapping[str, Any] | None = None) -> Environment:
        """The environment ``env_id`` loaded with ``params``; loaded on first use."""
        if env_id not in self._refs:
            offered = ", ".join(self.ids) or "none"
            raise NotFoundError(f"unknown environment {env_id!r}; this server offers: {offered}")
        try:
            key = json.dumps(dict(params or {}), sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"params must be JSON-serialisable: {exc}") from exc
        if self._reload:
            self._drop_if_edited(env_id)
        env = self._loaded.get((env_id, key))
        if env is None:
            env = load_environment(self._refs[env_id], params, search_dirs=self._search_dirs)
            env.id = env_id
            self._loaded[(env_id, key)] = env
            # Bounded: clients choose params, so the cache must not grow without limit.
            while len(self._loaded) > MAX_LOADED:
                oldest = next((k for k in self._loaded if k[1] != "{}"), None)
                if oldest is None:
                    break
                del self._loaded[oldest]
        else:
            self._loaded.move_to_end((env_id, key))
        return env

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
        """The public description of one environment."""
        env = self.get(env_id, params)
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
