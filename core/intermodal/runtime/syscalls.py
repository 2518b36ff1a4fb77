"""The thin ctypes seam to the kernel calls Python 3.11 does not wrap (ctypes' types from cabi.py).

Every function raises :class:`KernelError` naming the operation and the path,
so a failure deep in the container child still says what it was doing.
Callers take this module as a parameter (``sc=syscalls``) so ordering and
flag logic can be unit-tested with a recorder instead of the kernel.
"""

from __future__ import annotations

import os
import sys

from intermodal.errors import KernelError
from intermodal.runtime import cabi  # not ctypes: ~1.5 ms of every container start

# <linux/sched.h>
CLONE_NEWTIME = 0x00000080
CLONE_PARENT = 0x00008000
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# <linux/mount.h>
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2

# <linux/prctl.h>
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3
PR_SET_KEEPCAPS = 8
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39

SIGCHLD = 17

# Syscall numbers glibc has no wrapper for (pivot_root) or whose wrapper
# would run fork handlers we do not want (clone).
_SYSCALLS = {
    "x86_64": {"clone": 56, "pivot_root": 155},
    "aarch64": {"clone": 220, "pivot_root": 41},
    "ppc64le": {"clone": 120, "pivot_root": 203},
    "s390x": {"clone": 120, "pivot_root": 217},
}

_libc: cabi.CDLL | None = None


def libc() -> cabi.CDLL:
    """The C library already loaded in this process (loaded once, before any fork)."""
    global _libc
    if _libc is None:
        _libc = cabi.CDLL(None)
    return _libc


def _check(result: int, op: str, path: str | None = None, hint: str = "") -> int:
    if result < 0:
        raise KernelError(op, path, cabi.get_errno(), hint)
    return result


def _b(value: str | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return os.fsencode(value)


def _nr(name: str) -> int:
    table = _SYSCALLS.get(os.uname().machine)
    if table is None:
        raise KernelError(name, None, 38, f"unsupported architecture {os.uname().machine}")
    return table[name]


def unshare(flags: int) -> None:
    _check(libc().unshare(cabi.c_int(flags)), "unshare", None)


def setns(fd: int, nstype: int, path: str | None = None) -> None:
    _check(libc().setns(cabi.c_int(fd), cabi.c_int(nstype)), "setns", path)


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    result = libc().mount(_b(source), _b(target), _b(fstype), cabi.c_ulong(flags), _b(data))
    _check(result, "mount", target)


def umount2(target: str, flags: int = 0) -> None:
    _check(libc().umount2(_b(target), cabi.c_int(flags)), "umount2", target)


def pivot_root(new_root: str, put_old: str) -> None:
    result = libc().syscall(cabi.c_long(_nr("pivot_root")), _b(new_root), _b(put_old))
    _check(result, "pivot_root", new_root)


def clone_parent() -> int:
    """fork(2), but the child's parent is our parent (CLONE_PARENT), like runc's nsexec.

    Used by the short-lived first child so the container's pid 1 becomes a
    child of the runtime that waits for it. The raw syscall runs no fork
    handlers: the caller must be single-threaded (it is: a fresh fork child).
    """
    zero = cabi.c_void_p(0)
    result = libc().syscall(cabi.c_long(_nr("clone")), cabi.c_ulong(CLONE_PARENT | SIGCHLD), zero, zero, zero,
                            zero)
    return _check(result, "clone", None)


def sethostname(name: str) -> None:
    data = name.encode()
    _check(libc().sethostname(data, cabi.c_size_t(len(data))), "sethostname", name)


def setdomainname(name: str) -> None:
    data = name.encode()
    _check(libc().setdomainname(data, cabi.c_size_t(len(data))), "setdomainname", name)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    args = (cabi.c_ulong(a) for a in (arg2, arg3, arg4, arg5))
    return _check(libc().prctl(cabi.c_int(option), *args), "prctl", None)


def set_dumpable(value: bool) -> None:
    prctl(PR_SET_DUMPABLE, 1 if value else 0)


def set_no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def set_child_subreaper(value: bool = True) -> None:
    prctl(PR_SET_CHILD_SUBREAPER, 1 if value else 0)


def set_parent_death_signal(signum: int) -> None:
    prctl(PR_SET_PDEATHSIG, signum)


def mknod(path: str, mode: int, device: int) -> None:
    try:
        os.mknod(path, mode, device)
    except OSError as exc:
        raise KernelError.from_oserror("mknod", exc) from None


def close_fds_from(first: int, keep: tuple[int, ...] = ()) -> None:
    """Close every descriptor >= *first* except *keep* (close_range(2) where available)."""
    start = first
    for fd in sorted(k for k in keep if k >= first):
        if fd > start:
            os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, 1 << 20)


# SCM_RIGHTS carries C ints. Packed by hand: `array` imports collections (~1 ms per launcher), and
# stage 2 cannot import anything once pivot_root has hidden the host's files.
FD_SIZE = 4


def pack_fds(fds: list[int] | tuple[int, ...]) -> bytes:
    return b"".join(fd.to_bytes(FD_SIZE, sys.byteorder, signed=True) for fd in fds)


def unpack_fds(data: bytes) -> list[int]:
    whole = len(data) - len(data) % FD_SIZE
    return [int.from_bytes(data[i:i + FD_SIZE], sys.byteorder, signed=True) for i in range(0, whole, FD_SIZE)]
