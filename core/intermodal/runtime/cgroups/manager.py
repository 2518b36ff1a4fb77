"""The cgroup manager interface, and the file helpers both backends share.

A manager owns one container's cgroup: on cgroup v1 one directory per mounted
controller (plus the named ``name=systemd`` hierarchy and, on a hybrid host,
the cgroup2 mount), on cgroup v2 a single directory. ``runtime`` code talks to
:class:`CgroupManager` only; :func:`intermodal.runtime.cgroups.manager_for`
picks the backend once per process from the host's layout.
"""

from __future__ import annotations

import errno
import os
import time
from abc import ABC, abstractmethod

from intermodal.errors import InvalidSpec, KernelError

# rmdir of a cgroup answers EBUSY while a task is still exiting (killed but not
# yet gone from the cgroup) and briefly after (css freed asynchronously): retry,
# within one bound for the whole destroy() however many hierarchies there are.
RMDIR_BOUND = 1.0
RMDIR_FIRST_DELAY = 0.005

# Keys of OCI linux.resources this package knows; anything else is reported.
KNOWN_RESOURCES = frozenset({
    "devices", "memory", "cpu", "pids", "blockIO", "hugepageLimits", "network", "rdma", "unified",
})


class CgroupManager(ABC):
    """One container's cgroup(s). Every method may raise ``KernelError``.

    ``warnings`` collects what ``set`` could not apply exactly but which is not
    worth refusing the container for (each is also logged); hard failures are
    ``InvalidSpec`` (the spec asks for something this host cannot do) or
    ``KernelError`` (a cgroup file refused the value).
    """

    def __init__(self) -> None:
        self.warnings: list[str] = []

    @abstractmethod
    def apply(self, pid: int) -> None:
        """Create the cgroup directories (parents too) and move ``pid`` in.

        Idempotent: joining an existing cgroup (``exec``) uses the same call.
        """

    @abstractmethod
    def set(self, resources: dict | None, *, keep_devices: bool = False) -> None:
        """Write OCI ``linux.resources`` into the cgroup files (*keep_devices*: leave the device rules alone).

        Supported: memory (limit, swap, reservation, disableOOMKiller, swappiness,
        kernelTCP), cpu (shares or weight, quota/period, realtime, cpus, mems,
        idle, burst), pids.limit, blockIO (weight, leafWeight, weightDevice,
        throttle*), hugepageLimits, devices (always: deny all but the spec's
        rules and runc's default devices; v1 controller or v2 eBPF program),
        unified (v2 only). A value for a controller this host lacks raises
        ``InvalidSpec`` naming the JSON path; nothing is silently ignored.
        """

    def update(self, resources: dict) -> None:
        """Change the limits of a running container (`runc update`): ``set`` for the keys *resources*
        gives; the device rules stay as they are unless it gives ``devices``."""
        self.set(resources, keep_devices="devices" not in resources)

    @abstractmethod
    def destroy(self) -> None:
        """Remove the container's cgroup directories (and sub-cgroups the
        container made). Kills nothing: a cgroup that still has tasks after a
        bounded retry on EBUSY raises ``KernelError`` (EBUSY). Missing is fine.
        """

    @abstractmethod
    def paths(self) -> dict[str, str]:
        """Absolute directories by controller, for the state file.

        v1: ``{"memory": "/sys/fs/cgroup/memory/x", ..., "name=systemd": ...,
        "unified": "/sys/fs/cgroup/unified/x"}`` (``unified`` on hybrid hosts);
        v2: ``{"unified": "/sys/fs/cgroup/x"}``. :func:`manager_from_paths`
        rebuilds a manager from this dict (``exec``, ``delete`` from another
        process, whose own cgroup may differ).
        """

    @abstractmethod
    def freeze(self) -> None:
        """Freeze every task in the cgroup; returns when the kernel says frozen."""

    @abstractmethod
    def thaw(self) -> None:
        """Undo :meth:`freeze`."""

    @abstractmethod
    def pids(self) -> list[int]:
        """PIDs (host view) of every process in the cgroup and its sub-cgroups."""

    @abstractmethod
    def oom_file(self) -> str | None:
        """The file whose ``oom_kill N`` line counts OOM kills (v1 memory.oom_control,
        v2 memory.events), for a monitor that reads it without this package;
        ``None`` without a memory controller."""

    def oom_kill_count(self) -> int:
        """OOM kills in this cgroup since it was created."""
        path = self.oom_file()
        if not path or not os.path.exists(path):
            return 0
        return read_keyed(os.path.dirname(path), os.path.basename(path)).get("oom_kill", 0)

    def oom_killed(self) -> bool:
        """Whether the kernel OOM-killed a task in this cgroup since creation."""
        return self.oom_kill_count() > 0

    @abstractmethod
    def stats(self) -> dict:
        """``{"memory": {"usage", "max_usage", "limit"}, "pids": {"current",
        "limit"}, "cpu": {"usage_ns"}}``; a controller the host lacks is absent,
        a value that the kernel does not provide is ``None``."""

    # -- shared by both backends ------------------------------------------------

    def _warn(self, text: str) -> None:
        import logging  # only when there is something to say: logging costs ~15 ms to import

        self.warnings.append(text)
        logging.getLogger("intermodal.runtime.cgroups").warning("%s", text)


