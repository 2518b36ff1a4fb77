"""v1 pids controller: ``pids.max`` (Documentation/admin-guide/cgroup-v1/pids.rst)."""

from __future__ import annotations

from intermodal.runtime.cgroups.manager import write

NAME = "pids"


def applies(resources: dict) -> bool:
    return (resources.get("pids") or {}).get("limit") is not None


def apply(path: str, resources: dict) -> list[str]:
    limit = resources["pids"]["limit"]
    # OCI: 0 or negative means "no limit" (runc writes "max" for both).
    write(path, "pids.max", "max" if limit <= 0 else limit)
    return []
