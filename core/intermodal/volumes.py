"""`engine.volumes`: named volumes, as Docker's `local` driver keeps them.

``volumes/<name>/_data`` is the content, ``volumes/<name>/volume.json`` the
record (labels, creation time, anonymous or not). Every change happens
under ``locks/volumes``. A volume is seeded from the image whenever a
container is created with it while it is empty, like Docker; which
containers use a volume is read from their records, so it cannot drift.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intermodal.errors import InUse, InvalidArgument, VolumeNotFound
from intermodal.fsutil import atomic_write_json, check_name, read_json, remove_tree
from intermodal.locking import locked

if TYPE_CHECKING:
    from intermodal.engine import Engine


class VolumeManager:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.root = engine.paths.volumes

    def _lock(self) -> contextlib.AbstractContextManager[None]:
        return locked(self.engine.paths.locks / "volumes")

    def _dir(self, name: str) -> Path:
        return self.root / check_name(name, "volume")

    def path(self, name: str) -> Path:
        """Where the volume's content lives on the host."""
        return self._dir(name) / "_data"

    # -- reading ---------------------------------------------------------------

    def exists(self, name: str) -> bool:
        return (self._dir(name) / "volume.json").exists()

    def get(self, name: str) -> dict[str, Any]:
        """Docker's `volume inspect` shape. Raises VolumeNotFound."""
        record = read_json(self._dir(name) / "volume.json")
        if record is None:
            raise VolumeNotFound(f"no such volume: {name}; see `imod volume ls`, or create it with "
                                 f"`imod volume create {name}`")
        return {
            "CreatedAt": record.get("CreatedAt", ""),
            "Driver": "local",
            "Labels": record.get("Labels") or {},
            "Mountpoint": str(self.path(name)),
            "Name": name,
            "Options": record.get("Options") or {},
            "Scope": "local",
            **({"Anonymous": True} if record.get("Anonymous") else {}),
        }

    def inspect(self, name: str) -> dict[str, Any]:
        return self.get(name)

    def list(self, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        found = [self.get(n) for n in names if (self.root / n / "volume.json").exists()]
        return [v for v in found if _matches(v, filters or {}, self)]

    def users(self, name: str) -> list[str]:
        """Names of the containers whose mounts use the volume."""
        return self.engine.containers.volume_users(name)

    # -- changing --------------------------------------------------------------

    def create(self, name: str | None = None, *, labels: dict[str, str] | None = None,
               anonymous: bool = False) -> dict[str, Any]:
        """Create a volume; an existing one of that name is returned unchanged (as Docker does)."""
        name = name or os.urandom(32).hex()
        directory = self._dir(name)
        with self._lock():
            if not (directory / "volume.json").exists():
                (directory / "_data").mkdir(parents=True, exist_ok=True, mode=0o755)
                from intermodal.containers.logs import timestamp

                atomic_write_json(directory / "volume.json", {
                    "CreatedAt": timestamp()[:19] + "Z", "Labels": dict(labels or {}), "Anonymous": anonymous,
                    "Options": {},
                })
        return self.get(name)

    def remove(self, name: str, *, force: bool = False) -> None:
        """Raises VolumeNotFound; InUse when a container uses it (even with *force*, for a running one)."""
        with self._lock():
            self.get(name)
            users = self.users(name)
            if users and not force:
                raise InUse(f"volume {name} is in use by container(s) {', '.join(users)}; remove them first "
                            "(`imod rm`), or use --force")
            remove_tree(self._dir(name))

    def prune(self, *, all: bool = False) -> dict[str, Any]:
        """Remove unused anonymous volumes (all unused ones with *all*), as Docker 23+ does."""
        deleted: list[str] = []
        reclaimed = 0
        for volume in self.list():
            if not (all or volume.get("Anonymous")):
                continue
            with self._lock():
                if self.users(volume["Name"]):
                    continue
                reclaimed += _du(self._dir(volume["Name"]))
                remove_tree(self._dir(volume["Name"]))
                deleted.append(volume["Name"])
        return {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}

    def seed(self, name: str, source: Path) -> bool:
        """Docker's copy-up, at each container's creation: when the volume is empty and the image has a
        directory at the mount point, its content, owner and mode go into the volume; True if it did.

        As moby's copyExistingContents: emptiness is the only condition, so a volume made beforehand
        (`volume create`), or emptied by a user, is filled at its next mount too; a volume with any
        content is never merged into. `nocopy` (the caller's) skips this.
        """
        data = self._dir(name) / "_data"
        with self._lock():
            if not source.is_dir() or source.is_symlink() or any(data.iterdir()):
                return False
            if any(source.iterdir()):
                # cp -a keeps owners, modes, times, links and xattrs; `source/.` copies the content only.
                proc = subprocess.run(["cp", "-a", "--", f"{source}/.", f"{data}/"], capture_output=True)
                if proc.returncode != 0:
                    raise InvalidArgument(f"could not copy the image's {source.name} into volume {name}: "
                                          f"{proc.stderr.decode(errors='replace').strip()}")
            st = source.stat()
            os.chown(data, st.st_uid, st.st_gid)
            os.chmod(data, st.st_mode & 0o7777)
            return True


def _matches(volume: dict[str, Any], filters: dict[str, list[str]], manager: VolumeManager) -> bool:
    for key, values in filters.items():
        if key == "name" and not any(v in volume["Name"] for v in values):
            return False
        if key == "label" and not all(_has_label(volume["Labels"], v) for v in values):
            return False
        if key == "dangling":
            dangling = not manager.users(volume["Name"])
            if not any((v.lower() in ("true", "1")) == dangling for v in values):
                return False
    return True


def _has_label(labels: dict[str, str], text: str) -> bool:
    key, eq, value = text.partition("=")
    return key in labels and (not eq or labels[key] == value)


def _du(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


__all__ = ["VolumeManager"]
