"""v2 memory controller (Documentation/admin-guide/cgroup-v2.rst, "Memory").

OCI's ``swap`` is memory+swap (a v1 notion); v2's ``memory.swap.max`` is swap
alone, so it is converted as runc does (``ConvertMemorySwapToCgroupV2Value``).
"""

from __future__ import annotations

from intermodal.errors import InvalidSpec
from intermodal.runtime.cgroups.manager import exists, write

NAME = "memory"


def applies(resources: dict) -> bool:
    return any(v is not None for v in (resources.get("memory") or {}).values())


def swap_max(swap: int | None, limit: int | None) -> int | str | None:
    """memory.swap.max for OCI swap/limit (pure)."""
    if swap is None:
        return None
    if swap == -1:
        return "max"
    if limit is None or limit == -1:
        raise InvalidSpec("linux.resources.memory.swap: a swap limit on cgroup v2 needs memory.limit too; "
                          "set both in config.json")
    if swap < limit:
        raise InvalidSpec(f"linux.resources.memory.swap ({swap}) is memory+swap and must be >= memory.limit "
                          f"({limit}); fix config.json")
    return swap - limit


def apply(path: str, resources: dict) -> list[str]:
    mem = resources["memory"]
    warnings: list[str] = []
    limit = mem.get("limit")
    swap = swap_max(mem.get("swap"), limit)
    if swap is not None:
        if exists(path, "memory.swap.max"):
            write(path, "memory.swap.max", swap)
        elif swap not in ("max", 0):
            raise InvalidSpec("linux.resources.memory.swap: this kernel has no swap accounting "
                              "(memory.swap.max); remove the swap limit or enable swap accounting")
    if limit is not None:
        write(path, "memory.max", "max" if limit == -1 else limit)
    if mem.get("reservation") is not None:
        r = mem["reservation"]
        write(path, "memory.low", "max" if r == -1 else r)
    for key, why in (("kernel", "deprecated, no v2 equivalent"), ("kernelTCP", "no v2 equivalent"),
                     ("swappiness", "no v2 equivalent"), ("disableOOMKiller", "v2 cannot disable the OOM killer"),
                     ("useHierarchy", "always on in v2")):
        if mem.get(key) not in (None, False):
            warnings.append(f"linux.resources.memory.{key} not applied on cgroup v2: {why}")
    return warnings
