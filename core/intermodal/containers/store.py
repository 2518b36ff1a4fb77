"""Containers on disk: one directory per container under ``paths.containers``.

``<id>/config.json`` is the record (spec, image, name, creation time),
written last when a container is created, so a directory without it is a
container still being made (or a crashed attempt). ``<id>/state.json`` is
the runtime state, rewritten atomically. Both change only under the
container's lock, ``locks/containers/<id>``. Names are unique through
``containers/names.json``, changed only under ``locks/container-names``.
Lock order: a container's lock before the names lock, never the reverse.
"""

from __future__ import annotations

import os
from pathlib import Path

from intermodal import cjson  # json's C half, without re and enum
from intermodal.errors import AlreadyExists, ContainerNotFound, InvalidArgument, LockTimeout
from intermodal.fsutil import atomic_write_json, read_json
from intermodal.locking import locked
from intermodal.paths import EnginePaths

TYPE_CHECKING = False  # not `typing` (~4 ms of every `imod`)
if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from typing import Any

RECORD = "config.json"
STATE = "state.json"


def replace_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write-then-rename without fsync, for files that are rebuilt or recomputed after a crash.

    Readers still see the old or the new content, never half; only the
    durability across a power loss is given up, which costs ~8 ms per file
    on this machine kind. state.json qualifies: after a reboot no monitor
    runs and the state is recomputed (`status.effective`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_json(path: Path, value: Any, mode: int = 0o600) -> None:
    replace_file(path, cjson.dumps(value, indent=1, sort_keys=True).encode(), mode)


def write_json_durable(path: Path, value: Any, mode: int = 0o600, *, durable: bool = True) -> None:
    """Compact JSON (the C encoder; `indent` makes it a slow pure-Python one), fsync'd and renamed.

    ``durable=False`` skips the fsync (~1-8 ms): for the bundle of a `--rm` container, which no start
    after a crash needs (the record stays durable: `ps` must be able to read it).
    """
    data = cjson.dumps(value, separators=(",", ":")).encode()
    if not durable:
        replace_file(path, data, mode)
        return
    from intermodal.fsutil import atomic_write

    atomic_write(path, data, mode)


def new_id() -> str:
    """64 hex digits from the kernel's CSPRNG: unguessable, no retry loop needed."""
    return os.urandom(32).hex()


class ContainerStore:
    def __init__(self, paths: EnginePaths) -> None:
        self.paths = paths
        self.root = paths.containers
        self.names_path = self.root / "names.json"

    # -- paths and locks -----------------------------------------------------

    def dir(self, cid: str) -> Path:
        return self.root / cid

    def lock_path(self, cid: str) -> Path:
        return self.paths.locks / "containers" / cid

    def lock(self, cid: str, timeout: float | None = None) -> AbstractContextManager[None]:
        return locked(self.lock_path(cid)) if timeout is None else locked(self.lock_path(cid), timeout=timeout)

    def locked_existing(self, cid: str) -> AbstractContextManager[None]:
        """The container's lock, then a check that it still exists (rm may have won the race)."""
        return _LockedExisting(self, cid)

    def names_lock(self) -> AbstractContextManager[None]:
        return locked(self.paths.locks / "container-names")

    # -- records -------------------------------------------------------------

    def exists(self, cid: str) -> bool:
        return (self.dir(cid) / RECORD).exists()

    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return [n for n in names if len(n) == 64 and (self.root / n / RECORD).exists()]

    def read_record(self, cid: str) -> dict[str, Any]:
        record = read_json(self.dir(cid) / RECORD)
        if record is None:
            raise ContainerNotFound(f"no such container: {cid[:12]}")
        return record

    def write_record(self, cid: str, record: dict[str, Any]) -> None:
        atomic_write_json(self.dir(cid) / RECORD, record, mode=0o600)

    def read_state(self, cid: str) -> dict[str, Any]:
        return read_json(self.dir(cid) / STATE, default={}) or {}

    def write_state(self, cid: str, state: dict[str, Any]) -> None:
        write_json(self.dir(cid) / STATE, state)

    def update_state(self, cid: str, **changes: Any) -> dict[str, Any]:
        """Read, change and write the state; the caller holds the container's lock."""
        state = self.read_state(cid)
        state.update(changes)
        self.write_state(cid, state)
        return state

    # -- names ---------------------------------------------------------------

    def names(self) -> dict[str, str]:
        return read_json(self.names_path, default={}) or {}

    def reserve_name(self, name: str, cid: str) -> None:
        """Claim *name* for *cid*; raises AlreadyExists naming the holder. Caller holds *cid*'s lock."""
        with self.names_lock():
            names = self.names()
            holder = names.get(name)
            if holder and holder != cid and not self._stale(holder):
                raise AlreadyExists(
                    f'the container name "/{name}" is already in use by container {holder[:12]}; '
                    "remove or rename that container, or choose another name")
            names[name] = cid
            atomic_write_json(self.names_path, names)

    def release_name(self, name: str, cid: str) -> None:
        """No fsync: a release lost in a crash leaves a name whose container has no record, which is stale."""
        with self.names_lock():
            names = self.names()
            if names.get(name) == cid:
                del names[name]
                write_json(self.names_path, names, 0o644)

    def rename(self, cid: str, old: str, new: str) -> None:
        with self.names_lock():
            names = self.names()
            holder = names.get(new)
            if holder and holder != cid and not self._stale(holder):
                raise AlreadyExists(f'the container name "/{new}" is already in use by container {holder[:12]}; '
                                    "choose another name")
            if names.get(old) == cid:
                del names[old]
            names[new] = cid
            atomic_write_json(self.names_path, names)

    def _stale(self, cid: str) -> bool:
        """A name whose container has no record and whose creator is gone (crashed mid-create)."""
        if self.exists(cid):
            return False
        try:
            with self.lock(cid, timeout=0):
                return not self.exists(cid)
        except LockTimeout:
            return False  # its creator is still at work

    # -- lookup --------------------------------------------------------------

    def resolve(self, name_or_id: str) -> str:
        """A full id, a name (with or without Docker's leading '/'), or a unique id prefix."""
        key = name_or_id.lstrip("/")
        if not key:
            raise InvalidArgument("empty container name or id: name a container")
        if len(key) == 64 and self.exists(key):
            return key
        cid = self.names().get(key)
        if cid and self.exists(cid):
            return cid
        if all(c in "0123456789abcdef" for c in key):
            matches = [i for i in self.ids() if i.startswith(key)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise InvalidArgument(f"container id prefix {key!r} matches {len(matches)} containers; "
                                      "give more characters of the id")
        raise ContainerNotFound(f"no such container: {name_or_id}; see `imod ps -a` for the containers that exist")


class _LockedExisting:
    """`ContainerStore.locked_existing` (a class: `imod` need not import contextlib for it)."""

    __slots__ = ("cid", "lock", "store")

    def __init__(self, store: ContainerStore, cid: str) -> None:
        self.store, self.cid = store, cid
        self.lock = store.lock(cid)

    def __enter__(self) -> None:
        self.lock.__enter__()
        if not (self.store.dir(self.cid) / RECORD).exists():
            # Taking the lock recreated the file its remover deleted last: ids are never reused, so it goes.
            try:
                self.store.lock_path(self.cid).unlink()
            except FileNotFoundError:
                pass
            finally:
                self.lock.__exit__(None, None, None)
            raise ContainerNotFound(f"no such container: {self.cid[:12]} (it was removed meanwhile)")

    def __exit__(self, *exc: object) -> None:
        self.lock.__exit__(*exc)
