"""The content-addressed blob store: ``blobs/sha256/<hex>``.

Every blob is written to a temporary file on the same filesystem, hashed as
it is written, and renamed into place only when its digest (and size, when
announced) match. A kill -9 at any point leaves at most a temporary file,
which `prune` removes; the store never holds a blob whose name lies.
"""

from __future__ import annotations

import os

from intermodal.errors import BlobNotFound, DigestMismatch, InvalidArgument
from intermodal.images.digest import check_digest, digest_of, hasher, sha256_digest, split

TYPE_CHECKING = False  # not `typing` (~2 ms): `imod run` reads the image config through this module
if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from typing import BinaryIO

CHUNK = 1 << 20


class BlobStore:
    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = root
        self.tmp = tmp

    def path(self, digest: str) -> Path:
        algorithm, hexpart = split(digest)
        return self.root / algorithm / hexpart

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise self._missing(digest) from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise self._missing(digest) from None

    def read(self, digest: str, *, verify: bool = True) -> bytes:
        """Read a small blob (manifest, config), checking its digest by default."""
        with self.open(digest) as f:
            data = f.read()
        if verify:
            actual = digest_of(data, digest.split(":", 1)[0])
            if actual != digest:
                raise DigestMismatch(f"stored blob {digest}", digest, actual)
        return data

    def put(self, data: bytes, expected: str | None = None) -> str:
        """Store *data*; return its digest. Already-present blobs are not rewritten."""
        digest = expected or sha256_digest(data)
        if self.has(digest):
            if expected is not None and sha256_digest(data) != expected and expected.startswith("sha256:"):
                raise DigestMismatch("blob", expected, sha256_digest(data))
            return digest
        with self.writer(expected, len(data)) as w:
            w.write(data)
        return w.digest

    def writer(self, expected: str | None = None, expected_size: int | None = None) -> BlobWriter:
        if expected is not None:
            check_digest(expected)
        return BlobWriter(self, expected, expected_size)

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            pass

    def digests(self) -> Iterator[str]:
        for algorithm_dir in self.root.iterdir() if self.root.is_dir() else ():
            for entry in os.scandir(algorithm_dir):
                if not entry.name.startswith("."):
                    yield f"{algorithm_dir.name}:{entry.name}"

    @staticmethod
    def _missing(digest: str) -> BlobNotFound:
        return BlobNotFound(
            f"blob {digest} is missing from the store; pull or load the image again "
            "(`imod image prune` removes images whose blobs are gone)"
        )


class BlobWriter:
    """Write a blob in chunks; ``commit()`` verifies and publishes it atomically.

    Use as a context manager: leaving the block without an exception commits,
    an exception (or a kill) leaves nothing in the store.
    """

    def __init__(self, store: BlobStore, expected: str | None, expected_size: int | None) -> None:
        self.store = store
        self.expected = expected
        self.expected_size = expected_size
        self._hash = hasher(expected or "sha256:", expected_size)
        self._algorithm = expected.split(":", 1)[0] if expected else "sha256"
        self.size = 0
        self.digest: str | None = None
        store.tmp.mkdir(parents=True, exist_ok=True)
        # The pid in the name lets prune tell abandoned files from live ones.
        self._tmp = store.tmp / f"blob-{os.getpid()}-{os.urandom(6).hex()}"
        self._file = open(self._tmp, "wb")  # noqa: SIM115 - closed by commit()/abort()

    def write(self, data: bytes | memoryview) -> None:
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)
        if self.expected_size is not None and self.size > self.expected_size:
            self.abort()
            raise InvalidArgument(
                f"blob {self.expected or ''} is larger than the announced {self.expected_size} bytes; "
                "the source sent more data than its manifest says, nothing was stored"
            )

    def copy_from(self, source: BinaryIO) -> None:
        while chunk := source.read(CHUNK):
            self.write(chunk)

    def commit(self) -> str:
        actual = f"{self._algorithm}:{self._hash.hexdigest()}"
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        if self.expected is not None and actual != self.expected:
            self.abort()
            raise DigestMismatch("blob", self.expected, actual)
        if self.expected_size is not None and self.size != self.expected_size:
            self.abort()
            raise InvalidArgument(
                f"blob {actual} has {self.size} bytes but {self.expected_size} were announced; "
                "nothing was stored, retry the transfer"
            )
        final = self.store.path(actual)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._tmp, final)
        self.digest = actual
        return actual

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            if self.digest is None:
                self.commit()
        else:
            self.abort()
