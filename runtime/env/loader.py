"""Finding environments: by path, by folder name in the search dirs, by entry point, by module."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from runtime.env.environment import Environment
from runtime.errors import EnvironmentHookError, InvalidArgumentError, NotFoundError

ENTRY_POINT_GROUP = "runtime.environments"
"""Installed packages register environments under this entry point group."""
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_RESOLVE_LOCK = threading.RLock()
"""Imports of environment modules are serialised: a server loads environments on worker
threads, and a path import replaces the module's `sys.modules` entries."""


def _module_from_path(path: Path) -> ModuleType:
    path = path.resolve()
    if path.is_dir():
        init = path / "__init__.py"
        if not init.exists():
            candidates = [path / f"{path.name}.py", path / "environment.py"]
            found = next((c for c in candidates if c.exists()), None)
            if found is None:
                raise NotFoundError(f"{path} has no __init__.py, {path.name}.py or environment.py")
            return _module_from_path(found)
        file, search = init, [str(path)]
    else:
        file, search = path, None
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    name = f"runtime_env_{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}_{digest}"
    spec = importlib.util.spec_from_file_location(name, file, submodule_search_locations=search)
    if spec is None or spec.loader is None:
        raise NotFoundError(f"cannot import an environment from {path}")
    # A reload must re-import the package's submodules too, not reuse their cached copies.
    for cached in [key for key in sys.modules if key == name or key.startswith(name + ".")]:
        del sys.modules[cached]
    importlib.invalidate_caches()
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _find_in_dirs(ref: str, search_dirs: Iterable[Path]) -> Path | None:
    for folder in search_dirs:
        for candidate in (folder / ref, folder / f"{ref}.py"):
            if candidate.exists():
                return candidate
    return None


def resolve_module(ref: str, search_dirs: Iterable[Path] = ()) -> ModuleType:
    """The module an environment reference names; `NotFoundError` when nothing matches."""
    path = Path(ref)
    try:
        if ("/" in ref or ref.endswith(".py")) and path.exists():
            return _module_from_path(path)
        if not _NAME.match(ref):
            raise NotFoundError(f"environment {ref!r} not found (not a path or a module name)")
        found = _find_in_dirs(ref, search_dirs)
        if found is not None:
            return _module_from_path(found)
        for point in entry_points(group=ENTRY_POINT_GROUP):
            if point.name == ref:
                loaded = point.load()
                return loaded if isinstance(loaded, ModuleType) else inspect.getmodule(loaded)  # type: ignore[return-value]
        try:
            return importlib.import_module(ref)
        except ModuleNotFoundError as exc:
            if exc.name and ref.startswith(exc.name):
                raise NotFoundError(
                    f"environment {ref!r} not found: not a path, not in "
                    f"{[str(d) for d in search_dirs]}, not an entry point in "
                    f"{ENTRY_POINT_GROUP!r}, not an importable module"
                ) from exc
            raise
    except NotFoundError:
        raise
    except Exception as exc:
        raise EnvironmentHookError(
            f"environment {ref!r} failed to import: {type(exc).__name__}: {exc}"
        ) from exc


def load_environment(
    ref: str, params: Mapping[str, Any] | None = None, *, search_dirs: Iterable[Path] = ()
) -> Environment:
    """Import the environment ``ref`` and call its ``load_environment(**params)``."""
    with _RESOLVE_LOCK:
        module = resolve_module(ref, [Path(folder) for folder in search_dirs])
    factory = getattr(module, "load_environment", None)
    if not callable(factory):
        raise NotFoundError(f"module {module.__name__!r} has no load_environment() function")
    kwargs = dict(params or {})
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as exc:
        raise InvalidArgumentError(
            f"environment {ref!r} does not take these params: {exc}"
        ) from exc
    try:
        env = factory(**kwargs)
    except (ValueError, TypeError) as exc:
        raise InvalidArgumentError(f"environment {ref!r} rejected its params: {exc}") from exc
    except Exception as exc:
        raise EnvironmentHookError(
            f"environment {ref!r} failed in load_environment: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(env, Environment):
        raise EnvironmentHookError(
            f"load_environment() of {ref!r} returned {type(env).__name__}, not an Environment"
        )
    if not env.id:
        env.id = Path(ref).stem if "/" in ref or ref.endswith(".py") else ref
    return env


def discover(search_dirs: Iterable[Path]) -> list[str]:
    """Names of the environments found in the search dirs and installed entry points."""
    names: set[str] = {point.name for point in entry_points(group=ENTRY_POINT_GROUP)}
    for folder in search_dirs:
        if not folder.is_dir():
            continue
        for child in folder.iterdir():
            if child.name.startswith(("_", ".")):
                continue
            if (
                child.is_dir()
                and any(
                    (child / f).exists()
                    for f in ("__init__.py", f"{child.name}.py", "environment.py")
                )
            ) or (child.suffix == ".py"):
                names.add(child.stem)
    return sorted(names)
