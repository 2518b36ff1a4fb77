"""Choosing the storage driver: overlay where the kernel can, else vfs.

``IMOD_STORAGE_DRIVER=overlay|vfs`` overrides the choice. Otherwise overlay
is used when /proc/filesystems lists it, we are root, and a trial mount of
two lower directories, an upper and a work directory inside the engine root
succeeds (it fails, for example, when the engine root is itself on an
overlay without the features an upper directory needs); a marker file then
spares later commands the trial.
"""

from __future__ import annotations

import os
from _thread import allocate_lock  # threading.Lock itself, without importing threading (`imod run`)
from pathlib import Path

from intermodal.errors import InvalidArgument, KernelError
from intermodal.fsutil import remove_tree

TYPE_CHECKING = False  # not `typing` (~2 ms): `imod run` imports this to mount a container's layers
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    from intermodal.paths import EnginePaths

    class Driver(Protocol):
        name: str
        whiteouts: str  # how `unpack.extract` stores whiteouts: "overlay" or "apply"
        needs_parent: bool  # True: a layer is unpacked on top of a copy of its parent

        def prepare(self, diff: Path, parent: Path | None) -> None: ...
        def lower_dirs(self, diffs: list[Path]) -> list[Path]: ...
        def mount(self, lowers: list[Path], container_dir: Path) -> Path: ...
        def unmount(self, container_dir: Path) -> None: ...

DRIVERS = ("overlay", "vfs")
PROBE_PREFIX = "probe-"
OVERLAY_WORKS = "overlay-works"  # under paths.layers: a trial mount succeeded there
_chosen: dict[Path, str] = {}  # engine root -> driver name, probed once per process
_probe_lock = allocate_lock()  # pull workers ask at once; one probe is enough


def choose(paths: EnginePaths) -> Driver:
    name = os.environ.get("IMOD_STORAGE_DRIVER") or _chosen.get(paths.root)
    if name is None:
        with _probe_lock:
            name = _chosen.get(paths.root)
            if name is None:
                name = _chosen[paths.root] = "overlay" if overlay_works(paths) else "vfs"
    return by_name(name)


def by_name(name: str) -> Driver:
    if name == "overlay":
        from intermodal.storage.overlay import OverlayDriver

        return OverlayDriver()
    if name == "vfs":
        from intermodal.storage.vfs import VfsDriver

        return VfsDriver()
    raise InvalidArgument(f"unknown storage driver {name!r} (IMOD_STORAGE_DRIVER): use one of {', '.join(DRIVERS)}")


def overlay_works(paths: EnginePaths) -> bool:
    """The trial mount, once per engine root: a marker file remembers its success (it costs ~25 ms)."""
    if os.geteuid() != 0:
        return False
    marker = paths.layers / OVERLAY_WORKS
    if marker.exists():
        return True
    if _probe(paths):
        try:
            marker.touch()
        except OSError:
            pass  # probed again next time
        return True
    return False


def _probe(paths: EnginePaths) -> bool:
    try:
        if "overlay" not in Path("/proc/filesystems").read_text():
            return False
    except OSError:
        return False
    from intermodal.storage.overlay import mount_overlay, unmount

    # Not in tmp/: prune empties tmp/ and must never meet a mounted probe.
    probe = paths.layers / f"{PROBE_PREFIX}{os.getpid()}-{os.urandom(4).hex()}"
    try:
        for d in ("l1", "l2", "upper", "work", "merged"):
            (probe / d).mkdir(parents=True)
        mount_overlay([probe / "l2", probe / "l1"], probe / "upper", probe / "work", probe / "merged")
        unmount(probe / "merged")
        return True
    except (KernelError, OSError):
        return False
    finally:
        try:
            unmount(probe / "merged")
        finally:
            remove_tree(probe)


def remove_dead_probes(paths: EnginePaths, alive: Callable[[int], bool]) -> None:
    """Remove probe directories of commands killed while probing (unmounting first)."""
    from intermodal.storage.overlay import unmount

    for entry in os.scandir(paths.layers) if paths.layers.is_dir() else ():
        parts = entry.name.split("-")
        if entry.name.startswith(PROBE_PREFIX) and len(parts) == 3 and parts[1].isdigit() and not alive(int(parts[1])):
            unmount(Path(entry.path) / "merged")
            remove_tree(Path(entry.path))
