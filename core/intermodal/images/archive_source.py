"""Reading image archives safely: a tar file (plain or compressed) or a directory.

An archive is looked at through member names only. Every name is checked
before anything is read: absolute names, `..` components and links that
point outside the archive make the whole archive unusable, so a crafted
archive can never make us read (or later write) outside of it.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from intermodal.errors import InvalidArchive, UnsafePath

CHUNK = 1 << 20
MAX_JSON = 32 << 20  # manifests, configs and indexes are small; refuse to buffer more
MAX_LINK_HOPS = 16

class Source(Protocol):
    """The members of an archive, by normalised name."""

    description: str

    def exists(self, name: str) -> bool: ...

    def size(self, name: str) -> int: ...

    def open(self, name: str) -> BinaryIO: ...

    def close(self) -> None: ...


def member_name(name: str, where: str = "archive") -> str:
    """*name* normalised (``./a//b`` is ``a/b``); UnsafePath if it could leave the archive."""
    if not name or "\x00" in name:
        raise UnsafePath(f"{where}: an entry has an empty or NUL-containing name; the archive is damaged or crafted")
    if name.startswith("/"):
        raise UnsafePath(f"{where}: entry {name!r} has an absolute path; refusing the archive (it may be crafted)")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafePath(
            f"{where}: entry {name!r} points outside the archive; refusing the archive (it may be crafted)"
        )
    return "/".join(parts)


def link_target(member: str, linkname: str, *, symbolic: bool, where: str = "archive") -> str:
    """Where a link member points, as a member name; UnsafePath if outside the archive."""
    if linkname.startswith("/"):
        raise UnsafePath(f"{where}: link {member!r} points to absolute path {linkname!r}; refusing the archive")
    # A symlink is relative to its directory; a hard link names a member from the archive root.
    joined = posixpath.join(posixpath.dirname(member), linkname) if symbolic else linkname
    normal = posixpath.normpath(joined)
    if normal == ".." or normal.startswith("../"):
        raise UnsafePath(f"{where}: link {member!r} -> {linkname!r} points outside the archive; refusing the archive")
    return member_name(normal, where)


def read_limited(source: Source, name: str, limit: int = MAX_JSON) -> bytes:
    """A small member's bytes (JSON documents); InvalidArchive when larger than *limit*."""
    if source.size(name) > limit:
        raise InvalidArchive(f"{source.description}: {name} is larger than {limit} bytes; it is not an image document")
    with source.open(name) as f:
        return f.read(limit + 1)


class TarSource:
    """An uncompressed, seekable tar file, indexed once by member name."""

    def __init__(self, fileobj: BinaryIO, description: str, *, owned: bool = False) -> None:
        self.description = description
        self._file = fileobj
        self._owned = owned  # a spooled copy is ours to close; the caller's file is not
        try:
            self._tar = tarfile.open(fileobj=fileobj, mode="r:")  # noqa: SIM115 - closed by close()
            self._members = self._index()
        except (tarfile.TarError, EOFError) as exc:
            raise InvalidArchive(
                f"{description} is not a readable tar archive ({exc}); check that the file is complete"
            ) from None

    def _index(self) -> dict[str, tarfile.TarInfo]:
        members: dict[str, tarfile.TarInfo] = {}
        for info in self._tar:
            name = member_name(info.name, self.description)
            if info.issym() or info.islnk():
                link_target(name, info.linkname, symbolic=info.issym(), where=self.description)
            if name:
                members[name] = info  # a later entry replaces an earlier one, as tar extraction does
        return members

    def exists(self, name: str) -> bool:
        try:
            self._resolve(name)
        except InvalidArchive:
            return False
        return True

    def size(self, name: str) -> int:
        return self._resolve(name).size

    def open(self, name: str) -> BinaryIO:
        info = self._resolve(name)
        f = self._tar.extractfile(info)
        assert f is not None  # _resolve returns regular files only
        return f

    def _resolve(self, name: str) -> tarfile.TarInfo:
        current = member_name(name, self.description)
        for _ in range(MAX_LINK_HOPS):
            info = self._members.get(current)
            if info is None:
                raise InvalidArchive(f"{self.description} has no entry {current!r}; the archive is incomplete")
            if info.isreg():
                return info
            if not (info.issym() or info.islnk()):
                raise InvalidArchive(f"{self.description}: entry {current!r} is not a regular file")
            current = link_target(current, info.linkname, symbolic=info.issym(), where=self.description)
        raise InvalidArchive(f"{self.description}: entry {name!r} is a chain of more than {MAX_LINK_HOPS} links")

    def close(self) -> None:
        self._tar.close()
        if self._owned:
            self._file.close()


class DirSource:
    """A directory (an OCI layout, or an unpacked docker-archive)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.description = str(root)

    def _path(self, name: str) -> Path:
        rel = member_name(name, self.description)
        # resolve() follows symlinks; the result must stay inside the directory.
        path = (self.root / rel).resolve()
        if path != self.root and self.root not in path.parents:
            raise UnsafePath(f"{self.description}: {name!r} leads outside the directory; refusing it")
        return path

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def size(self, name: str) -> int:
        return self._stat(name).st_size

    def _stat(self, name: str) -> os.stat_result:
        try:
            st = self._path(name).stat()
        except FileNotFoundError:
            raise InvalidArchive(f"{self.description} has no file {name!r}; the layout is incomplete") from None
        if not stat.S_ISREG(st.st_mode):
            raise InvalidArchive(f"{self.description}: {name!r} is not a regular file")
        return st

    def open(self, name: str) -> BinaryIO:
        self._stat(name)
        return open(self._path(name), "rb")

    def close(self) -> None:
        return None


def decompression_errors() -> tuple[type[BaseException], ...]:
    """The error classes of the decompressors already in use (each library has its own)."""
    import sys
    import zlib

    found: list[type[BaseException]] = [zlib.error]
    lzma = sys.modules.get("lzma")
    if lzma is not None:
        found.append(lzma.LZMAError)
    zstandard = sys.modules.get("zstandard")
    if zstandard is not None:
        found.append(zstandard.ZstdError)
    return tuple(found)


def open_stream(stream: BinaryIO, description: str, tmp: Path) -> TarSource:
    """A tar source over *stream*: used in place when seekable and plain, else spooled.

    Compressed or piped archives are decompressed once into an anonymous
    temporary file under the engine's tmp directory (same filesystem as the
    store, removed by the kernel even if we are killed).
    """
    from intermodal.storage.streams import decompressed, detect, sniffed

    if _seekable(stream):
        start = stream.tell()
        head = stream.read(8)
        stream.seek(start)
        if not head:
            raise _empty(description)
        compression = detect(head)
        if compression == "none":
            return TarSource(stream, description)
    else:
        compression, stream = sniffed(stream)  # type: ignore[assignment]
    tmp.mkdir(parents=True, exist_ok=True)
    spool = tempfile.TemporaryFile(dir=tmp, prefix="load-")  # noqa: SIM115 - returned to the caller
    try:
        reader = decompressed(stream, compression)
        while chunk := _read_chunk(reader, description, compression):
            spool.write(chunk)
        if spool.tell() == 0:
            raise _empty(description)
        spool.seek(0)
        return TarSource(spool, description, owned=True)
    except BaseException:
        spool.close()
        raise


def _empty(description: str) -> InvalidArchive:
    return InvalidArchive(f"{description} is empty; give an image archive (imod save writes one)")


def _read_chunk(reader: Any, description: str, compression: str) -> bytes:
    try:
        return reader.read(CHUNK)
    except (OSError, EOFError, *decompression_errors()) as exc:
        what = f"decompress the {compression} archive" if compression != "none" else "read the archive"
        raise InvalidArchive(f"{description}: cannot {what} ({exc}); check that the file is complete") from None


def _seekable(stream: BinaryIO) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, OSError, ValueError):
        return False

