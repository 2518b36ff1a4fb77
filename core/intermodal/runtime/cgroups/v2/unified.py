"""OCI ``linux.resources.unified``: raw cgroup v2 file writes, checked for safety."""

from __future__ import annotations

from intermodal.errors import InvalidSpec
from intermodal.runtime.cgroups.manager import write

NAME = "unified"


def applies(resources: dict) -> bool:
    return bool(resources.get("unified"))


def apply(path: str, resources: dict) -> list[str]:
    for key, value in resources["unified"].items():
        # Only controller files: no path components, no cgroup core files (procs, subtree_control).
        if "/" in key or key.startswith(".") or key.startswith("cgroup.") or "." not in key:
            raise InvalidSpec(f"linux.resources.unified[{key!r}]: not a controller file name; fix config.json")
        write(path, key, value)
    return []
