"""The OCI runtime spec (config.json) as frozen records (records.py).

Parsing only converts shapes; `validate.py` decides what is acceptable.
Sections handed to other modules as OCI JSON (capabilities, seccomp,
linux.resources) stay plain dicts, as their interfaces take them.
"""

from __future__ import annotations

import os

from intermodal import cjson
from intermodal.errors import InvalidSpec
from intermodal.records import Frozen, factory

TYPE_CHECKING = False  # not `typing` (~3 ms): the monitor's launcher imports this for every start
if TYPE_CHECKING:
    from typing import Any

OCI_VERSION = "1.0.2"


class Root(Frozen):
    path: str
    readonly: bool = False


class User(Frozen):
    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: tuple[int, ...] = ()


class Rlimit(Frozen):
    type: str
    soft: int
    hard: int


class Process(Frozen):
    args: tuple[str, ...]
    cwd: str = "/"
    env: tuple[str, ...] = ()
    terminal: bool = False
    console_size: tuple[int, int] | None = None  # (height, width)
    user: User = factory(User)
    capabilities: dict | None = None
    rlimits: tuple[Rlimit, ...] = ()
    no_new_privileges: bool = False
    oom_score_adj: int | None = None
    apparmor_profile: str | None = None
    selinux_label: str | None = None


class Mount(Frozen):
    destination: str
    type: str | None = None
    source: str | None = None
    options: tuple[str, ...] = ()


class Hook(Frozen):
    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None


class Hooks(Frozen):
    prestart: tuple[Hook, ...] = ()
    create_runtime: tuple[Hook, ...] = ()
    create_container: tuple[Hook, ...] = ()
    start_container: tuple[Hook, ...] = ()
    poststart: tuple[Hook, ...] = ()
    poststop: tuple[Hook, ...] = ()


class Namespace(Frozen):
    type: str
    path: str | None = None


class IdMapping(Frozen):
    container_id: int
    host_id: int
    size: int


class Device(Frozen):
    path: str
    type: str
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


class Linux(Frozen):
    namespaces: tuple[Namespace, ...] = ()
    uid_mappings: tuple[IdMapping, ...] = ()
    gid_mappings: tuple[IdMapping, ...] = ()
    devices: tuple[Device, ...] = ()
    cgroups_path: str | None = None
    resources: dict | None = None
    rootfs_propagation: str | None = None
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    sysctl: dict[str, str] = factory(dict)
    seccomp: dict | None = None
    mount_label: str | None = None

    def namespace(self, kind: str) -> Namespace | None:
        return next((ns for ns in self.namespaces if ns.type == kind), None)


class Spec(Frozen):
    oci_version: str
    root: Root
    process: Process | None = None
    hostname: str | None = None
    domainname: str | None = None
    mounts: tuple[Mount, ...] = ()
    hooks: Hooks = factory(Hooks)
    annotations: dict[str, str] = factory(dict)
    linux: Linux = factory(Linux)


def load(bundle: str | os.PathLike, config: str | os.PathLike | None = None) -> Spec:
    """Read *config* (default ``BUNDLE/config.json``) and parse it."""
    path = os.fspath(config) if config else os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            data = cjson.loads(f.read())
    except FileNotFoundError:
        raise InvalidSpec(f"{path}: no such file; a bundle needs a config.json "
                          "(`imod-runtime spec` writes one)") from None
    except ValueError as exc:
        raise InvalidSpec(f"{path}: not valid JSON ({exc}); fix the file") from None
    return parse(data)


def parse(data: Any) -> Spec:
    if not isinstance(data, dict):
        raise InvalidSpec("config.json: the top level must be an object")
    try:
        return _spec(data)
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise InvalidSpec(f"config.json: malformed ({type(exc).__name__}: {exc}); "
                          "compare with `imod-runtime spec`") from None


def _spec(d: dict) -> Spec:
    root = d.get("root") or {}
    return Spec(
        oci_version=str(d.get("ociVersion", "")),
        root=Root(path=str(root.get("path", "")), readonly=bool(root.get("readonly", False))),
        process=parse_process(d["process"]) if d.get("process") else None,
        hostname=d.get("hostname"),
        domainname=d.get("domainname"),
        mounts=tuple(_mount(m) for m in d.get("mounts") or ()),
        hooks=_hooks(d.get("hooks") or {}),
        annotations=dict(d.get("annotations") or {}),
        linux=_linux(d.get("linux") or {}),
    )


