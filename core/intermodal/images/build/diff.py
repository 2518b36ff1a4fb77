"""The change a RUN step made, as an OCI layer tar with whiteouts.

overlay: the upper directory is the change. overlayfs marks a deleted
file with a 0/0 character device and a directory whose lower content is
hidden with the xattr ``trusted.overlay.opaque=y``
(Documentation/filesystems/overlayfs.rst); the OCI layer format says the
same with ``.wh.NAME`` and ``.wh..wh..opq`` (image-spec layer.md).
vfs: the container's copy is compared with the snapshot it was copied from.
Entries are sorted, so the same change gives the same tar.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

OPAQUE_XATTR = "trusted.overlay.opaque"
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


def write_upper(upper: Path, out: BinaryIO, skip: Callable[[str, os.stat_result], bool] | None = None) -> int:
    """The overlay upper directory as a layer tar; returns the number of entries."""
    count = 0
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel, path, st in _entries(upper):
            if skip is not None and skip(rel, st):
                continue
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                _add_marker(tar, _join(os.path.dirname(rel), WHITEOUT + os.path.basename(rel)), st)
            else:
                _add(tar, path, rel)
                if stat.S_ISDIR(st.st_mode) and _opaque(path):
                    _add_marker(tar, _join(rel, OPAQUE), st)
            count += 1
    return count


def write_compare(lower: Path | None, rootfs: Path, out: BinaryIO,
                  skip: Callable[[str, os.stat_result], bool] | None = None) -> int:
    """What differs between the snapshot *lower* and the copy *rootfs*, as a layer tar (vfs).

    A directory whose entries changed is written too, with its metadata (as Docker's changes.go does),
    so permissions of the parents travel with the change.
    """
    seen: set[str] = set()
    changed: list[tuple[str, str]] = []
    for rel, path, st in _entries(rootfs):
        seen.add(rel)
        if skip is not None and skip(rel, st):
            continue
        old = _lstat(lower / rel) if lower is not None else None
        if old is None or not _same(old, st, lower / rel, path):  # type: ignore[operator]
            changed.append((rel, path))
    seen.add("")  # the root: a removed top-level entry is whited out
    removed = [(rel, st) for rel, _, st in (_entries(lower) if lower is not None else ())
               if rel not in seen and os.path.dirname(rel) in seen]
    parents = {p for rel in [r for r, _ in changed] + [r for r, _ in removed] for p in _ancestors(rel)}
    names = {rel for rel, _ in changed}
    count = 0
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel, path, _ in _entries(rootfs):
            if rel in names or rel in parents:
                _add(tar, path, rel)
                count += 1
        for rel, st in removed:
            _add_marker(tar, _join(os.path.dirname(rel), WHITEOUT + os.path.basename(rel)), st)
            count += 1
    return count


def _ancestors(rel: str) -> list[str]:
    parts = rel.split("/")[:-1]
    return ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]


def _entries(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            yield rel, path, os.lstat(path)


def _same(a: os.stat_result, b: os.stat_result, path_a: Path, path_b: str) -> bool:
    if (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid):
        return False
    if stat.S_ISDIR(a.st_mode):
        return True  # a directory's own change is its metadata; its entries are compared one by one
    if stat.S_ISLNK(a.st_mode):
        return os.readlink(path_a) == os.readlink(path_b)
    if stat.S_ISCHR(a.st_mode) or stat.S_ISBLK(a.st_mode):
        return a.st_rdev == b.st_rdev
    if a.st_size != b.st_size:
        return False
    if a.st_mtime_ns == b.st_mtime_ns:
        return True  # `cp -a` kept the time: untouched
    return _same_bytes(path_a, path_b)


def _same_bytes(a: Path, b: str) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _add(tar: tarfile.TarFile, path: str, rel: str) -> None:
    tar.add(path, arcname=rel, recursive=False)


def _add_marker(tar: tarfile.TarFile, name: str, st: os.stat_result) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = int(st.st_mtime)
    tar.addfile(info)


def _opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError as err:
        if err.errno in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
            return False
        raise
