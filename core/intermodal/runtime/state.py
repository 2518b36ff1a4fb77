"""Container state under the runtime root: ROOT/ID/state.json, written atomically, guarded by a lock.

The record keeps the init pid *and its start time* (field 22 of
/proc/PID/stat): after the container exits its pid may be reused by an
unrelated process, which must never be reported as the container, nor be
signalled by `kill`.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from intermodal.errors import ContainerNotFound, IncorrectState, InvalidArgument, LockTimeout

DEFAULT_ROOT = "/run/imod-runtime"
STATE_FILE = "state.json"
FIFO = "exec.fifo"
OCI_VERSION = "1.0.2"


def _replace(path: Path, data: bytes) -> None:
    """Write-then-rename (readers see the old or the new state), without fsync: this is run state,
    meant for a tmpfs and forgotten at reboot, like runc's. Saves ~5 ms per save on a disk-backed root.
    One temporary name per process: a process writes one state at a time."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class Status(enum.StrEnum):
    CREATING = "creating"
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"

    def can_start(self) -> bool:
        return self is Status.CREATED

    def can_kill(self) -> bool:
        return self in (Status.CREATED, Status.RUNNING, Status.PAUSED)

    def can_delete(self) -> bool:
        # runc also deletes a created container (its user process never ran); so do we.
        return self in (Status.STOPPED, Status.CREATED)

    def can_exec(self) -> bool:
        return self in (Status.CREATED, Status.RUNNING)


class Record:
    """What state.json holds. A plain class: dataclasses would cost every CLI call ~7 ms of import."""

    FIELDS = ("id", "pid", "start_time", "bundle", "rootfs", "created", "annotations", "cgroup_paths",
              "namespaces", "config", "paused", "started", "owner")
    __slots__ = FIELDS

    def __init__(self, id: str, pid: int, start_time: int, bundle: str, rootfs: str, created: str,
                 annotations: dict | None = None, cgroup_paths: dict | None = None,
                 namespaces: list | None = None, config: str = "", paused: bool = False, started: bool = False,
                 owner: str = "") -> None:
        self.id, self.pid, self.start_time, self.bundle, self.rootfs = id, pid, start_time, bundle, rootfs
        self.created, self.config, self.paused, self.started, self.owner = created, config, paused, started, owner
        self.annotations = dict(annotations or {})
        self.cgroup_paths = dict(cgroup_paths or {})
        self.namespaces = list(namespaces or [])

    def to_json(self) -> dict:
        return {name: getattr(self, name) for name in self.FIELDS}

    @classmethod
    def from_json(cls, data: dict) -> Record:
        return cls(**{k: v for k, v in data.items() if k in cls.FIELDS})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]


def check_id(container_id: str) -> str:
    ok = container_id and len(container_id) <= 1024 and "/" not in container_id and container_id not in (".", "..")
    if not ok or container_id.startswith(".") or not container_id.isprintable():
        raise InvalidArgument(f"invalid container id {container_id!r}: use letters, digits, '_', '.', '-'")
    return container_id


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of *pid*, or None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(b")") + 2:].split()
    return fields[0].decode(), int(fields[19])


def alive(record: Record) -> bool:
    """The recorded process still exists, is the same process, and has not exited."""
    found = proc_stat(record.pid)
    return found is not None and found[1] == record.start_time and found[0] not in ("Z", "X")


def status(directory: Path, record: Record) -> Status:
    if not alive(record):
        return Status.STOPPED
    if os.path.exists(directory / FIFO):
        return Status.CREATED  # the init process still waits for `start` on the fifo
    return Status.PAUSED if record.paused else Status.RUNNING


def oci_state(record: Record, current: Status) -> dict:
    """The runtime-spec `state` JSON (plus runc's created/owner/rootfs)."""
    return {
        "ociVersion": OCI_VERSION,
        "id": record.id,
        "status": current.value,
        "pid": record.pid if current is not Status.STOPPED else 0,
        "bundle": record.bundle,
        "rootfs": record.rootfs,
        "created": record.created,
        "owner": record.owner,
        "annotations": record.annotations,
    }


class Store:
    """The runtime root: one directory per container."""

    def __init__(self, root: str | os.PathLike = DEFAULT_ROOT) -> None:
        self.root = Path(root)

    def dir(self, container_id: str) -> Path:
        return self.root / check_id(container_id)

    def make(self, container_id: str) -> Path:
        """Create the container's directory; it existing means the id is taken."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.dir(container_id)
        try:
            path.mkdir(mode=0o711)  # others may traverse: a user-namespaced init opens the fifo in it
        except FileExistsError:
            from intermodal.errors import AlreadyExists

            raise AlreadyExists(f"container {container_id} already exists in {self.root}; "
                                "delete it first or use another id") from None
        return path

    def load(self, container_id: str) -> Record:
        try:
            with open(self.dir(container_id) / STATE_FILE, "rb") as f:
                return Record.from_json(json.load(f))
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotFound(f"container {container_id} does not exist in {self.root}; "
                                    "see `imod-runtime list`") from None

    def save(self, record: Record) -> None:
        _replace(self.dir(record.id) / STATE_FILE, json.dumps(record.to_json(), indent=1, sort_keys=True).encode())

    def ids(self) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(self.root)
                          if e.is_dir() and (Path(e.path) / STATE_FILE).exists())
        except FileNotFoundError:
            return []

    @contextlib.contextmanager
    def lock(self, container_id: str, timeout: float = 30.0) -> Iterator[None]:
        """flock on the container's directory: parallel commands on one container take turns."""
        path = self.dir(container_id)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotFound(f"container {container_id} does not exist in {self.root}; "
                                    "see `imod-runtime list`") from None
        try:
            _flock(fd, path, timeout)
            yield
        finally:
            os.close(fd)


def _flock(fd: int, path: Path, timeout: float) -> None:
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
        if time.monotonic() >= deadline:
            raise LockTimeout(f"{path} is locked by another imod-runtime command; wait for it, then retry")
        time.sleep(0.01)


def incorrect(container_id: str, current: Status, wanted: str) -> IncorrectState:
    return IncorrectState(f"container {container_id}", current.value, wanted)


def state_json(record: Record, current: Status) -> bytes:
    """What hooks read on stdin: the state, with the pid even when stopped (poststop wants it)."""
    return json.dumps(oci_state(record, current) | {"pid": record.pid}).encode()
