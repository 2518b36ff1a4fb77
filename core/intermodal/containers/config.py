"""Image config + `ContainerSpec` -> the OCI runtime config (bundle `config.json`).

Docker's semantics: the image's ENTRYPOINT/CMD/ENV/WORKDIR/USER/STOPSIGNAL
apply unless the spec overrides them; `--entrypoint` also drops the image's
CMD; capabilities, masked and read-only paths, default mounts and device
rules are Docker's defaults (moby `oci/defaults.go`, `daemon/oci_linux.go`).
"""

from __future__ import annotations

import _signal  # not `signal`, an enum module (~1 ms)
import os

from intermodal.errors import InvalidArgument, InvalidSpec
from intermodal.records import Frozen

TYPE_CHECKING = False  # not `typing` (~4 ms of every `imod`)
if TYPE_CHECKING:
    from typing import Any

    from intermodal.containers.spec import ContainerSpec, Mount

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

# Every capability in kernel order (linux/capability.h); `--privileged` and
# `--cap-add ALL` get those the running kernel knows (cap_last_cap).
ALL_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# Docker's default device cgroup rules: deny all, then the usual character devices.
DEVICE_RULES = (
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},  # null
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},  # zero
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},  # full
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},  # random
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},  # urandom
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},  # tty
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},  # console
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},  # ptmx
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},  # pts
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},  # tun
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
)


class Process(Frozen):
    """The resolved process: what runs, as whom, where, with which environment."""

    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: str  # as given ("", "nobody", "1000:1000"); resolved against the rootfs at start


def image_section(image_config: dict[str, Any]) -> dict[str, Any]:
    return image_config.get("config") or {}


def resolve_process(spec: ContainerSpec, image_config: dict[str, Any], hostname: str) -> Process:
    img = image_section(image_config)
    entrypoint = list(spec.entrypoint) if spec.entrypoint is not None else list(img.get("Entrypoint") or [])
    if spec.command is not None:
        cmd = list(spec.command)
    elif spec.entrypoint is not None:
        cmd = []  # Docker: --entrypoint clears the image's CMD
    else:
        cmd = list(img.get("Cmd") or [])
    args = entrypoint + cmd
    if not args:
        raise InvalidArgument(f"no command to run: image {spec.image} has no CMD or ENTRYPOINT; give a command")
    env = merge_env(img.get("Env") or [], spec.env, hostname, spec.tty)
    cwd = spec.workdir or img.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(f"invalid working directory {cwd!r}: it must be an absolute path")
    return Process(tuple(args), tuple(env), cwd, spec.user if spec.user is not None else (img.get("User") or ""))


def merge_env(image_env: list[str], overrides: tuple[tuple[str, str], ...], hostname: str, tty: bool) -> list[str]:
    env: dict[str, str] = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname}
    for item in image_env:
        key, _, val = item.partition("=")
        env[key] = val
    env.update(dict(overrides))
    if tty:
        env.setdefault("TERM", "xterm")
    return [f"{k}={v}" for k, v in env.items()]


def stop_signal(spec: ContainerSpec, image_config: dict[str, Any]) -> int:
    if spec.stop_signal is not None:
        return spec.stop_signal
    text = image_section(image_config).get("StopSignal")
    if text:
        from intermodal.containers.spec import parse_signal

        return parse_signal(text)
    return int(_signal.SIGTERM)


HEALTH_DEFAULTS = {"Interval": 30_000_000_000, "Timeout": 30_000_000_000, "StartPeriod": 0, "Retries": 3}


def resolve_healthcheck(spec: ContainerSpec, image_config: dict[str, Any]) -> dict[str, Any] | None:
    """The healthcheck in force (Docker's `Config.Healthcheck`, durations in ns), or None."""
    image = image_section(image_config).get("Healthcheck") or {}
    mine = spec.healthcheck.to_json() if spec.healthcheck else {}
    test = mine.get("Test") if mine.get("Test") is not None else image.get("Test")
    if not test or test[0] == "NONE":
        return None
    if test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2:
        raise InvalidArgument(f"invalid healthcheck test {test!r}: use CMD with arguments or CMD-SHELL with a command")
    out: dict[str, Any] = {"Test": list(test)}
    for key, default in HEALTH_DEFAULTS.items():
        value = mine.get(key) if mine.get(key) is not None else image.get(key)
        out[key] = int(value) if value else default
    start_interval = mine.get("StartInterval") or image.get("StartInterval")
    if start_interval:  # shown only when set, as Docker's omitempty
        out["StartInterval"] = int(start_interval)
    return out


def health_argv(test: list[str]) -> list[str]:
    return ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else list(test[1:])


