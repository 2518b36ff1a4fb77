"""v1 cpu controller: CFS shares/quota, realtime, idle, burst (sched-design-CFS)."""

from __future__ import annotations

import errno

from intermodal.runtime.cgroups.manager import KernelError, exists, write

NAME = "cpu"
_KEYS = ("shares", "quota", "period", "realtimeRuntime", "realtimePeriod", "idle", "burst")


def applies(resources: dict) -> bool:
    cpu = resources.get("cpu") or {}
    return any(cpu.get(k) is not None for k in _KEYS)


def apply(path: str, resources: dict) -> list[str]:
    cpu = resources["cpu"]
    if cpu.get("shares") is not None:
        write(path, "cpu.shares", cpu["shares"])
    period, quota = cpu.get("period"), cpu.get("quota")
    if period:
        try:
            write(path, "cpu.cfs_period_us", period)
        except KernelError as exc:
            # A shorter period with the old quota may be refused; set the quota first then.
            if exc.errno != errno.EINVAL or quota is None:
                raise
            write(path, "cpu.cfs_quota_us", quota)
            write(path, "cpu.cfs_period_us", period)
    if quota is not None:
        write(path, "cpu.cfs_quota_us", quota)
    if cpu.get("burst") is not None:
        write(path, "cpu.cfs_burst_us", cpu["burst"])
    # realtime period before runtime: the runtime must fit into the period.
    if cpu.get("realtimePeriod"):
        write(path, "cpu.rt_period_us", cpu["realtimePeriod"])
    if cpu.get("realtimeRuntime") is not None:
        write(path, "cpu.rt_runtime_us", cpu["realtimeRuntime"])
    warnings = []
    if cpu.get("idle") is not None:
        if exists(path, "cpu.idle"):
            write(path, "cpu.idle", cpu["idle"])
        else:
            warnings.append("linux.resources.cpu.idle: this kernel has no cpu.idle; not applied")
    return warnings
