"""Entering namespaces in one fixed order: join by path first, then create.

The order is a constant because it matters to the kernel: the user
namespace comes first so every namespace created after it is owned by it
(user_namespaces(7)), and the mount namespace comes last so the paths of
the other namespaces are still resolved in the runtime's mount namespace.
Joins come before creations, as in runc's nsexec, so a new user namespace
does not make an existing (host-owned) namespace unreachable.
"""

from __future__ import annotations

import _socket  # for bring_up_loopback, in the child: loaded here, in the parent
import fcntl
import os
import sys

from intermodal.errors import KernelError
from intermodal.runtime import syscalls
from intermodal.runtime.spec import IdMapping, Namespace

TYPE_CHECKING = False  # not `typing`, nor collections.abc: the monitor's launcher imports this for every start
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")

FLAGS = {
    "user": syscalls.CLONE_NEWUSER,
    "ipc": syscalls.CLONE_NEWIPC,
    "uts": syscalls.CLONE_NEWUTS,
    "network": syscalls.CLONE_NEWNET,
    "pid": syscalls.CLONE_NEWPID,
    "cgroup": syscalls.CLONE_NEWCGROUP,
    "time": syscalls.CLONE_NEWTIME,
    "mount": syscalls.CLONE_NEWNS,
}

# The names of the files under /proc/PID/ns/.
PROC_NAMES = {"user": "user", "ipc": "ipc", "uts": "uts", "network": "net", "pid": "pid", "cgroup": "cgroup",
              "time": "time", "mount": "mnt"}


def ordered(namespaces: Iterable[Namespace]) -> list[Namespace]:
    return sorted(namespaces, key=lambda ns: ORDER.index(ns.type))


def open_joins(namespaces: Iterable[Namespace]) -> list[tuple[Namespace, int]]:
    """Open every namespace to join, before any setns changes what the paths mean."""
    opened = []
    for ns in ordered(namespaces):
        if ns.path is None:
            continue
        try:
            opened.append((ns, os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)))
        except OSError as exc:
            raise KernelError.from_oserror(f"open {ns.type} namespace", exc) from None
    return opened


def join(opened: list[tuple[Namespace, int]], sc=syscalls) -> None:
    for ns, fd in opened:
        try:
            if ns.type == "user" and _same_user_namespace(fd):
                continue  # setns(2) refuses to re-enter the caller's own user namespace (EINVAL)
            sc.setns(fd, FLAGS[ns.type], ns.path)
        finally:
            os.close(fd)


def _same_user_namespace(fd: int) -> bool:
    mine = os.stat("/proc/self/ns/user")
    theirs = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def unshare_flags(namespaces: Iterable[Namespace]) -> int:
    """The CLONE_NEW* flags of the namespaces to create, except user (created on its own)."""
    flags = 0
    for ns in namespaces:
        if ns.path is None and ns.type != "user":
            flags |= FLAGS[ns.type]
    return flags


def enter(namespaces: tuple[Namespace, ...], after_user: Callable[[], None] | None = None,
          sc=syscalls) -> None:
    """Join the namespaces with a path, create a new user namespace (then call *after_user*,
    which has the parent write the id maps), then create all the other new ones at once."""
    join(open_joins(namespaces), sc)
    user = next((ns for ns in namespaces if ns.type == "user"), None)
    if user is not None and user.path is None:
        sc.unshare(syscalls.CLONE_NEWUSER)
        if after_user is not None:
            after_user()
    flags = unshare_flags(namespaces)
    if flags:
        sc.unshare(flags)


def creates_network(namespaces: Iterable[Namespace]) -> bool:
    return any(ns.type == "network" and ns.path is None for ns in namespaces)


def bring_up_loopback() -> None:
    """A new network namespace starts with `lo` down (net/core/dev.c registers it so); runc brings it
    up (libcontainer's loopback strategy) and programs expect 127.0.0.1 to answer under --network none.
    SIOCSIFFLAGS on an ifreq (16-byte name, short flags, padding to 40 bytes) avoids a netlink library
    here. Runs in the container's first stage, with what the parent loaded (`socket` and `struct`
    would be imported here, on every start's critical path)."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        got = fcntl.ioctl(s, siocgifflags, _ifreq(b"lo", 0))
        flags = int.from_bytes(got[16:18], sys.byteorder, signed=True)
        fcntl.ioctl(s, siocsifflags, _ifreq(b"lo", flags | iff_up))
    finally:
        s.close()


def _ifreq(name: bytes, flags: int) -> bytes:
    """struct ifreq with ifr_flags, as struct.pack("16sh22x", name, flags) packs it."""
    return name.ljust(16, b"\0")[:16] + flags.to_bytes(2, sys.byteorder, signed=True) + bytes(22)


def container_namespaces(pid: int, types: Iterable[str]) -> tuple[Namespace, ...]:
    """The namespaces of a running container's process, as paths to join (for `exec`)."""
    return tuple(Namespace(t, f"/proc/{pid}/ns/{PROC_NAMES[t]}") for t in types)


def _map_text(mappings: tuple[IdMapping, ...]) -> bytes:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings).encode()


def write_id_maps(pid: int, uid_mappings: tuple[IdMapping, ...], gid_mappings: tuple[IdMapping, ...]) -> None:
    """Write uid_map and gid_map of *pid* (the parent does it: the child has no rights in the parent's namespace)."""
    for name, mappings in (("uid_map", uid_mappings), ("gid_map", gid_mappings)):
        path = f"/proc/{pid}/{name}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, _map_text(mappings))  # the kernel wants the whole map in one write
            finally:
                os.close(fd)
        except OSError as exc:
            raise KernelError.from_oserror(f"write {name}", exc, "check the mappings (host ids must exist)") from None
