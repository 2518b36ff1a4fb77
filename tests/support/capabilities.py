"""What this machine can do, for `@pytest.mark.requires(...)` skips."""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path


@functools.cache
def has(capability: str) -> bool:
    check = _CHECKS.get(capability)
    if check is None:
        raise ValueError(f"unknown capability {capability!r} in requires(); known: {sorted(_CHECKS)}")
    return check()


def _overlay() -> bool:
    try:
        return "overlay" in Path("/proc/filesystems").read_text()
    except OSError:
        return False


def _cgroup_v2() -> bool:
    unified = (Path("/sys/fs/cgroup/cgroup.controllers"), Path("/sys/fs/cgroup/unified/cgroup.controllers"))
    return any(p.exists() for p in unified)


def _tool(name: str):
    return lambda: shutil.which(name) is not None


_CHECKS = {
    "root": lambda: os.geteuid() == 0,
    "overlay": _overlay,
    "cgroup_v2": _cgroup_v2,
    "busybox": lambda: Path("/bin/busybox").exists() or shutil.which("busybox") is not None,
    "skopeo": _tool("skopeo"),
    "podman": _tool("podman"),
    "umoci": _tool("umoci"),
    "crun": _tool("crun"),
    "runc": _tool("runc"),
    "registry": lambda: Path("/usr/bin/docker-registry").exists(),
    "nft": _tool("nft"),
    "htpasswd": _tool("htpasswd"),
    "openssl": _tool("openssl"),
    "debootstrap": _tool("debootstrap"),
}
