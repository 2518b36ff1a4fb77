"""Small named checks of a parsed spec, each raising InvalidSpec with the JSON path.

`validate(spec, bundle)` runs every check in CHECKS and returns the warnings
(things we accept but ignore, such as an AppArmor profile).
"""

from __future__ import annotations

import os

from intermodal.errors import InvalidSpec
from intermodal.runtime.spec import Spec

TYPE_CHECKING = False  # not `typing`, nor collections.abc: the monitor's launcher imports this for every start
if TYPE_CHECKING:
    from collections.abc import Callable

NAMESPACE_TYPES = ("user", "pid", "network", "ipc", "uts", "mount", "cgroup", "time")
RLIMITS = ("RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS", "RLIMIT_MEMLOCK",
           "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_RTPRIO",
           "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK")
PROPAGATIONS = ("", "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable")
DEVICE_TYPES = ("c", "u", "b", "p")


def _fail(path: str, message: str) -> None:
    raise InvalidSpec(f"{path}: {message}")


def check_version(spec: Spec, bundle: str) -> None:
    if not spec.oci_version.startswith("1."):
        _fail("ociVersion", f"{spec.oci_version!r} is not a 1.x version; this runtime implements runtime-spec 1.x")


def check_root(spec: Spec, bundle: str) -> None:
    if not spec.root.path:
        _fail("root.path", "missing; name the root filesystem directory (usually 'rootfs')")
    path = os.path.join(bundle, spec.root.path)
    if not os.path.isdir(path):
        _fail("root.path", f"{path} is not a directory; extract the image's root filesystem there")


def check_process(spec: Spec, bundle: str) -> None:
    p = spec.process
    if p is None:
        _fail("process", "missing; `create` needs the process to run")
    if not p.args:
        _fail("process.args", "empty; give at least the program to run")
    if not p.cwd.startswith("/"):
        _fail("process.cwd", f"{p.cwd!r} is not absolute; use a path starting with '/'")
    for i, rl in enumerate(p.rlimits):
        if rl.type not in RLIMITS:
            _fail(f"process.rlimits[{i}].type", f"unknown {rl.type!r}; use one of {', '.join(RLIMITS)}")
        if rl.soft > rl.hard:
            _fail(f"process.rlimits[{i}]", f"soft {rl.soft} is above hard {rl.hard}")
    for i, env in enumerate(p.env):
        if "=" not in env:
            _fail(f"process.env[{i}]", f"{env!r} is not NAME=VALUE")


def check_namespaces(spec: Spec, bundle: str) -> None:
    seen: set[str] = set()
    for i, ns in enumerate(spec.linux.namespaces):
        if ns.type not in NAMESPACE_TYPES:
            _fail(f"linux.namespaces[{i}].type", f"unknown {ns.type!r}; use one of {', '.join(NAMESPACE_TYPES)}")
        if ns.type in seen:
            _fail(f"linux.namespaces[{i}].type", f"{ns.type!r} appears twice; list each namespace once")
        seen.add(ns.type)
        if ns.path is not None and not os.path.exists(ns.path):
            _fail(f"linux.namespaces[{i}].path", f"{ns.path} does not exist; name a /proc/PID/ns/* file")


def check_user_namespace(spec: Spec, bundle: str) -> None:
    user = spec.linux.namespace("user")
    mapped = bool(spec.linux.uid_mappings or spec.linux.gid_mappings)
    if user is not None and user.path is None and not (spec.linux.uid_mappings and spec.linux.gid_mappings):
        _fail("linux.uidMappings", "a new user namespace needs both uidMappings and gidMappings")
    if mapped and (user is None or user.path is not None):
        _fail("linux.uidMappings", "mappings are only allowed with a new user namespace (linux.namespaces: user)")


def check_hostname(spec: Spec, bundle: str) -> None:
    uts = spec.linux.namespace("uts")
    if (spec.hostname or spec.domainname) and (uts is None or uts.path is not None):
        what = "hostname" if spec.hostname else "domainname"
        _fail(what, "setting it needs a new uts namespace; add {'type': 'uts'} to linux.namespaces")


def check_mounts(spec: Spec, bundle: str) -> None:
    for i, m in enumerate(spec.mounts):
        if not m.destination.startswith("/"):
            _fail(f"mounts[{i}].destination", f"{m.destination!r} is not absolute")
        if ".." in m.destination.split("/"):
            _fail(f"mounts[{i}].destination", f"{m.destination!r} contains '..'; use a clean path")
        is_bind = m.type in (None, "bind", "none") and any(o in ("bind", "rbind") for o in m.options)
        if (m.type == "bind" or is_bind) and not m.source:
            _fail(f"mounts[{i}].source", "a bind mount needs a source")


def check_propagation(spec: Spec, bundle: str) -> None:
    value = spec.linux.rootfs_propagation
    if value is not None and value not in PROPAGATIONS:
        _fail("linux.rootfsPropagation", f"unknown {value!r}; use one of {', '.join(p for p in PROPAGATIONS if p)}")


def check_devices(spec: Spec, bundle: str) -> None:
    for i, dev in enumerate(spec.linux.devices):
        if dev.type not in DEVICE_TYPES:
            _fail(f"linux.devices[{i}].type", f"unknown {dev.type!r}; use c, b, u or p")
        if not dev.path.startswith("/dev/"):
            _fail(f"linux.devices[{i}].path", f"{dev.path!r} must be under /dev/")


def check_hooks(spec: Spec, bundle: str) -> None:
    for name in ("prestart", "create_runtime", "create_container", "start_container", "poststart", "poststop"):
        for i, hook in enumerate(getattr(spec.hooks, name)):
            if not hook.path.startswith("/"):
                _fail(f"hooks.{_camel(name)}[{i}].path", f"{hook.path!r} is not absolute")
            if hook.timeout is not None and hook.timeout <= 0:
                _fail(f"hooks.{_camel(name)}[{i}].timeout", "must be a positive number of seconds")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(r.title() for r in rest)


CHECKS: tuple[Callable[[Spec, str], None], ...] = (
    check_version, check_root, check_process, check_namespaces, check_user_namespace, check_hostname,
    check_mounts, check_propagation, check_devices, check_hooks,
)


def warnings(spec: Spec) -> list[str]:
    found = []
    if spec.process and spec.process.apparmor_profile:
        found.append("process.apparmorProfile: AppArmor is not supported; the profile is ignored")
    if spec.process and spec.process.selinux_label:
        found.append("process.selinuxLabel: SELinux is not supported; the label is ignored")
    if spec.process and spec.process.capabilities:
        from intermodal.runtime import capabilities  # loaded already where containers start (runtime.init)

        found.extend(capabilities.warnings(spec.process.capabilities))
    return found


def validate(spec: Spec, bundle: str | os.PathLike) -> list[str]:
    """Raise InvalidSpec on the first failed check; return warnings."""
    bundle = os.fspath(bundle)
    for check in CHECKS:
        check(spec, bundle)
    return warnings(spec)
