"""OCI ``linux.cgroupsPath`` to a path inside each hierarchy.

The spec allows three forms (runtime-spec config-linux.md "Cgroups path"):

- absolute ``/a/b``: relative to the hierarchy's root (mount point);
- relative ``a/b``: runc joins it to the runtime's own cgroup (v1, per
  controller) or to the parent of its own cgroup (v2: the own cgroup has tasks,
  so no controllers could be enabled for a child of it);
- systemd ``slice:prefix:name`` with ``--systemd-cgroup``: the unit
  ``prefix-name.scope`` inside ``slice``, where ``a-b.slice`` nests as
  ``/a.slice/a-b.slice``.

We do not talk to systemd over D-Bus: a systemd path is mapped to the same
directory layout on cgroupfs (what systemd would create). Where systemd runs,
this is said as a warning, because systemd does not know the scope then.
"""

from __future__ import annotations

import os
import posixpath

from intermodal.errors import InvalidSpec

DEFAULT_SLICE = "system.slice"
DEFAULT_PREFIX = "imod"


def clean(path: str) -> str:
    """Normalise and forbid escaping the hierarchy with ``..``."""
    if "\0" in path:
        raise InvalidSpec("linux.cgroupsPath: contains a NUL byte; fix config.json")
    absolute = path.startswith("/")
    norm = posixpath.normpath("/" + path.lstrip("/"))  # an absolute path cannot climb above /
    return norm if absolute else norm.lstrip("/")


def systemd_to_fs(value: str | None, container_id: str) -> str:
    """``slice:prefix:name`` to the absolute cgroupfs path systemd would use."""
    if not value:
        slice_, prefix, name = DEFAULT_SLICE, DEFAULT_PREFIX, container_id
    else:
        parts = value.split(":")
        if len(parts) != 3:
            raise InvalidSpec(f"linux.cgroupsPath: {value!r} is not 'slice:prefix:name' as --systemd-cgroup needs; "
                              "fix config.json or run without --systemd-cgroup")
        slice_, prefix, name = parts
        slice_ = slice_ or DEFAULT_SLICE
    if name.endswith(".slice"):
        return expand_slice(slice_) + "/" + name if slice_ != "-.slice" else "/" + name
    unit = f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    if "/" in unit:
        raise InvalidSpec(f"linux.cgroupsPath: unit name {unit!r} contains '/'; fix config.json")
    return posixpath.join(expand_slice(slice_), unit)


def expand_slice(slice_: str) -> str:
    """``a-b-c.slice`` -> ``/a.slice/a-b.slice/a-b-c.slice`` (systemd.slice(5))."""
    if not slice_.endswith(".slice") or "/" in slice_:
        raise InvalidSpec(f"linux.cgroupsPath: {slice_!r} is not a systemd slice name (x.slice); fix config.json")
    if slice_ == "-.slice":
        return "/"
    stem = slice_[: -len(".slice")]
    if stem.startswith("-") or stem.endswith("-") or "--" in stem:
        raise InvalidSpec(f"linux.cgroupsPath: invalid slice name {slice_!r}; fix config.json")
    words = stem.split("-")
    return "/" + "/".join("-".join(words[: i + 1]) + ".slice" for i in range(len(words)))


def inner(value: str | None, container_id: str, systemd: bool) -> str:
    """The path inside a hierarchy, still relative (no leading /) or absolute."""
    if systemd:
        return systemd_to_fs(value, container_id)
    if not value:
        return clean(container_id)  # runc: no cgroupsPath -> the id, relative
    return clean(value)


def resolve(mountpoint: str, inner_path: str, own: str, *, v2: bool) -> str:
    """Absolute directory of ``inner_path`` in the hierarchy mounted at ``mountpoint``."""
    if inner_path.startswith("/"):
        rel = inner_path
    else:
        base = own or "/"
        if v2:
            base = posixpath.dirname(base.rstrip("/")) or "/"
        rel = posixpath.join(base, inner_path)
    full = os.path.normpath(mountpoint + "/" + rel)
    if full != mountpoint and not full.startswith(mountpoint.rstrip("/") + "/"):
        raise InvalidSpec(f"linux.cgroupsPath: {inner_path!r} leaves the cgroup hierarchy; fix config.json")
    return full


def systemd_running() -> bool:
    return os.path.isdir("/run/systemd/system")  # sd_booted(3)
