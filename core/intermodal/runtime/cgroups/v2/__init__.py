"""cgroup v2 backend: one directory in the unified hierarchy.

Controllers must be enabled top-down: every ancestor below the mount lists
them in ``cgroup.subtree_control`` (cgroup-v2.rst, "Enabling and Disabling").
An ancestor holding processes cannot enable controllers for its children
("no internal process" rule), which is why relative paths go under the
parent of our own cgroup. Enabling is best effort; what could not be enabled
makes :meth:`V2Manager.set` fail for exactly the limits that need it.
"""

from __future__ import annotations

import os

from intermodal.errors import InvalidSpec, KernelError
from intermodal.runtime.cgroups import manager as m
from intermodal.runtime.cgroups.v2 import cpu, cpuset, devices, freezer, hugetlb, io, memory, pids, unified

CONTROLLERS = (cpuset, cpu, memory, pids, io, hugetlb, unified, devices)
_KEY = {"cpuset": "cpu", "cpu": "cpu", "memory": "memory", "pids": "pids", "io": "blockIO",
        "hugetlb": "hugepageLimits"}


class V2Manager(m.CgroupManager):
    def __init__(self, path: str, mountpoint: str | None = None) -> None:
        super().__init__()
        self._path = path
        self._mount = mountpoint or _find_mount(path)

    def apply(self, pid: int) -> None:
        self.create()
        m.write(self._path, "cgroup.procs", pid)

    def set(self, resources: dict | None, *, keep_devices: bool = False) -> None:
        resources = resources or {}
        m.check_known(resources)
        for key in ("network", "rdma"):
            if resources.get(key):
                raise InvalidSpec(f"linux.resources.{key}: not supported by imod-runtime; remove it from config.json")
        self.create()
        available = set(self._controllers())
        for ctl in CONTROLLERS:
            if not ctl.applies(resources) or (keep_devices and ctl is devices):
                continue
            if ctl not in (unified, devices) and ctl.NAME not in available:  # devices: a BPF program, no controller
                raise InvalidSpec(f"linux.resources.{_KEY[ctl.NAME]}: the {ctl.NAME} controller is not enabled for "
                                  f"{self._path} (cgroup.controllers lists {sorted(available) or 'none'}); "
                                  "remove the setting or delegate the controller to this cgroup")
            for w in ctl.apply(self._path, resources):
                self._warn(w)

    def destroy(self) -> None:
        m.remove_tree(self._path)

    def paths(self) -> dict[str, str]:
        return {"unified": self._path}

    def freeze(self) -> None:
        freezer.set_frozen(self._path, True)

    def thaw(self) -> None:
        freezer.set_frozen(self._path, False)

    def pids(self) -> list[int]:
        if not os.path.isdir(self._path):
            return []
        return sorted(set(m.procs(self._path)))

    def oom_file(self) -> str | None:
        # memory.events counts this cgroup and its descendants (memory.events.local: only itself).
        return os.path.join(self._path, "memory.events")

    def stats(self) -> dict:
        out: dict = {}
        p = self._path
        if m.exists(p, "memory.current"):
            limit = m.read(p, "memory.max")
            out["memory"] = {
                "usage": int(m.read(p, "memory.current")),
                "max_usage": int(m.read(p, "memory.peak")) if m.exists(p, "memory.peak") else None,
                "limit": None if limit == "max" else int(limit),
            }
        if m.exists(p, "pids.current"):
            limit = m.read(p, "pids.max")
            out["pids"] = {"current": int(m.read(p, "pids.current")), "limit": None if limit == "max" else int(limit)}
        if m.exists(p, "cpu.stat"):  # core file: present even without the cpu controller
            usec = m.read_keyed(p, "cpu.stat").get("usage_usec")
            out["cpu"] = {"usage_ns": None if usec is None else usec * 1000}
        return out

    # -- helpers ------------------------------------------------------------------

    def _controllers(self) -> list[str]:
        return m.read(self._path, "cgroup.controllers").split()

    def create(self) -> None:
        """mkdir the path, enabling the parent's controllers at each level."""
        rel = os.path.relpath(self._path, self._mount)
        parts = [] if rel == "." else rel.split("/")
        cur = self._mount
        for part in parts:
            self._enable_all(cur)
            cur = os.path.join(cur, part)
            m.mkdir_p(cur)

    def _enable_all(self, directory: str) -> None:
        wanted = set(m.read(directory, "cgroup.controllers").split())
        have = set(m.read(directory, "cgroup.subtree_control").split())
        for ctl in sorted(wanted - have):
            try:
                m.write(directory, "cgroup.subtree_control", f"+{ctl}")
            except KernelError:
                # EBUSY: the directory has processes (no internal process rule), or
                # ENOENT/EOPNOTSUPP for a controller that cannot be delegated here.
                continue


def _find_mount(path: str) -> str:
    """The cgroup2 mount that holds ``path`` (from the detected layout)."""
    from intermodal.runtime.cgroups.detect import detect

    mnt = detect().unified
    if mnt and (path == mnt or path.startswith(mnt.rstrip("/") + "/")):
        return mnt
    raise InvalidSpec(f"cgroup path {path} is not inside the cgroup2 mount ({mnt}); "
                      "this host layout changed since the container was created?")
