"""v2 cpu controller: ``cpu.weight``, ``cpu.max``, ``cpu.max.burst``, ``cpu.idle``."""

from __future__ import annotations

from intermodal.errors import InvalidSpec
from intermodal.runtime.cgroups.manager import exists, read, write

NAME = "cpu"
DEFAULT_PERIOD = 100000


def applies(resources: dict) -> bool:
    cpu = resources.get("cpu") or {}
    return any(cpu.get(k) is not None for k in ("shares", "quota", "period", "idle", "burst",
                                                "realtimeRuntime", "realtimePeriod"))


def shares_to_weight(shares: int) -> int:
    """v1 cpu.shares (2..262144) to v2 cpu.weight (1..10000), runc's formula."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def apply(path: str, resources: dict) -> list[str]:
    cpu = resources["cpu"]
    if cpu.get("realtimeRuntime") or cpu.get("realtimePeriod"):
        raise InvalidSpec("linux.resources.cpu.realtime*: cgroup v2 has no realtime CPU controller; "
                          "remove realtimeRuntime/realtimePeriod from config.json")
    if cpu.get("shares"):
        write(path, "cpu.weight", shares_to_weight(cpu["shares"]))
    quota, period = cpu.get("quota"), cpu.get("period")
    if quota is not None or period:
        old = read(path, "cpu.max").split()  # "max 100000"
        q = (old[0] if old else "max") if quota is None else ("max" if quota <= 0 else str(quota))
        p = period or (int(old[1]) if len(old) == 2 else DEFAULT_PERIOD)
        write(path, "cpu.max", f"{q} {p}")
    if cpu.get("burst") is not None:
        write(path, "cpu.max.burst", cpu["burst"])
    warnings = []
    if cpu.get("idle") is not None:
        if exists(path, "cpu.idle"):
            write(path, "cpu.idle", cpu["idle"])
        else:
            warnings.append("linux.resources.cpu.idle: this kernel has no cpu.idle; not applied")
    return warnings