# Fields of each object in linux.resources (runtime-spec config-linux.md).
KNOWN_FIELDS = {
    "memory": frozenset({"limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness", "disableOOMKiller",
                         "useHierarchy", "checkBeforeUpdate"}),
    "cpu": frozenset({"shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems",
                      "idle"}),
    "pids": frozenset({"limit"}),
    "blockIO": frozenset({"weight", "leafWeight", "weightDevice", "throttleReadBpsDevice", "throttleWriteBpsDevice",
                          "throttleReadIOPSDevice", "throttleWriteIOPSDevice"}),
    "network": frozenset({"classID", "priorities"}),
}


def check_known(resources: dict) -> None:
    """Reject keys of linux.resources (and of its objects) that no backend knows."""
    unknown = sorted(set(resources) - KNOWN_RESOURCES)
    if unknown:
        raise InvalidSpec(
            f"linux.resources: unknown key(s) {', '.join(unknown)}; "
            f"known are {', '.join(sorted(KNOWN_RESOURCES))}: fix config.json"
        )
    for key, fields in KNOWN_FIELDS.items():
        section = resources.get(key)
        if section is None:
            continue
        if not isinstance(section, dict):
            raise InvalidSpec(f"linux.resources.{key}: must be an object; fix config.json")
        extra = sorted(set(section) - fields)
        if extra:
            raise InvalidSpec(f"linux.resources.{key}: unknown field(s) {', '.join(extra)}; "
                              f"known are {', '.join(sorted(fields))}: fix config.json")


def write(directory: str, name: str, value: str | int) -> None:
    """Write one cgroup file; the error names the file and the value."""
    path = os.path.join(directory, name)
    data = str(value).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except OSError as exc:
        raise KernelError("open", path, exc.errno or errno.EIO,
                          "the cgroup controller file is missing; is the controller enabled here?") from None
    try:
        os.write(fd, data)
    except OSError as exc:
        raise KernelError(f"write {str(value)!r} to", path, exc.errno or errno.EIO,
                          "the kernel refused this cgroup value; check the limit in config.json") from None
    finally:
        os.close(fd)


def read(directory: str, name: str) -> str:
    path = os.path.join(directory, name)
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as exc:
        raise KernelError("read", path, exc.errno or errno.EIO) from None


def read_keyed(directory: str, name: str) -> dict[str, int]:
    """A flat-keyed file (``memory.events``, ``cpu.stat``) as a dict."""
    out: dict[str, int] = {}
    for line in read(directory, name).splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def exists(directory: str, name: str) -> bool:
    return os.path.exists(os.path.join(directory, name))


def mkdir_p(path: str) -> list[str]:
    """Create ``path`` and missing parents; returns the directories made, top first."""
    made: list[str] = []
    missing: list[str] = []
    p = path
    while p and p != "/" and not os.path.isdir(p):
        missing.append(p)
        p = os.path.dirname(p)
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o755)
            made.append(d)
        except FileExistsError:
            pass
        except OSError as exc:
            raise KernelError("mkdir", d, exc.errno or errno.EIO,
                              "cannot create the cgroup; is the hierarchy writable and are we root?") from None
    return made


def procs(directory: str) -> list[int]:
    """PIDs in ``directory`` and every cgroup below it (bounded by the tree)."""
    out: list[int] = []
    for root, _dirs, files in os.walk(directory):
        if "cgroup.procs" in files:
            try:
                with open(os.path.join(root, "cgroup.procs")) as f:
                    out.extend(int(x) for x in f.read().split())
            except (FileNotFoundError, ProcessLookupError):
                continue  # the sub-cgroup vanished under us
    return out


def deadline() -> float:
    """The time by which a destroy() gives up retrying EBUSY."""
    return time.monotonic() + RMDIR_BOUND


def remove_tree(path: str, until: float | None = None) -> None:
    """rmdir ``path`` and its sub-cgroups, deepest first, retrying EBUSY until ``until``.

    cgroup directories hold only kernel files, which rmdir removes with them;
    ``shutil.rmtree`` would try to unlink those files and fail.
    """
    if not os.path.isdir(path):
        return
    until = deadline() if until is None else until
    subdirs = [os.path.join(root, d) for root, dirs, _ in os.walk(path) for d in dirs]
    for d in [*sorted(subdirs, key=lambda s: s.count("/"), reverse=True), path]:
        _rmdir_retry(d, until)


def _rmdir_retry(path: str, until: float) -> None:
    delay = RMDIR_FIRST_DELAY
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() >= until:
                hint = "processes are still in the cgroup; kill them and retry" if exc.errno == errno.EBUSY else ""
                raise KernelError("rmdir", path, exc.errno or errno.EIO, hint) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
