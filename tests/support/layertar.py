"""Build small layer tars in memory for the layer-store tests."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass, field

MTIME = 1_700_000_000


@dataclass
class Entry:
    name: str
    kind: str = "file"  # file, dir, symlink, hardlink, fifo, char, block
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: float = MTIME
    link: str = ""
    xattrs: dict[str, bytes] = field(default_factory=dict)
    dev: tuple[int, int] = (0, 0)


def file(name: str, data: bytes = b"", **kw) -> Entry:
    return Entry(name, "file", data, **kw)


def directory(name: str, **kw) -> Entry:
    kw.setdefault("mode", 0o755)
    return Entry(name, "dir", **kw)


def symlink(name: str, target: str, **kw) -> Entry:
    kw.setdefault("mode", 0o777)
    return Entry(name, "symlink", link=target, **kw)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, "hardlink", link=target)


def whiteout(path: str) -> Entry:
    parent, _, base = path.rpartition("/")
    return file(f"{parent}/.wh.{base}" if parent else f".wh.{base}")


def opaque(directory_path: str) -> Entry:
    return file(f"{directory_path}/.wh..wh..opq")


_TYPES = {
    "file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
    "fifo": tarfile.FIFOTYPE, "char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE,
}


def tar_bytes(*entries: Entry) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = _TYPES[e.kind]
            info.mode = e.mode
            info.uid, info.gid = e.uid, e.gid
            info.mtime = e.mtime
            info.linkname = e.link
            info.devmajor, info.devminor = e.dev
            if e.xattrs:
                info.pax_headers = {
                    f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in e.xattrs.items()
                }
            if e.kind == "file":
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def diff_id(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
