"""The container's root filesystem: mounts, devices, pivot_root, masked and read-only paths.

Runs in the container child, inside its new mount namespace. pivot_root,
not chroot: chroot leaves the host's root reachable (a process with
CAP_SYS_CHROOT escapes it), pivot_root plus a detached unmount removes it
from the namespace altogether (pivot_root(2)).
"""

from __future__ import annotations

import errno
import os
import stat

from intermodal.errors import KernelError
from intermodal.runtime import mounts
from intermodal.runtime import syscalls as S
from intermodal.runtime.spec import Device, Spec

# The devices every container gets (runtime-spec config-linux.md "Default Devices").
DEFAULT_DEVICES = (
    Device("/dev/null", "c", 1, 3, 0o666), Device("/dev/zero", "c", 1, 5, 0o666),
    Device("/dev/full", "c", 1, 7, 0o666), Device("/dev/random", "c", 1, 8, 0o666),
    Device("/dev/urandom", "c", 1, 9, 0o666), Device("/dev/tty", "c", 5, 0, 0o666),
)
DEV_SYMLINKS = (("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"),
                ("/proc/self/fd/2", "stderr"), ("pts/ptmx", "ptmx"))
_TYPE_BITS = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def propagation_flags(value: str | None) -> int:
    """rootfsPropagation for `/`; rslave by default so nothing we mount reaches the host."""
    return mounts.PROPAGATION_OPTIONS.get(value or "rslave", S.MS_SLAVE | S.MS_REC)


def prepare(spec: Spec, bundle: str, rootfs: str, *, userns: bool, cgroup_paths: dict[str, str] | None = None,
            sc=S) -> None:
    """Everything before pivot_root: propagation, the rootfs bind, the spec's mounts, /dev."""
    prop = propagation_flags(spec.linux.rootfs_propagation)
    # Shared would leak our mounts to the host until after pivot; start as slave, fix up later.
    sc.mount(None, "/", None, (S.MS_SLAVE | S.MS_REC) if prop & S.MS_SHARED else prop)
    # pivot_root needs the new root to be a mount point.
    sc.mount(rootfs, rootfs, None, S.MS_BIND | S.MS_REC)
    for m in spec.mounts:
        mounts.mount_one(rootfs, bundle, m, userns=userns, cgroup_paths=cgroup_paths, sc=sc)
    if not _dev_is_bound(spec):
        create_devices(rootfs, DEFAULT_DEVICES + spec.linux.devices, userns=userns, sc=sc)
        dev_symlinks(rootfs)
    if spec.process is not None and spec.process.terminal:
        mounts.ensure_target(mounts.secure_join(rootfs, "/dev/console"), False)


def _dev_is_bound(spec: Spec) -> bool:
    return any(m.destination.rstrip("/") == "/dev" and mounts.is_bind(m) for m in spec.mounts)


def create_devices(rootfs: str, devices: tuple[Device, ...], *, userns: bool, sc=S) -> None:
    for dev in devices:
        dest = mounts.secure_join(rootfs, dev.path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if userns:
            _bind_device(dev, dest, sc)
            continue
        try:
            if os.path.lexists(dest):
                os.unlink(dest)
            mode = (dev.file_mode if dev.file_mode is not None else 0o666) | _TYPE_BITS[dev.type]
            old = os.umask(0)
            try:
                sc.mknod(dest, mode, os.makedev(dev.major, dev.minor))
            finally:
                os.umask(old)
            os.chown(dest, dev.uid or 0, dev.gid or 0)
        except KernelError as exc:
            if exc.errno != errno.EPERM:
                raise
            _bind_device(dev, dest, sc)  # no CAP_MKNOD: use the host's node, as runc does


def _bind_device(dev: Device, dest: str, sc) -> None:
    mounts.ensure_target(dest, False)
    sc.mount(dev.path, dest, None, S.MS_BIND)


def dev_symlinks(rootfs: str) -> None:
    for target, name in DEV_SYMLINKS:
        link = os.path.join(mounts.secure_join(rootfs, "/dev"), name)
        try:
            os.symlink(target, link)
        except FileExistsError:
            pass


def pivot(rootfs: str, sc=S) -> None:
    """pivot_root(".", ".") then detach the old root, as runc does: no put_old directory needed."""
    os.chdir(rootfs)
    sc.pivot_root(".", ".")
    # The old root is now stacked on `.`; make it a slave so unmounting it is not propagated to the host.
    sc.mount(None, ".", None, S.MS_SLAVE | S.MS_REC)
    sc.umount2(".", S.MNT_DETACH)
    os.chdir("/")


def finish(spec: Spec, *, userns: bool, sc=S) -> None:
    """After pivot_root: propagation asked for, masked and read-only paths, a read-only root."""
    prop = propagation_flags(spec.linux.rootfs_propagation)
    if prop & S.MS_SHARED:
        sc.mount(None, "/", None, prop)
    for path in spec.linux.masked_paths:
        mask(path, sc)
    for path in spec.linux.readonly_paths:
        readonly(path, userns=userns, sc=sc)
    if spec.root.readonly:
        keep = mounts.locked_flags("/") if userns else 0
        sc.mount(None, "/", None, S.MS_BIND | S.MS_REMOUNT | S.MS_RDONLY | keep)


def mask(path: str, sc=S) -> None:
    """Hide *path*: an empty read-only tmpfs over a directory, /dev/null over a file."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            sc.mount("tmpfs", path, "tmpfs", S.MS_RDONLY)
        elif os.path.lexists(path):
            sc.mount("/dev/null", path, None, S.MS_BIND)
    except KernelError as exc:
        if exc.errno != errno.ENOENT:
            raise


def readonly(path: str, *, userns: bool, sc=S) -> None:
    if not os.path.lexists(path):
        return
    try:
        sc.mount(path, path, None, S.MS_BIND | S.MS_REC)
        keep = mounts.locked_flags(path) if userns else 0
        sc.mount(None, path, None, S.MS_BIND | S.MS_REMOUNT | S.MS_RDONLY | S.MS_REC | keep)
    except KernelError as exc:
        if exc.errno != errno.ENOENT:
            raise
