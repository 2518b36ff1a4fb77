"""Container state under the runtime root: ROOT/ID/state.json, written atomically, guarded by a lock.

The record keeps the init pid *and its start time* (field 22 of
/proc/PID/stat): after the container exits its pid may be reused by an
unrelated process, which must never be reported as the container, nor be
signalled by `kill`.
"""

from __future__ import annotations

import os

from intermodal import cjson
from intermodal.errors import ContainerNotFound, IncorrectState, InvalidArgument
from intermodal.locking import acquire

TYPE_CHECKING = False  # not `typing`: the monitor's launcher imports this for every start
if TYPE_CHECKING:
    from pathlib import Path

DEFAULT_ROOT = "/run/imod-runtime"
STATE_FILE = "state.json"
FIFO = "exec.fifo"
OCI_VERSION = "1.0.2"


def _replace(path: str, data: bytes) -> None:
    """Write-then-rename (readers see the old or the new state), without fsync: this is run state,
    meant for a tmpfs and forgotten at reboot, like runc's. Saves ~5 ms per save on a disk-backed root.
    One temporary name per process: a process writes one state at a time."""
    head, name = os.path.split(path)
    tmp = os.path.join(head, f".{name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class Status(str):
    """A lifecycle state: one instance per name, equal to its value ("running"), as the
    `enum.StrEnum` it replaces was (enum and re cost every container start ~1 ms to import)."""

    __slots__ = ()
    CREATING: Status
    CREATED: Status
    RUNNING: Status
    PAUSED: Status
    STOPPED: Status

    def __new__(cls, value: str) -> Status:
        try:
            return _STATUSES[value]
        except KeyError:
            raise ValueError(f"{value!r} is not a valid Status") from None

    @property
    def value(self) -> str:
        return str.__str__(self)

    @property
    def name(self) -> str:
        return self.value.upper()

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"<Status.{self.name}: {self.value!r}>"

    def __reduce__(self) -> tuple:
        return Status, (self.value,)

    def can_start(self) -> bool:
        return self is Status.CREATED

    def can_kill(self) -> bool:
        return self in (Status.CREATED, Status.RUNNING, Status.PAUSED)

    def can_delete(self) -> bool:
        # runc also deletes a created container (its user process never ran); so do we.
        return self in (Status.STOPPED, Status.CREATED)

    def can_exec(self) -> bool:
        return self in (Status.CREATED, Status.RUNNING)


_STATUSES: dict[str, Status] = {}
for _value in ("creating", "created", "running", "paused", "stopped"):
    _STATUSES[_value] = str.__new__(Status, _value)
    setattr(Status, _value.upper(), _STATUSES[_value])
del _value


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


def status(directory: str | os.PathLike, record: Record) -> Status:
    if not alive(record):
        return Status.STOPPED
    if os.path.exists(os.path.join(directory, FIFO)):
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
    """The runtime root: one directory per container.

    Paths are strings (`root_dir`, `path`, `create`): pathlib costs every container start ~3 ms
    to import. `root`, `dir` and `make` give the same as `Path`s, for callers that want one.
    """

    def __init__(self, root: str | os.PathLike = DEFAULT_ROOT) -> None:
        self.root_dir = os.fspath(root)

    @property
    def root(self) -> Path:
        from pathlib import Path

        return Path(self.root_dir)

    def path(self, container_id: str, *names: str) -> str:
        """The container's directory, or *names* inside it."""
        return os.path.join(self.root_dir, check_id(container_id), *names)

    def dir(self, container_id: str) -> Path:
        from pathlib import Path

        return Path(self.path(container_id))

    def create(self, container_id: str) -> str:
        """Create the container's directory; it existing means the id is taken."""
        os.makedirs(self.root_dir, mode=0o700, exist_ok=True)
        path = self.path(container_id)
        try:
            os.mkdir(path, 0o711)  # others may traverse: a user-namespaced init opens the fifo in it
        except FileExistsError:
            from intermodal.errors import AlreadyExists

            raise AlreadyExists(f"container {container_id} already exists in {self.root_dir}; "
                                "delete it first or use another id") from None
        return path

    def make(self, container_id: str) -> Path:
        """:meth:`create`, as a `Path`."""
        from pathlib import Path

        return Path(self.create(container_id))

    def load(self, container_id: str) -> Record:
        try:
            with open(self.path(container_id, STATE_FILE), "rb") as f:
                return Record.from_json(cjson.loads(f.read()))
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotFound(f"container {container_id} does not exist in {self.root_dir}; "
                                    "see `imod-runtime list`") from None

    def save(self, record: Record) -> None:
        _replace(self.path(record.id, STATE_FILE), cjson.dumps(record.to_json(), indent=1, sort_keys=True).encode())

    def ids(self) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(self.root_dir)
                          if e.is_dir() and os.path.exists(os.path.join(e.path, STATE_FILE)))
        except FileNotFoundError:
            return []

    def lock(self, container_id: str, timeout: float = 30.0) -> _Lock:
        """flock on the container's directory: parallel commands on one container take turns.

        A context manager; the directory is opened (or ContainerNotFound raised) on entering it."""
        return _Lock(self, container_id, timeout)


class _Lock:
    """What :meth:`Store.lock` returns (not contextlib's generator: contextlib costs ~2 ms to import)."""

    def __init__(self, store: Store, container_id: str, timeout: float) -> None:
        self.store, self.container_id, self.timeout, self.fd = store, container_id, timeout, -1

    def __enter__(self) -> None:
        path = self.store.path(self.container_id)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotFound(f"container {self.container_id} does not exist in {self.store.root_dir}; "
                                    "see `imod-runtime list`") from None
        try:
            acquire(fd, path, timeout=self.timeout, holder="another imod-runtime command")
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def __exit__(self, *exc: object) -> None:
        fd, self.fd = self.fd, -1
        os.close(fd)


def incorrect(container_id: str, current: Status, wanted: str) -> IncorrectState:
    return IncorrectState(f"container {container_id}", current.value, wanted)


def state_json(record: Record, current: Status) -> bytes:
    """What hooks read on stdin: the state, with the pid even when stopped (poststop wants it)."""
    return cjson.dumps(oci_state(record, current) | {"pid": record.pid}).encode()