def parse_process(p: dict) -> Process:
    user = p.get("user") or {}
    size = p.get("consoleSize")
    return Process(
        args=tuple(str(a) for a in p.get("args") or ()),
        cwd=str(p.get("cwd") or "/"),
        env=tuple(str(e) for e in p.get("env") or ()),
        terminal=bool(p.get("terminal", False)),
        console_size=(int(size.get("height", 0)), int(size.get("width", 0))) if size else None,
        user=User(
            uid=int(user.get("uid", 0)),
            gid=int(user.get("gid", 0)),
            umask=int(user["umask"]) if user.get("umask") is not None else None,
            additional_gids=tuple(int(g) for g in user.get("additionalGids") or ()),
        ),
        capabilities=p.get("capabilities"),
        rlimits=tuple(Rlimit(str(r["type"]), int(r["soft"]), int(r["hard"])) for r in p.get("rlimits") or ()),
        no_new_privileges=bool(p.get("noNewPrivileges", False)),
        oom_score_adj=int(p["oomScoreAdj"]) if p.get("oomScoreAdj") is not None else None,
        apparmor_profile=p.get("apparmorProfile"),
        selinux_label=p.get("selinuxLabel"),
    )


def _mount(m: dict) -> Mount:
    return Mount(destination=str(m["destination"]), type=m.get("type"), source=m.get("source"),
                 options=tuple(str(o) for o in m.get("options") or ()))


def parse_hooks(items: Any) -> tuple[Hook, ...]:
    return tuple(Hook(path=str(h["path"]), args=tuple(h.get("args") or ()), env=tuple(h.get("env") or ()),
                      timeout=h.get("timeout")) for h in items or ())


def _hooks(h: dict) -> Hooks:
    return Hooks(
        prestart=parse_hooks(h.get("prestart")),
        create_runtime=parse_hooks(h.get("createRuntime")),
        create_container=parse_hooks(h.get("createContainer")),
        start_container=parse_hooks(h.get("startContainer")),
        poststart=parse_hooks(h.get("poststart")),
        poststop=parse_hooks(h.get("poststop")),
    )


def _ids(items: Any) -> tuple[IdMapping, ...]:
    return tuple(IdMapping(int(m["containerID"]), int(m["hostID"]), int(m["size"])) for m in items or ())


def _device(d: dict) -> Device:
    return Device(path=str(d["path"]), type=str(d["type"]), major=int(d.get("major", 0)), minor=int(d.get("minor", 0)),
                  file_mode=d.get("fileMode"), uid=d.get("uid"), gid=d.get("gid"))


def _linux(d: dict) -> Linux:
    return Linux(
        namespaces=tuple(Namespace(str(n["type"]), n.get("path") or None) for n in d.get("namespaces") or ()),
        uid_mappings=_ids(d.get("uidMappings")),
        gid_mappings=_ids(d.get("gidMappings")),
        devices=tuple(_device(x) for x in d.get("devices") or ()),
        cgroups_path=d.get("cgroupsPath") or None,
        resources=d.get("resources"),
        rootfs_propagation=d.get("rootfsPropagation") or None,
        masked_paths=tuple(d.get("maskedPaths") or ()),
        readonly_paths=tuple(d.get("readonlyPaths") or ()),
        sysctl=dict(d.get("sysctl") or {}),
        seccomp=d.get("seccomp"),
        mount_label=d.get("mountLabel"),
    )


# Docker's defaults (moby oci/defaults.go), as runc's `spec` writes them.
DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
                "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
                "CAP_AUDIT_WRITE"]
MASKED_PATHS = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                "/sys/devices/virtual/powercap"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def default_config(args: list[str] | None = None, terminal: bool = True) -> dict:
    """The config.json `imod-runtime spec` writes: Docker's defaults around a `rootfs` directory."""
    caps = list(DEFAULT_CAPS)
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": list(args or ["sh"]),
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "imod",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


def to_rootless(config: dict, uid: int, gid: int) -> dict:
    """`spec --rootless`, as runc's: a user namespace mapping *uid*/*gid* to root instead of a network
    namespace, /sys bound from the host (a new sysfs needs the network namespace's owner), no uid=/gid=
    mount options (ids that are not mapped), no cgroup resources (an unprivileged user may not set them)."""
    linux = config["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] not in ("network", "user")]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
    linux.pop("resources", None)
    for mount in config["mounts"]:
        if mount["destination"] == "/sys":
            mount.update(type="none", source="/sys", options=["rbind", "nosuid", "noexec", "nodev", "ro"])
        elif mount.get("options"):
            mount["options"] = [o for o in mount["options"] if not o.startswith(("uid=", "gid="))]
    return config
