"""Host devices in a container: `--device HOST[:CONTAINER][:PERMS]`, and every one of them with `--privileged`.

A device becomes an OCI ``linux.devices`` entry (the runtime makes the node
in the container's /dev) and, unless the container is privileged (whose
device cgroup allows everything), an allow rule in ``linux.resources.devices``
with the permissions asked for. As Docker: a symlink on the host is followed
(/dev/disk/by-id/...), a directory brings every device under it.

`--device-cgroup-rule "TYPE MAJOR:MINOR PERMS"` adds an allow rule without a
node (for devices the container makes itself, or that appear later in a bind
mounted /dev), in the kernel's devices.allow syntax, as Docker.
"""

from __future__ import annotations

import os
import stat

from intermodal.errors import InvalidArgument

TYPE_CHECKING = False  # not `typing` (~4 ms of every `imod`)
if TYPE_CHECKING:
    from typing import Any

# Not taken over by --privileged, as runc/containerd's HostDevices: pseudo-terminals, shared memory and
# queues are the container's own; /dev/console and /dev/ptmx too (ptmx links to the container's devpts).
SKIP_DIRS = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})
SKIP_FILES = frozenset({"console", "ptmx"})


def parse_device(text: str) -> str:
    """Docker's `--device` syntax, normalised to ``HOST:CONTAINER:PERMS`` (PERMS of r, w and m)."""
    parts = text.split(":")
    if not parts[0] or len(parts) > 3:
        raise InvalidArgument(f"invalid --device {text!r}: use HOST-PATH[:CONTAINER-PATH][:PERMISSIONS]")
    host, target, perms = parts[0], "", "rwm"
    if len(parts) == 3:
        target, perms = parts[1], parts[2]
    elif len(parts) == 2:
        if _valid_mode(parts[1]):
            perms = parts[1]
        else:
            target = parts[1]
    target = target or host
    if not _valid_mode(perms):
        raise InvalidArgument(f"invalid --device {text!r}: permissions are some of r, w and m, e.g. rw")
    if not host.startswith("/") or not target.startswith("/"):
        raise InvalidArgument(f"invalid --device {text!r}: both paths must be absolute, e.g. /dev/fuse")
    return f"{host}:{target}:{perms}"


def parse_cgroup_rule(text: str) -> str:
    """Docker's `--device-cgroup-rule`, normalised to ``TYPE MAJOR:MINOR PERMS`` (``*`` for any number)."""
    words = text.split()
    try:
        kind, numbers, perms = words
        major, minor = numbers.split(":")
    except ValueError:
        kind = major = minor = perms = ""
    if kind not in ("a", "b", "c") or not all(n == "*" or n.isdigit() for n in (major, minor)) \
            or not _valid_mode(perms) or (kind == "a" and (major, minor) != ("*", "*")):
        raise InvalidArgument(f"invalid --device-cgroup-rule {text!r}: use TYPE MAJOR:MINOR PERMISSIONS, e.g. "
                              "'c 1:3 rwm' or 'b 8:* r' (type a, b or c, a only with *:*; * for any number; "
                              "permissions some of r, w, m)")
    return f"{kind} {_number(major)}:{_number(minor)} {''.join(c for c in 'rwm' if c in perms)}"


def cgroup_rules(rules: tuple[str, ...]) -> list[dict[str, Any]]:
    """linux.resources.devices allow rules for *rules* (from parse_cgroup_rule)."""
    out = []
    for rule in rules:
        kind, numbers, perms = rule.split()
        entry: dict[str, Any] = {"allow": True, "type": kind, "access": perms}
        for name, n in zip(("major", "minor"), numbers.split(":"), strict=True):
            if n != "*":
                entry[name] = int(n)
        out.append(entry)
    return out


def _number(text: str) -> str:
    return text if text == "*" else str(int(text))


def _valid_mode(text: str) -> bool:
    return bool(text) and len(text) <= 3 and set(text) <= set("rwm") and len(set(text)) == len(text)


def oci_devices(devices: tuple[str, ...], privileged: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """linux.devices entries and the device cgroup's allow rules for *devices* (from parse_device), plus
    every host device under /dev when *privileged*. Raises InvalidArgument for a path that is no device."""
    entries: dict[str, dict[str, Any]] = {}
    rules: list[dict[str, Any]] = []
    if privileged:
        for path in host_devices("/dev"):
            entry = _entry(path, path)
            if entry is not None:
                entries[path] = entry
    for item in devices:
        host, target, perms = item.rsplit(":", 2)
        for source, dest in _expand(host, target):
            entry = _entry(source, dest)
            if entry is None:
                raise InvalidArgument(f"--device {host}: {source} is not a character or block device; "
                                      "name a device node such as /dev/fuse, or a directory of them")
            entries[dest] = entry
            rules.append({"allow": True, "type": entry["type"], "major": entry["major"], "minor": entry["minor"],
                          "access": perms})
    return list(entries.values()), rules


def _expand(host: str, target: str) -> list[tuple[str, str]]:
    """The device nodes *host* names (a symlink followed, a directory walked) with their paths inside."""
    try:
        resolved = os.path.realpath(host, strict=True)
    except OSError as err:
        raise InvalidArgument(f"--device {host}: {err.strerror}; check the device path on this host") from None
    if not os.path.isdir(resolved):
        return [(resolved, target)]
    return [(path, os.path.join(target, os.path.relpath(path, resolved))) for path in host_devices(resolved)]


def host_devices(top: str) -> list[str]:
    """Character and block device nodes under *top* (symlinks not followed), as runc's GetDevices lists them."""
    found = []
    for directory, dirs, files in os.walk(top):
        if directory == top:
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        for name in files:
            if directory == top and name in SKIP_FILES:
                continue
            path = os.path.join(directory, name)
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue  # gone meanwhile
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                found.append(path)
    return sorted(found)


def _entry(source: str, dest: str) -> dict[str, Any] | None:
    try:
        st = os.stat(source)
    except OSError:
        return None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    return {"path": dest, "type": kind, "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
            "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