def capabilities(spec: ContainerSpec) -> list[str]:
    last = _cap_last()
    # All the kernel knows that we hold ourselves: a container cannot get
    # more than its engine has (e.g. when intermodal itself runs confined).
    bounding = _own_bounding()
    known = [c for i, c in enumerate(ALL_CAPS[: last + 1]) if bounding >> i & 1]
    if spec.privileged:
        return known
    caps = list(DEFAULT_CAPS)
    for cap in spec.cap_add:
        if cap == "ALL":
            caps = list(known)
        elif cap not in ALL_CAPS:
            raise InvalidArgument(f"unknown capability {cap!r} in --cap-add: see capabilities(7) for the names")
        elif cap not in known:
            raise InvalidArgument(f"cannot add {cap}: intermodal itself does not hold it here (see CapBnd in "
                                  "/proc/self/status)")
        elif cap not in caps:
            caps.append(cap)
    for cap in spec.cap_drop:
        if cap == "ALL":
            caps = [c for c in caps if c in spec.cap_add]
        elif cap not in ALL_CAPS:
            raise InvalidArgument(f"unknown capability {cap!r} in --cap-drop: see capabilities(7) for the names")
        else:
            caps = [c for c in caps if c != cap]
    return [c for c in caps if c in known]


def _own_bounding() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    return (1 << len(ALL_CAPS)) - 1


def _cap_last() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return len(ALL_CAPS) - 1


# -- users --------------------------------------------------------------------


class ResolvedUser(Frozen):
    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    home: str


def resolve_user(rootfs: str, user: str) -> ResolvedUser:
    """`name`, `uid`, `name:group`, `uid:gid` against the image's /etc/passwd and /etc/group, as Docker does."""
    name, _, group = (user or "root").partition(":")
    passwd = _read_db(rootfs, "etc/passwd")
    entry = next((e for e in passwd if e[0] == name or (name.isdigit() and e[2] == name)), None)
    if entry is None and not name.isdigit():
        raise InvalidArgument(f"unable to find user {name}: no matching entries in the image's /etc/passwd; "
                              "use a numeric uid or a user the image has")
    uid = int(entry[2]) if entry else int(name)
    gid = int(entry[3]) if entry and len(entry) > 3 and entry[3].isdigit() else 0
    home = entry[5] if entry and len(entry) > 5 and entry[5] else "/"
    groups = _read_db(rootfs, "etc/group")
    if group:
        found = next((g for g in groups if g[0] == group or (group.isdigit() and g[2] == group)), None)
        if found is None and not group.isdigit():
            raise InvalidArgument(f"unable to find group {group}: no matching entries in the image's /etc/group; "
                                  "use a numeric gid or a group the image has")
        gid = int(found[2]) if found else int(group)
    extra = tuple(sorted({int(g[2]) for g in groups if len(g) > 3 and entry and entry[0] in g[3].split(",")
                          and g[2].isdigit() and int(g[2]) != gid}))
    return ResolvedUser(uid, gid, extra, home)


def _read_db(rootfs: str, relative: str) -> list[list[str]]:
    """Lines of a colon file inside the rootfs; a path that escapes the rootfs counts as missing."""
    path = os.path.realpath(os.path.join(rootfs, relative))
    if not path.startswith(os.path.realpath(rootfs) + os.sep):
        return []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.split(":") for line in f.read().splitlines() if line and not line.startswith("#")]
    except OSError:
        return []


# -- the OCI config -----------------------------------------------------------


class BundleInputs(Frozen):
    """What `build_config` needs beyond the spec: paths prepared by the manager."""

    container_id: str
    rootfs: str
    hostname: str
    etc_files: dict[str, str]  # container path -> host file (hosts, hostname, resolv.conf)
    mounts: tuple[tuple[Mount, str], ...]  # each spec mount with its host source (volume dir, host path)
    cgroups_path: str
    netns: str | None = None  # the network namespace to join (a bridge or named network), made at start


def build_config(spec: ContainerSpec, image_config: dict[str, Any], inputs: BundleInputs) -> dict[str, Any]:
    proc = resolve_process(spec, image_config, inputs.hostname)
    user = resolve_user(inputs.rootfs, proc.user)
    env = list(proc.env)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={user.home}")
    caps = capabilities(spec)
    cap_sets = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    args = list(proc.args)
    init_mounts: list[dict[str, Any]] = []
    if spec.init:
        args = [INIT_PATH, "--", *args]
        init_mounts = [{"destination": INIT_PATH, "type": "bind", "source": init_binary(),
                        "options": ["rbind", "ro", "rprivate"]}]
    config: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": spec.tty,
            "user": {"uid": user.uid, "gid": user.gid, **({"additionalGids": list(user.additional_gids)}
                                                         if user.additional_gids else {})},
            "args": args,
            "env": env,
            "cwd": proc.cwd,
            "capabilities": cap_sets,
            "noNewPrivileges": False,
        },
        "root": {"path": inputs.rootfs, "readonly": spec.read_only},
        "hostname": inputs.hostname,
        "mounts": default_mounts(spec) + user_mounts(inputs.mounts) + etc_mounts(inputs.etc_files) + init_mounts,
        "linux": {
            "namespaces": namespaces(spec, inputs.netns),
            "cgroupsPath": inputs.cgroups_path,
            "resources": resources(spec),
            "maskedPaths": [] if spec.privileged else list(MASKED_PATHS),
            "readonlyPaths": [] if spec.privileged else list(READONLY_PATHS),
        },
    }
    if spec.devices or spec.privileged:
        from intermodal.containers.devices import oci_devices

        config["linux"]["devices"] = oci_devices(spec.devices, spec.privileged)[0]
    if not spec.privileged:
        profile = default_seccomp(caps)
        if profile is not None:
            config["linux"]["seccomp"] = profile
    return config


