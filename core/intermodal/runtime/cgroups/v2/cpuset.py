"""v2 cpuset controller: ``cpuset.cpus`` / ``cpuset.mems`` (empty means the parent's)."""

from __future__ import annotations

from intermodal.runtime.cgroups.manager import write

NAME = "cpuset"


def applies(resources: dict) -> bool:
    cpu = resources.get("cpu") or {}
    return bool(cpu.get("cpus") or cpu.get("mems"))


def apply(path: str, resources: dict) -> list[str]:
    cpu = resources["cpu"]
    if cpu.get("cpus"):
        write(path, "cpuset.cpus", cpu["cpus"])
    if cpu.get("mems"):
        write(path, "cpuset.mems", cpu["mems"])
    return []
