"""Writing image archives: a deterministic tar stream, or a directory.

The same images always give the same bytes: entries in a fixed order,
mtime 0, owner 0:0 without names, fixed modes, sorted JSON. Every blob is
hashed while it is copied and checked against the digest it is written
under, so a damaged store never produces an archive that lies.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from intermodal.errors import DigestMismatch, InvalidArchive
from intermodal.images.digest import hasher

CHUNK = 1 << 20


class ArchiveWriter(Protocol):
    def add_dir(self, name: str) -> None: ...

    def add_bytes(self, name: str, data: bytes) -> None: ...

    def add_stream(self, name: str, size: int, stream: BinaryIO, expected: str | None = None) -> None: ...

    def add_symlink(self, name: str, target: str) -> None: ...

    def close(self) -> None: ...


class _Hashing:
    """Reads through *stream*, counting and (when a digest is expected) hashing what passes."""

    def __init__(self, stream: BinaryIO, expected: str | None) -> None:
        self._stream = stream
        self._hash = hasher(expected) if expected else None
        self.expected = expected
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        if self._hash is not None:
            self._hash.update(data)
        self.count += len(data)
        return data

    def check(self, what: str) -> None:
        if self._hash is None or self.expected is None:
            return
        actual = f"{self.expected.split(':', 1)[0]}:{self._hash.hexdigest()}"
        if actual != self.expected:
            raise DigestMismatch(what, self.expected, actual)


class TarWriter:
    """A deterministic PAX tar stream; *fileobj* may be a pipe (written strictly in order).

    Headers come from tarfile, data is copied straight to the output in
    large chunks: tarfile's own stream mode re-slices every write into
    10 kB records, which costs more than the copy itself.
    """

    def __init__(self, fileobj: BinaryIO) -> None:
        self._out = fileobj
        self._offset = 0

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._offset += len(data)

    def _header(self, name: str, kind: bytes, mode: int, size: int = 0, linkname: str = "") -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = mode
        info.size = size
        info.linkname = linkname
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def _pad(self) -> None:
        remainder = self._offset % tarfile.BLOCKSIZE
        if remainder:
            self._write(tarfile.NUL * (tarfile.BLOCKSIZE - remainder))

    def add_dir(self, name: str) -> None:
        self._header(name.rstrip("/") + "/", tarfile.DIRTYPE, 0o755)

    def add_bytes(self, name: str, data: bytes) -> None:
        self._header(name, tarfile.REGTYPE, 0o644, len(data))
        self._write(data)
        self._pad()

    def add_stream(self, name: str, size: int, stream: BinaryIO, expected: str | None = None) -> None:
        self._header(name, tarfile.REGTYPE, 0o644, size)
        reader = _Hashing(stream, expected)
        left = size
        while left:
            chunk = reader.read(min(CHUNK, left))
            if not chunk:
                raise InvalidArchive(f"{name}: the source ended after {size - left} of {size} bytes")
            self._write(chunk)
            left -= len(chunk)
        if reader.read(1):
            raise InvalidArchive(f"{name}: the source holds more than the {size} bytes announced")
        reader.check(name)
        self._pad()

    def add_symlink(self, name: str, target: str) -> None:
        self._header(name, tarfile.SYMTYPE, 0o777, linkname=target)

    def close(self) -> None:
        # Two zero blocks end the archive; GNU tar and tarfile pad it to a whole 10 kB record.
        self._write(tarfile.NUL * (2 * tarfile.BLOCKSIZE))
        remainder = self._offset % tarfile.RECORDSIZE
        if remainder:
            self._write(tarfile.NUL * (tarfile.RECORDSIZE - remainder))


class DirWriter:
    """Writes the same entries as files under *root* (an OCI layout directory)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def add_dir(self, name: str) -> None:
        (self.root / name).mkdir(mode=0o755, parents=True, exist_ok=True)

    def add_bytes(self, name: str, data: bytes) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def add_stream(self, name: str, size: int, stream: BinaryIO, expected: str | None = None) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        reader = _Hashing(stream, expected)
        with open(path, "wb") as out:
            while chunk := reader.read(CHUNK):
                out.write(chunk)
        if reader.count != size:
            raise InvalidArchive(f"{name}: the source gave {reader.count} bytes, {size} were expected")
        reader.check(name)

    def add_symlink(self, name: str, target: str) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)

    def close(self) -> None:
        return None


def spool_uncompressed(stream: BinaryIO, compression: str, diff_id: str, tmp: Path, what: str) -> BinaryIO:
    """Decompress a layer blob into an anonymous temporary file, checking it against *diff_id*.

    A tar header needs the size before the data, and a compressed blob does
    not say how large its tar is; one pass to a temporary file gives both
    the size and the verified content. The file is rewound for reading.
    """
    from intermodal.storage.streams import decompressed

    tmp.mkdir(parents=True, exist_ok=True)
    spool = tempfile.TemporaryFile(dir=tmp, prefix="save-")  # noqa: SIM115 - returned to the caller
    try:
        reader = _Hashing(decompressed(stream, compression), diff_id)  # type: ignore[arg-type]
        while chunk := reader.read(CHUNK):
            spool.write(chunk)
        reader.check(what)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool  # type: ignore[return-value]
