"""cgroup v1 backend: one directory per mounted hierarchy.

Also used on hybrid hosts, where it joins the cgroup2 mount as well (no
controllers are set there; it makes the container visible to tools reading
the unified tree, as runc does) and uses hugetlb from it when only cgroup2
offers that controller.
"""

from __future__ import annotations

import errno
import os

from intermodal.errors import InvalidSpec, KernelError
from intermodal.runtime.cgroups import manager as m
from intermodal.runtime.cgroups.v1 import blkio, cpu, cpuset, devices, freezer, hugetlb, memory, pids

# Applied in this order; no file depends on another controller's (the order
# inside one controller, e.g. memory's limit vs memsw, is that module's business).
CONTROLLERS = (cpuset, cpu, memory, pids, blkio, hugetlb, devices)

# Which resource key needs which controller, for clear errors when it is missing.
_NEEDS = {"memory": "memory", "pids": "pids", "blockIO": "blkio", "hugepageLimits": "hugetlb"}


class V1Manager(m.CgroupManager):
    def __init__(self, paths: dict[str, str], unified: str | None = None) -> None:
        super().__init__()
        self._paths = dict(paths)
        self._unified = unified

    # -- lifecycle ----------------------------------------------------------------

    def apply(self, pid: int) -> None:
        for name, path in self._paths.items():
            made = m.mkdir_p(path)
            if name == "cpuset":
                cpuset.init_new(made or [path])  # fills only empty cpus/mems: an existing cgroup keeps its own
            m.write(path, "cgroup.procs", pid)
        if self._unified:
            m.mkdir_p(self._unified)
            m.write(self._unified, "cgroup.procs", pid)

    def set(self, resources: dict | None, *, keep_devices: bool = False) -> None:
        if not resources:
            resources = {}
        m.check_known(resources)
        if resources.get("unified"):
            raise InvalidSpec("linux.resources.unified: needs a cgroup v2 host, this one uses cgroup v1 "
                              "controllers; use the v1 fields (memory, cpu, pids, blockIO) instead")
        for key in ("network", "rdma"):
            if resources.get(key):
                raise InvalidSpec(f"linux.resources.{key}: not supported by imod-runtime; remove it from config.json")
        for ctl in CONTROLLERS:
            if not ctl.applies(resources) or (keep_devices and ctl is devices):
                continue
            path = self._paths.get(ctl.NAME)
            if path is None:
                if ctl is devices:
                    self._devices_without_controller(resources)
                    continue
                if ctl is hugetlb and self._unified_offers("hugetlb"):
                    # Hybrid host whose hugetlb lives on the cgroup2 mount: enable it down to our
                    # cgroup there and set the limit through the v2 backend.
                    from intermodal.runtime.cgroups.v2 import V2Manager
                    from intermodal.runtime.cgroups.v2 import hugetlb as hugetlb2

                    V2Manager(self._unified).create()
                    if "hugetlb" in m.read(self._unified, "cgroup.controllers").split():
                        hugetlb2.apply(self._unified, resources)
                        continue
                key = next((k for k, c in _NEEDS.items() if c == ctl.NAME), "cpu")
                raise InvalidSpec(f"linux.resources.{key}: the {ctl.NAME} cgroup controller is not available on "
                                  "this host; remove the setting from config.json or mount the controller")
            for w in ctl.apply(path, resources):
                self._warn(w)

    def destroy(self) -> None:
        errors: list[KernelError] = []
        until = m.deadline()
        for path in [*self._paths.values(), *([self._unified] if self._unified else [])]:
            try:
                m.remove_tree(path, until)
            except KernelError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def paths(self) -> dict[str, str]:
        out = dict(self._paths)
        if self._unified:
            out["unified"] = self._unified
        return out

    # -- control ------------------------------------------------------------------

    def freeze(self) -> None:
        self._set_frozen(True)

    def thaw(self) -> None:
        self._set_frozen(False)

    def _set_frozen(self, frozen: bool) -> None:
        if "freezer" not in self._paths and self._unified:
            # No v1 freezer but a cgroup2 mount: cgroup.freeze is a core file there, no controller needed.
            from intermodal.runtime.cgroups.v2 import freezer as freezer2

            freezer2.set_frozen(self._unified, frozen)
            return
        freezer.set_state(self._need("freezer"), "FROZEN" if frozen else "THAWED")

    def pids(self) -> list[int]:
        for name in ("pids", "memory", "freezer", "cpu", "devices", *self._paths):
            path = self._paths.get(name)
            if path and os.path.isdir(path):
                return sorted(set(m.procs(path)))
        return []

    def oom_file(self) -> str | None:
        path = self._paths.get("memory")
        return os.path.join(path, "memory.oom_control") if path else None

    def stats(self) -> dict:
        out: dict = {}
        mem = self._paths.get("memory")
        if mem and os.path.isdir(mem):
            out["memory"] = {
                "usage": _int(m.read(mem, "memory.usage_in_bytes")),
                "max_usage": _int(m.read(mem, "memory.max_usage_in_bytes")),
                "limit": _int(m.read(mem, "memory.limit_in_bytes")),
            }
        pid = self._paths.get("pids")
        if pid and os.path.isdir(pid):
            limit = m.read(pid, "pids.max")
            out["pids"] = {"current": _int(m.read(pid, "pids.current")),
                           "limit": None if limit == "max" else _int(limit)}
        acct = self._paths.get("cpuacct")
        if acct and os.path.isdir(acct):
            out["cpu"] = {"usage_ns": _int(m.read(acct, "cpuacct.usage"))}
        return out

    # -- helpers ------------------------------------------------------------------

    def _need(self, controller: str) -> str:
        path = self._paths.get(controller)
        if path is None:
            raise KernelError(f"cgroup controller {controller}", None, errno.ENOTSUP,
                              f"the {controller} cgroup v1 controller is not mounted on this host")
        return path

    def _devices_without_controller(self, resources: dict) -> None:
        """Device rules on a host without the v1 devices hierarchy: through the cgroup2 mount's eBPF
        device program where there is one (the kernel asks both), else refused: never unrestricted."""
        if not self._unified:
            raise KernelError("cgroup controller devices", None, errno.ENOTSUP,
                              "the devices cgroup v1 controller is not mounted and there is no cgroup2 mount, so "
                              "device access cannot be restricted; mount the devices controller "
                              "(/sys/fs/cgroup/devices) or cgroup2")
        from intermodal.runtime.cgroups.v2 import devices as devices2

        m.mkdir_p(self._unified)
        devices2.apply(self._unified, resources)

    def _unified_offers(self, controller: str) -> bool:
        """Whether the cgroup2 mount's root lists ``controller`` (it can be enabled for us)."""
        if not self._unified:
            return False
        from intermodal.runtime.cgroups.detect import detect

        return controller in detect().v2_controllers


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
