"""Server settings: one typed object, read from flags and `RUNTIME_*` environment variables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationInfo, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from runtime.episodes.limits import EngineLimits
from runtime.sandbox.spec import parse_size


def split_list(value: Any, info: ValidationInfo) -> Any:
    """A list setting given as text: ``a,b,c`` or a JSON list of strings.

    The same forms as an environment variable (``RUNTIME_ENVIRONMENTS=python_math,shell_tasks``)
    and as a flag (``--environments a,b``, repeated flags, which arrive joined by commas, or
    ``--environments '["a", "b"]'``). `NoDecode` keeps pydantic-settings from decoding the text
    as JSON first, which would fail on the comma form; a bad value is one ValueError, which the
    command turns into one line.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    name = info.field_name or ""
    where = f"(--{name.replace('_', '-')} or RUNTIME_{name.upper()})"
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{value!r} is not a JSON list ({exc.msg}, column {exc.colno}); give "
                f"NAME,NAME,... or a JSON list of strings {where}"
            ) from None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ValueError(f"{value!r} is not a list of strings {where}")
        return items
    items = [item.strip() for item in text.split(",")] if text else []
    if "" in items:
        raise ValueError(f"{value!r} has an empty item; give NAME,NAME,... {where}")
    return items


TextList = Annotated[list[str], NoDecode, BeforeValidator(split_list)]
"""A list of strings that an environment variable or a flag may give as ``a,b`` or JSON."""
PathList = Annotated[list[Path], NoDecode, BeforeValidator(split_list)]
"""A list of paths, given the same ways."""