INIT_PATH = "/sbin/docker-init"  # where Docker puts its init, so scripts that look for it find it
INIT_CANDIDATES = ("/usr/bin/catatonit", "/usr/libexec/podman/catatonit", "/usr/bin/tini-static",
                   "/usr/bin/docker-init")


def init_binary() -> str:
    """A statically linked init on the host ($IMOD_INIT, else catatonit or tini-static): it runs in any image."""
    wanted = os.environ.get("IMOD_INIT")
    for path in ([wanted] if wanted else INIT_CANDIDATES):
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise InvalidArgument("--init needs a static init on this host: install catatonit (scripts/setup does) "
                          "or set IMOD_INIT to one")


def namespaces(spec: ContainerSpec, netns: str | None = None) -> list[dict[str, str]]:
    out = [{"type": k} for k in ("pid", "ipc", "uts", "mount")]
    if spec.network == "none":
        out.append({"type": "network"})  # a new, empty one: only loopback, which the runtime brings up
    elif spec.network.startswith("container:"):
        if netns is not None:  # None: that container uses the host's
            out.append({"type": "network", "path": netns})
    elif spec.network != "host":
        out.append({"type": "network", "path": netns or ""})  # made and wired at start (containers/net.py)
    return out


def default_mounts(spec: ContainerSpec) -> list[dict[str, Any]]:
    sys_opts = ["nosuid", "noexec", "nodev"] + ([] if spec.privileged else ["ro"])
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    ]


def user_mounts(mounts: tuple[tuple[Mount, str], ...]) -> list[dict[str, Any]]:
    out = []
    # Shallow targets first, so /data/sub lands inside /data and not under it.
    for m, source in sorted(mounts, key=lambda pair: pair[0].target.rstrip("/").count("/")):
        if m.type == "tmpfs":
            opts = ["nosuid", "nodev", *m.options, *(["ro"] if m.readonly else [])]
            out.append({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": opts})
            continue
        propagation = [o for o in m.options if o in ("private", "rprivate", "shared", "rshared", "slave", "rslave")]
        opts = ["rbind", "ro" if m.readonly else "rw", *(propagation or ["rprivate"])]
        out.append({"destination": m.target, "type": "bind", "source": source, "options": opts})
    return out


def etc_mounts(files: dict[str, str]) -> list[dict[str, Any]]:
    return [{"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate"]}
            for dest, src in files.items()]


def resources(spec: ContainerSpec) -> dict[str, Any]:
    res: dict[str, Any] = {"devices": [dict(r) for r in DEVICE_RULES] if not spec.privileged
                           else [{"allow": True, "access": "rwm"}]}
    if spec.devices and not spec.privileged:
        from intermodal.containers.devices import oci_devices

        res["devices"] += oci_devices(spec.devices, False)[1]
    if spec.device_cgroup_rules and not spec.privileged:  # as moby: after --device's; privileged allows all
        from intermodal.containers.devices import cgroup_rules

        res["devices"] += cgroup_rules(spec.device_cgroup_rules)
    if spec.memory is not None:
        if spec.memory < 6 * 1024 * 1024:
            raise InvalidArgument(f"memory limit {spec.memory} bytes is too low: the minimum is 6m")
        res["memory"] = {"limit": spec.memory}
    if spec.cpus is not None:
        period = 100_000
        res["cpu"] = {"quota": int(spec.cpus * period), "period": period}
    if spec.pids_limit is not None:
        res["pids"] = {"limit": spec.pids_limit}
    return res


def default_seccomp(caps: list[str]) -> dict[str, Any] | None:
    """Docker's default profile, from the runtime package once it provides it."""
    try:
        from intermodal.runtime.seccomp_default import build
    except ImportError:
        return None
    try:
        return build(caps)
    except Exception as err:  # a half-finished profile must not stop containers from starting
        raise InvalidSpec(f"the default seccomp profile could not be built ({err}); "
                          "report this, or run with --privileged to skip seccomp") from err


# -- /etc files -----------------------------------------------------------------


def hosts_file(hostname: str, network: str) -> str:
    if network == "host":
        try:
            with open("/etc/hosts", encoding="utf-8") as f:
                return f.read()
        except OSError:
            pass
    return ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            f"127.0.1.1\t{hostname}\n")


def resolv_conf(network: str) -> str:
    """The host's resolv.conf; without a network, local resolvers (127.x) cannot be reached, so they go."""
    try:
        with open("/etc/resolv.conf", encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    if network != "host":
        lines = [ln for ln in lines if not (ln.startswith("nameserver") and ln.split()[1:2]
                                            and ln.split()[1].startswith(("127.", "::1")))]
    return "\n".join(lines) + "\n"
