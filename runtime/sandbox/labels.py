"""The labels that mark our containers, so a reaper can find exactly what an instance left."""

from __future__ import annotations

PREFIX = "io.episode-runtime"
MANAGED = f"{PREFIX}.managed"
"""Present on every container this project creates."""
OWNER = f"{PREFIX}.owner"
"""The server instance name that created the container (stable across restarts)."""
BOOT = f"{PREFIX}.boot"
"""The id of the server process that created it, to tell this run from a previous one."""
EPISODE = f"{PREFIX}.episode"
"""The episode the container belongs to."""


def container_labels(owner: str, boot_id: str, episode_id: str) -> dict[str, str]:
    """Labels for a new sandbox container."""
    return {MANAGED: "1", OWNER: owner, BOOT: boot_id, EPISODE: episode_id}


def owner_filter(owner: str) -> dict[str, list[str]]:
    """A Docker `filters` argument matching every container of one instance."""
    return {"label": [f"{MANAGED}=1", f"{OWNER}={owner}"]}


def boot_filter(owner: str, boot_id: str) -> dict[str, list[str]]:
    """A Docker `filters` argument matching the containers of one server process."""
    return {"label": [f"{MANAGED}=1", f"{OWNER}={owner}", f"{BOOT}={boot_id}"]}
