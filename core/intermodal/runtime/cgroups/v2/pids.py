"""v2 pids controller: ``pids.max``."""

from __future__ import annotations

from intermodal.runtime.cgroups.manager import write

NAME = "pids"


def applies(resources: dict) -> bool:
    return (resources.get("pids") or {}).get("limit") is not None


def apply(path: str, resources: dict) -> list[str]:
    limit = resources["pids"]["limit"]
    write(path, "pids.max", "max" if limit <= 0 else limit)
    return []