class ServerSettings(BaseSettings):
    """Everything `python -m runtime serve` can be told. Flags win over environment variables."""

    model_config = SettingsConfigDict(
        env_prefix="RUNTIME_",
        extra="forbid",
        use_attribute_docstrings=True,
        cli_kebab_case=True,
        cli_implicit_flags=True,
    )

    host: str = "127.0.0.1"
    """Address to listen on. Loopback by default: expose it only behind auth (see SECURITY)."""
    port: int = Field(default=50051, ge=0, le=65535)
    """TCP port; 0 picks a free one."""
    environments: TextList = ["python_math"]
    """Environments to offer: names in --env-dirs, paths, entry points or module names
    (NAME,NAME or a JSON list, as a flag or as RUNTIME_ENVIRONMENTS)."""
    env_dirs: PathList = [Path("environments")]
    """Folders searched for environments by name (DIR,DIR or a JSON list)."""
    reload_environments: bool = False
    """Re-import an environment whose files changed, for the next episode (the dev loop)."""
    instance_name: str = Field(default="default", pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    """Labels this server's sandboxes; at start-up, containers left by an earlier run with the
    same name are removed (and only those)."""
    max_live_episodes: int = Field(default=256, ge=1)
    """Episodes held at once; beyond it StartEpisode answers RESOURCE_EXHAUSTED."""
    max_live_sandboxes: int = Field(default=320, ge=1)
    """Sandbox containers at once, warm-pool ones included; beyond it RESOURCE_EXHAUSTED."""
    pool_size: int = Field(default=0, ge=0)
    """Sandboxes kept started ahead for each offered environment's sandbox spec, so that
    StartEpisode takes a warm one instead of creating a container (0 disables the pool)."""
    max_turns: int = Field(default=1000, ge=1)
    """Cap on any episode's turns, whatever its environment says."""
    max_call_timeout_s: float = Field(default=600.0, gt=0)
    """Largest per-call timeout a client may ask for."""
    max_output_cap_bytes: int = Field(default=1024 * 1024, ge=256)
    """Largest per-stream output cap a client may ask for."""
    sandbox_isolation: Literal["runc", "gvisor"] | None = None
    """Run every sandbox under this runtime (e.g. gvisor), whatever its environment asks."""
    max_sandbox_memory: str = "4g"
    """Largest memory limit an environment's sandbox may ask for."""
    max_sandbox_cpus: float = Field(default=4.0, gt=0)
    """Largest CPU quota an environment's sandbox may ask for."""
    max_sandbox_pids: int = Field(default=4096, ge=16)
    """Largest process limit an environment's sandbox may ask for."""
    max_tool_calls_per_turn: int = Field(default=64, ge=1)
    """Tool calls run per turn; further calls are answered as not executed."""
    max_message_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """Largest gRPC message received or sent."""
    max_action_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    """Largest action one StepEpisode may carry (message text, raw text, token ids and
    logprobs, metadata); larger is INVALID_ARGUMENT."""
    max_turn_observation_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Text one turn's observations may hold together; beyond it they are cut and marked."""
    max_episode_bytes: int = Field(default=16 * 1024 * 1024, ge=4096)
    """Text an episode's record may hold; the turn that reaches it ends the episode as
    truncated."""
    env_load_timeout_s: float = Field(default=60.0, gt=0)
    """Deadline of one load_environment(**params) (run on a worker thread)."""
    max_loaded_environments: int = Field(default=128, ge=1)
    """Distinct (environment, params) sets kept loaded; least recently used evicted beyond."""
    max_parallel_env_loads: int = Field(default=2, ge=1)
    """Environment loads running at once; more wait (within their deadline), up to 16 per
    load thread, and beyond that are RESOURCE_EXHAUSTED."""
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    """On SIGTERM: how long running steps may finish before they are cancelled."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Logging verbosity."""
    episode_idle_ttl_s: float = Field(default=1800.0, gt=0)
    """An episode with no RPC for this long is closed and its sandbox removed."""
    episode_max_lifetime_s: float = Field(default=6 * 3600.0, gt=0)
    """Wall-clock limit of any episode, however active; then it is closed."""
    auth_token: SecretStr | None = None
    """Require `authorization: Bearer <token>` on every RPC but health checks. Prefer the
    environment variable RUNTIME_AUTH_TOKEN or --auth-token-file over a flag (flags show in ps)."""
    auth_token_file: Path | None = None
    """File holding the bearer token (first line)."""
    tls_cert: Path | None = None
    """PEM server certificate chain; with --tls-key, the server speaks TLS only."""
    tls_key: Path | None = None
    """PEM private key of --tls-cert."""
    tls_client_ca: Path | None = None
    """PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS)."""

    @model_validator(mode="after")
    def _consistent(self) -> ServerSettings:
        parse_size(self.max_sandbox_memory)  # a bad size is a settings error
        if not self.environments:
            raise ValueError("no environment to offer: name one in --environments")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("--tls-client-ca (mutual TLS) needs --tls-cert and --tls-key")
        if self.auth_token is not None and self.auth_token_file is not None:
            raise ValueError("give --auth-token or --auth-token-file, not both")
        if self.auth_token is not None and not self.auth_token.get_secret_value().strip():
            # An unset ${TOKEN} in a compose file must not silently turn auth off.
            raise ValueError("--auth-token is empty; leave it unset to run without auth")
        if self.auth_token_file is not None:
            self.bearer_token()  # unreadable or empty: refuse now, as a settings error
        return self

    def bearer_token(self) -> str | None:
        """The configured token, from the setting or its file; None when auth is off."""
        if self.auth_token is not None:
            return self.auth_token.get_secret_value().strip()
        if self.auth_token_file is not None:
            try:
                lines = self.auth_token_file.read_text().splitlines()
            except OSError as exc:
                raise ValueError(f"cannot read {self.auth_token_file}: {exc.strerror}") from exc
            token = lines[0].strip() if lines else ""
            if not token:
                raise ValueError(f"{self.auth_token_file} holds no token")
            return token
        return None

    def engine_limits(self) -> EngineLimits:
        """The caps the episode engine enforces."""
        return EngineLimits(
            max_live_episodes=self.max_live_episodes,
            max_turns=self.max_turns,
            max_call_timeout_s=self.max_call_timeout_s,
            max_output_cap_bytes=self.max_output_cap_bytes,
            max_tool_calls_per_turn=self.max_tool_calls_per_turn,
            idle_ttl_s=self.episode_idle_ttl_s,
            sandbox_isolation=self.sandbox_isolation,
            max_sandbox_memory_bytes=parse_size(self.max_sandbox_memory),
            max_sandbox_cpus=self.max_sandbox_cpus,
            max_sandbox_pids=self.max_sandbox_pids,
            max_lifetime_s=self.episode_max_lifetime_s,
            max_action_bytes=self.max_action_bytes,
            max_turn_observation_bytes=self.max_turn_observation_bytes,
            max_episode_bytes=self.max_episode_bytes,
            env_load_timeout_s=self.env_load_timeout_s,
            max_loaded_environments=self.max_loaded_environments,
            max_parallel_env_loads=self.max_parallel_env_loads,
        )
