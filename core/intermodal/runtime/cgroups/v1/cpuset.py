"""v1 cpuset controller (Documentation/admin-guide/cgroup-v1/cpusets.rst).

A new v1 cpuset cgroup starts with empty ``cpuset.cpus``/``cpuset.mems`` and
refuses tasks (ENOSPC) until both are set, so :func:`init_new` copies the
parent's values into every level the manager created.
"""

from __future__ import annotations

import os

from intermodal.runtime.cgroups.manager import read, write

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


def init_new(created: list[str]) -> None:
    """Fill cpus and mems of freshly made cgroups (top first) from their parents."""
    for d in created:
        parent = os.path.dirname(d)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not read(d, name):
                write(d, name, read(parent, name))
