"""v1 memory controller (Documentation/admin-guide/cgroup-v1/memory.rst)."""

from __future__ import annotations

import errno

from intermodal.errors import InvalidSpec, KernelError
from intermodal.runtime.cgroups.manager import exists, read, write

NAME = "memory"
UNLIMITED = -1


def applies(resources: dict) -> bool:
    return any(v is not None for v in (resources.get("memory") or {}).values())


def apply(path: str, resources: dict) -> list[str]:
    mem = resources["memory"]
    warnings: list[str] = []
    _limit_and_swap(path, mem.get("limit"), mem.get("swap"))
    if mem.get("reservation") is not None:
        write(path, "memory.soft_limit_in_bytes", mem["reservation"])
    if mem.get("kernel") is not None:
        warnings.append("linux.resources.memory.kernel is deprecated by the kernel and was not applied")
    if mem.get("kernelTCP") is not None:
        write(path, "memory.kmem.tcp.limit_in_bytes", mem["kernelTCP"])
    if mem.get("swappiness") is not None:
        if not 0 <= mem["swappiness"] <= 100:
            raise InvalidSpec(f"linux.resources.memory.swappiness: {mem['swappiness']} is not within 0..100")
        write(path, "memory.swappiness", mem["swappiness"])
    if mem.get("disableOOMKiller"):
        write(path, "memory.oom_control", 1)
    if mem.get("useHierarchy") is not None:
        warnings.append("linux.resources.memory.useHierarchy is always on in current kernels and was not applied")
    if mem.get("checkBeforeUpdate"):
        warnings.append("linux.resources.memory.checkBeforeUpdate is not implemented; the limit was set directly")
    return warnings


def _limit_and_swap(path: str, limit: int | None, swap: int | None) -> None:
    """memory.memsw.limit_in_bytes (memory+swap) must stay >= memory.limit_in_bytes
    at every moment, so the order of the two writes depends on the direction."""
    if swap is not None and limit is not None and swap != UNLIMITED and limit != UNLIMITED and swap < limit:
        raise InvalidSpec(f"linux.resources.memory.swap ({swap}) is memory+swap and must be >= memory.limit "
                          f"({limit}); fix config.json")
    has_memsw = exists(path, "memory.memsw.limit_in_bytes")
    if swap is not None and not has_memsw:
        if swap in (UNLIMITED, limit):
            swap = None  # asking for "no swap limit" or "no swap" where swap accounting is off: nothing to do
        else:
            raise InvalidSpec("linux.resources.memory.swap: this kernel has no swap accounting "
                              "(memory.memsw.*); boot with swapaccount=1 or remove the swap limit")
    if limit == UNLIMITED and swap is None and has_memsw:
        swap = UNLIMITED  # "no memory limit" must lift the memory+swap limit too, or it still caps (runc)
    if swap is None:
        if limit is not None:
            _write_limit(path, "memory.limit_in_bytes", limit)
        return
    current_memsw = int(read(path, "memory.memsw.limit_in_bytes"))
    if swap == UNLIMITED or (current_memsw != UNLIMITED and swap > current_memsw):
        _write_limit(path, "memory.memsw.limit_in_bytes", swap)
        if limit is not None:
            _write_limit(path, "memory.limit_in_bytes", limit)
    else:
        if limit is not None:
            _write_limit(path, "memory.limit_in_bytes", limit)
        _write_limit(path, "memory.memsw.limit_in_bytes", swap)


def _write_limit(path: str, name: str, value: int) -> None:
    try:
        write(path, name, value)
    except KernelError as exc:
        if exc.errno == errno.EBUSY:
            raise KernelError(f"write {value} to", f"{path}/{name}", errno.EBUSY,
                              "the container already uses more memory than the new limit") from None
        raise
