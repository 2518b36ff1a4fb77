"""The spec's mounts: option parsing, safe destinations, and one mount at a time.

Destinations are resolved inside the rootfs with every symlink followed
*relative to the rootfs* (like filepath-securejoin), so an image cannot
point `/proc` at `/../../etc` of the host.
"""

from __future__ import annotations

import os
import stat

from intermodal.errors import InvalidSpec, KernelError
from intermodal.records import Frozen
from intermodal.runtime import syscalls as S
from intermodal.runtime.spec import Mount

# option -> (clear?, flag): "ro" sets MS_RDONLY, "rw" clears it.
FLAG_OPTIONS = {
    "ro": (False, S.MS_RDONLY), "rw": (True, S.MS_RDONLY),
    "nosuid": (False, S.MS_NOSUID), "suid": (True, S.MS_NOSUID),
    "nodev": (False, S.MS_NODEV), "dev": (True, S.MS_NODEV),
    "noexec": (False, S.MS_NOEXEC), "exec": (True, S.MS_NOEXEC),
    "sync": (False, S.MS_SYNCHRONOUS), "async": (True, S.MS_SYNCHRONOUS),
    "dirsync": (False, S.MS_DIRSYNC),
    "remount": (False, S.MS_REMOUNT),
    "mand": (False, S.MS_MANDLOCK), "nomand": (True, S.MS_MANDLOCK),
    "noatime": (False, S.MS_NOATIME), "atime": (True, S.MS_NOATIME),
    "nodiratime": (False, S.MS_NODIRATIME), "diratime": (True, S.MS_NODIRATIME),
    "relatime": (False, S.MS_RELATIME), "norelatime": (True, S.MS_RELATIME),
    "strictatime": (False, S.MS_STRICTATIME), "nostrictatime": (True, S.MS_STRICTATIME),
    "silent": (False, S.MS_SILENT), "loud": (True, S.MS_SILENT),
    "nosymfollow": (False, S.MS_NOSYMFOLLOW),
    "bind": (False, S.MS_BIND), "rbind": (False, S.MS_BIND | S.MS_REC),
}
PROPAGATION_OPTIONS = {
    "private": S.MS_PRIVATE, "rprivate": S.MS_PRIVATE | S.MS_REC,
    "shared": S.MS_SHARED, "rshared": S.MS_SHARED | S.MS_REC,
    "slave": S.MS_SLAVE, "rslave": S.MS_SLAVE | S.MS_REC,
    "unbindable": S.MS_UNBINDABLE, "runbindable": S.MS_UNBINDABLE | S.MS_REC,
}
# Options other runtimes define for themselves (crun's tmpcopyup, SELinux relabel
# letters podman may leave in); they are not mount(2) data.
IGNORED_OPTIONS = frozenset({"tmpcopyup", "notmpcopyup", "copy-symlink", "z", "Z", "U", "idmap", "ridmap",
                             "norbind", "nocopyup"})
MAX_SYMLINKS = 255


class Options(Frozen):
    flags: int = 0
    propagation: int = 0
    data: str = ""

    @property
    def bind(self) -> bool:
        return bool(self.flags & S.MS_BIND)


def parse_options(options: tuple[str, ...] | list[str]) -> Options:
    flags = 0
    propagation = 0
    data = []
    for opt in options:
        if opt in FLAG_OPTIONS:
            clear, flag = FLAG_OPTIONS[opt]
            flags = flags & ~flag if clear else flags | flag
        elif opt in PROPAGATION_OPTIONS:
            propagation |= PROPAGATION_OPTIONS[opt]
        elif opt not in IGNORED_OPTIONS:
            data.append(opt)
    return Options(flags, propagation, ",".join(data))


def secure_join(root: str, unsafe: str) -> str:
    """*unsafe* resolved under *root*, following symlinks as if *root* were `/`."""
    parts = [p for p in unsafe.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            st = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(part)
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise KernelError("resolve", os.path.join(root, unsafe.lstrip("/")), 40)  # ELOOP
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p not in ("", ".")] + parts
    return os.path.join(root, *resolved)


def is_bind(m: Mount) -> bool:
    return m.type == "bind" or any(o in ("bind", "rbind") for o in m.options)


