"""Byte streams for layers: decompression, hashing while reading, compressing tee.

Every reader here is read once, front to back, in large chunks: a layer is
decompressed, hashed and extracted in one pass with no temporary copy.
"""

from __future__ import annotations

import collections
import os

from intermodal.errors import InvalidArchive

# hashlib and zlib are imported by the readers that need them; typing only for checkers.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import concurrent.futures
    from typing import BinaryIO, Protocol

    class Readable(Protocol):
        def read(self, n: int = -1, /) -> bytes: ...

CHUNK = 1 << 20  # large reads keep Python's per-call overhead out of the profile

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
BZIP2_MAGIC = b"BZh"
XZ_MAGIC = b"\xfd7zXZ\x00"


def detect(head: bytes) -> str:
    """``gzip``, ``zstd``, ``bzip2``, ``xz`` or ``none`` from the first bytes of a stream."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(BZIP2_MAGIC):
        return "bzip2"
    if head.startswith(XZ_MAGIC):
        return "xz"
    return "none"


def decompressed(source: Readable, compression: str) -> Readable:
    """A reader of *source* decompressed with *compression* (see :func:`detect`)."""
    if compression == "none":
        return source
    if compression == "gzip":
        return GzipReader(source)
    if compression == "zstd":
        import zstandard  # lazily: a C extension only layer I/O needs

        return zstandard.ZstdDecompressor().stream_reader(source, read_size=CHUNK, read_across_frames=True)
    if compression == "bzip2":
        import bz2

        return bz2.BZ2File(source)  # type: ignore[arg-type]
    if compression == "xz":
        import lzma

        return lzma.LZMAFile(source)  # type: ignore[arg-type]
    raise InvalidArchive(f"unsupported compression {compression!r}: use gzip, zstd, bzip2, xz or a plain tar")


def sniffed(source: Readable) -> tuple[str, Readable]:
    """Detect the compression of a stream that may not seek (stdin); return it and a reader from byte 0."""
    head = source.read(8)
    while 0 < len(head) < 8:
        more = source.read(8 - len(head))
        if not more:
            break
        head += more
    return detect(head), Prefixed(head, source)


class Prefixed:
    """*prefix* followed by the rest of *source*: un-reads what sniffing consumed."""

    def __init__(self, prefix: bytes, source: Readable) -> None:
        self._prefix = prefix
        self._source = source

    def read(self, n: int = -1) -> bytes:
        if not self._prefix:
            return self._source.read(n)
        # A short read is allowed by every consumer; only b"" means the end.
        if n < 0 or n >= len(self._prefix):
            head, self._prefix = self._prefix, b""
        else:
            head, self._prefix = self._prefix[:n], self._prefix[n:]
        return head


class ForwardReader:
    """A stream that tarfile may "seek" forward in, so it can use its random-access reader.

    tarfile's stream mode (``r|``) re-slices its whole read buffer on every
    512-byte header, which makes layers of many small files crawl; here a
    header read is one small slice, and file data passes through uncopied.
    """

    def __init__(self, source: Readable) -> None:
        self._source = source
        self._buf = b""
        self._at = 0  # read position in _buf
        self._offset = 0  # stream offset of _buf[0]

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._offset + self._at

    def peek(self, n: int) -> bytes:
        """The next *n* bytes (fewer at the end), without consuming them."""
        while len(self._buf) - self._at < n:
            chunk = self._source.read(CHUNK)
            if not chunk:
                break
            self._offset += self._at
            self._buf = self._buf[self._at:] + chunk
            self._at = 0
        return self._buf[self._at:self._at + n]

    def seek(self, position: int, whence: int = 0) -> int:
        if whence != 0:
            raise OSError("a layer stream only seeks to absolute positions")
        skip = position - self.tell()
        if skip < 0:
            if -skip > self._at:
                raise OSError(f"cannot seek back {-skip} bytes in a layer stream")
            self._at += skip
            return position
        while skip > 0:
            avail = len(self._buf) - self._at
            if avail >= skip:
                self._at += skip
                break
            skip -= avail
            self._offset += len(self._buf)
            self._buf, self._at = self._source.read(max(skip, CHUNK)), 0
            if not self._buf:
                break
        return self.tell()

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 62
        avail = len(self._buf) - self._at
        if avail >= n:
            self._at += n
            return self._buf[self._at - n:self._at]
        parts = [self._buf[self._at:]] if avail else []
        need = n - avail
        self._offset += len(self._buf)
        self._buf, self._at = b"", 0
        while need > 0:
            chunk = self._source.read(max(need, CHUNK) if need < (1 << 62) else CHUNK)
            if not chunk:
                break
            if len(chunk) <= need:
                parts.append(chunk)
                self._offset += len(chunk)
                need -= len(chunk)
            else:
                parts.append(chunk[:need])
                self._buf, self._at = chunk, need
                need = 0
        return b"".join(parts)


class GzipReader:
    """gzip decompression with zlib directly: one C call per megabyte, multi-member streams."""

    def __init__(self, source: Readable) -> None:
        import zlib

        # read1: take what a pipe has now instead of waiting for a full chunk
        self._read = getattr(source, "read1", source.read)
        self._z = zlib.decompressobj(wbits=31)
        self._pending = b""  # compressed input not yet given to zlib
        self._done = False

    def read(self, n: int = -1) -> bytes:
        import zlib  # imported by __init__: a dictionary lookup

        limit = n if n > 0 else CHUNK
        while not self._done:
            data = self._z.unconsumed_tail or self._pending or self._read(CHUNK)
            self._pending = b""
            if not data:
                if not self._z.eof:
                    raise InvalidArchive("gzip stream is truncated: the layer or archive is incomplete; fetch it again")
                self._done = True
                break
            try:
                out = self._z.decompress(data, limit)
            except zlib.error as exc:
                raise InvalidArchive(f"gzip stream is corrupt ({exc}); fetch the layer or archive again") from None
            if self._z.eof:
                self._next_member(self._z.unused_data)
            if out:
                return out
        return b""

    def _next_member(self, rest: bytes) -> None:
        # Concatenated gzip members form one stream (RFC 1952 2.2); trailing
        # zero padding, as some tools write, ends it.
        rest = rest or self._read(CHUNK)
        if not rest.strip(b"\0"):
            while rest and not rest.strip(b"\0"):
                rest = self._read(CHUNK)
            if not rest:
                self._done = True
                return
        import zlib

        self._z = zlib.decompressobj(wbits=31)
        self._pending = rest


class HashingReader:
    """Pass-through reader that hashes (sha256) and counts what is read."""

    def __init__(self, source: Readable) -> None:
        from hashlib import sha256  # OpenSSL: layers are large

        self._source = source
        self._hash = sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._source.read(n)
        self._hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Read to the end, so the digest covers trailing blocks the tar reader skips."""
        while self.read(CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class CompressingTee(HashingReader):
    """Hash an uncompressed tar while gzip-compressing it into *sink* (a BlobWriter).

    deflate is the slow part (tens of MB/s), so fixed 4 MiB pieces of the
    stream are compressed in worker threads (zlib releases the GIL) as
    separate gzip members, written in order: a multi-member gzip file, which
    every gzip reader accepts (RFC 1952 2.2), as pigz writes. Fixed pieces
    and mtime 0 keep the blob deterministic: equal tars give equal blobs.
    """

    PIECE = 4 << 20

    def __init__(self, source: Readable, sink: BinaryIO, level: int = 1, workers: int | None = None) -> None:
        super().__init__(source)
        self._sink = sink
        self._level = level
        self._pending = bytearray()
        self._workers = workers or max(1, min(4, os.cpu_count() or 1))
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._inflight: collections.deque[concurrent.futures.Future[bytes]] = collections.deque()

    def read(self, n: int = -1) -> bytes:
        data = super().read(n)
        if data:
            self._pending += data
            while len(self._pending) >= self.PIECE:
                self._submit(bytes(self._pending[:self.PIECE]))
                del self._pending[:self.PIECE]
        return data

    def finish(self) -> None:
        """Read the rest of the source and write the last members."""
        try:
            self.drain()
            if self._pending or not self.size:
                self._submit(bytes(self._pending))  # an empty stream still makes a valid gzip file
                self._pending.clear()
            while self._inflight:
                self._sink.write(self._inflight.popleft().result())
        finally:
            self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _submit(self, piece: bytes) -> None:
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor  # lazily: only layer creation compresses

            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="imod-gzip")
        self._inflight.append(self._pool.submit(_gzip_member, piece, self._level))
        # bounded memory: write finished members in order as soon as enough are queued
        while len(self._inflight) > 2 * self._workers or (self._inflight and self._inflight[0].done()):
            self._sink.write(self._inflight.popleft().result())


def _gzip_member(data: bytes, level: int) -> bytes:
    import zlib

    # wbits=31: a gzip header with mtime 0 and no name
    z = zlib.compressobj(level, zlib.DEFLATED, 31)
    return z.compress(data) + z.flush()