def ensure_target(dest: str, directory: bool) -> None:
    """Create the mount point: a directory, or an empty file for a file bind mount."""
    if directory:
        os.makedirs(dest, exist_ok=True)
        return
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if not os.path.lexists(dest):
        os.close(os.open(dest, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def locked_flags(path: str) -> int:
    """Flags a remount must keep: in a user namespace the kernel locks them (mount_namespaces(7))."""
    f = os.statvfs(path).f_flag
    return f & (S.MS_NOSUID | S.MS_NODEV | S.MS_NOEXEC | S.MS_RDONLY)


def bind(source: str, dest: str, opts: Options, *, userns: bool, sc=S) -> None:
    ensure_target(dest, os.path.isdir(source))
    sc.mount(source, dest, None, opts.flags & (S.MS_BIND | S.MS_REC))
    extra = opts.flags & ~(S.MS_BIND | S.MS_REC | S.MS_REMOUNT)
    if extra:
        # MS_BIND ignores the other flags; they need a second, remounting call (mount(2)).
        keep = locked_flags(dest) if userns else 0
        sc.mount(None, dest, None, S.MS_REMOUNT | S.MS_BIND | extra | keep)
    if opts.propagation:
        sc.mount(None, dest, None, opts.propagation)


def mount_one(rootfs: str, bundle: str, m: Mount, *, userns: bool, cgroup_paths: dict[str, str] | None = None,
              sc=S) -> None:
    dest = secure_join(rootfs, m.destination)
    opts = parse_options(m.options)
    if is_bind(m):
        source = m.source or ""
        if not source.startswith("/"):
            source = os.path.join(bundle, source)
        if not os.path.exists(source):
            raise InvalidSpec(f"mounts: bind source {source} for {m.destination} does not exist; create it first")
        bind(source, dest, opts, userns=userns, sc=sc)
        return
    if m.type == "cgroup":
        mount_cgroup(dest, opts, cgroup_paths or {}, sc=sc)
        return
    ensure_target(dest, True)
    try:
        sc.mount(m.source or m.type, dest, m.type, opts.flags, opts.data or None)
    except KernelError as exc:
        if exc.errno != 1 or m.type not in ("sysfs", "mqueue"):
            raise
        # Without a new network namespace (sysfs) or ipc namespace (mqueue) of our
        # own, a user namespace may not mount a fresh one: bind the host's, as runc does.
        host = "/sys" if m.type == "sysfs" else "/dev/mqueue"
        bind(host, dest, Options(S.MS_BIND | S.MS_REC | (opts.flags & S.MS_RDONLY)), userns=userns, sc=sc)
    if opts.propagation:
        sc.mount(None, dest, None, opts.propagation)


def _cgroup_mounts() -> list[tuple[str, str]]:
    """(mount point, fstype) of every cgroup hierarchy this process sees."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype = right.split(" ", 1)[0]
            if fstype in ("cgroup", "cgroup2"):
                found.append((left.split(" ")[4], fstype))
    return found


def mount_cgroup(dest: str, opts: Options, paths: dict[str, str], sc=S) -> None:
    """/sys/fs/cgroup in the container: the container's own cgroup directories, bound from the host.

    *paths* are the cgroup manager's (controller -> host directory). Binding them
    shows the container its own cgroup whether or not it has a cgroup namespace
    (inside one, /proc/self/cgroup would say "/" and point at the host's root).
    On a unified host that is one cgroup2 directory; on v1/hybrid a tmpfs holds
    one directory per hierarchy, as runc does. Hierarchies the manager does not
    place the container in are left out rather than shown whole.
    """
    ensure_target(dest, True)
    hierarchies = _cgroup_mounts()
    ro = opts.flags & S.MS_RDONLY
    if hierarchies == [("/sys/fs/cgroup", "cgroup2")]:
        if paths.get("unified"):
            _bind_cgroup(paths["unified"], dest, ro, sc)
        else:
            sc.mount("cgroup2", dest, "cgroup2", opts.flags)
        return
    sc.mount("tmpfs", dest, "tmpfs", opts.flags & ~S.MS_RDONLY, "mode=755")
    for point, fstype in hierarchies:
        if not point.startswith("/sys/fs/cgroup/"):
            continue
        name = point[len("/sys/fs/cgroup/"):]
        source = _manager_path(paths, name, fstype)
        if source is None or not os.path.isdir(source):
            continue
        target = os.path.join(dest, name)
        os.makedirs(target, exist_ok=True)
        _bind_cgroup(source, target, ro, sc)
    if ro:
        sc.mount(None, dest, None, S.MS_REMOUNT | opts.flags, "mode=755")


def _bind_cgroup(source: str, target: str, ro: int, sc) -> None:
    sc.mount(source, target, None, S.MS_BIND)
    sc.mount(None, target, None, S.MS_REMOUNT | S.MS_BIND | S.MS_NOSUID | S.MS_NODEV | S.MS_NOEXEC | ro)


def _manager_path(paths: dict[str, str], name: str, fstype: str) -> str | None:
    if fstype == "cgroup2":
        return paths.get("unified")
    for key in (name, f"name={name}", *name.split(",")):
        if key in paths:
            return paths[key]
    return None
