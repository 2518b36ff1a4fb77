"""Blobs of an archive being loaded, verified before any of them enters the store.

`imod load` is all or nothing: every blob of every image in the archive is
written to a temporary file and checked against its digest first; only when
all of them match are they renamed into the store (`commit`). A corrupted
archive therefore leaves the store exactly as it was.
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO

from intermodal.errors import DigestMismatch, InvalidArchive
from intermodal.images import mediatypes as mt
from intermodal.images import reference as refs
from intermodal.images.archive_source import decompression_errors
from intermodal.images.blobs import BlobStore, BlobWriter
from intermodal.images.digest import check_digest, hasher
from intermodal.images.manifest import Manifest, parse_manifest
from intermodal.records import Mutable, factory

CHUNK = 1 << 20


class PendingImage(Mutable):
    """One image found in an archive, ready for `ImageStore.add` once its blobs are committed.

    ``manifest_bytes`` is empty for an image the store already holds: it
    keeps the manifest it has (and so its repo digests), only the tags are new.
    """

    image_id: str
    manifest_bytes: bytes
    media_type: str
    tags: list[refs.Reference] = factory(list)

    @property
    def known(self) -> bool:
        return not self.manifest_bytes


class BlobStager:
    def __init__(self, blobs: BlobStore, known_images: frozenset[str] = frozenset()) -> None:
        self.blobs = blobs
        self.known_images = known_images  # image ids already in the store: nothing of theirs is read
        self._pending: dict[str, BlobWriter] = {}

    def has(self, digest: str) -> bool:
        return digest in self._pending or self.blobs.has(digest)

    def size(self, digest: str) -> int:
        writer = self._pending.get(digest)
        return writer.size if writer is not None else self.blobs.size(digest)

    def stage(self, digest: str, size: int | None, stream: BinaryIO, what: str) -> int:
        """Copy *stream* to a temporary blob and check it; return its size.

        A blob the store (or this load) already holds is not read again:
        the bytes in the store are known to be right.
        """
        check_digest(digest)
        if self.has(digest):
            return self.size(digest)
        h = hasher(digest)
        writer = self.blobs.writer(digest, size)
        try:
            while chunk := _read(stream, what):
                h.update(chunk)
                writer.write(chunk)
            actual = f"{digest.split(':', 1)[0]}:{h.hexdigest()}"
            if actual != digest:
                raise DigestMismatch(what, digest, actual)
            if size is not None and writer.size != size:
                raise InvalidArchive(
                    f"{what} has {writer.size} bytes but {size} were announced; the archive is damaged"
                )
        except BaseException:
            writer.abort()
            raise
        self._pending[digest] = writer
        return writer.size

    def stage_bytes(self, digest: str, data: bytes, what: str) -> None:
        import io

        self.stage(digest, len(data), io.BytesIO(data), what)

    def commit(self) -> None:
        for writer in self._pending.values():
            writer.commit()
        self._pending.clear()

    def abort(self) -> None:
        for writer in self._pending.values():
            writer.abort()
        self._pending.clear()


def check_image(manifest_bytes: bytes, media_type: str, config_bytes: bytes, where: str) -> Manifest:
    """What `ImageStore.add` will insist on, checked before anything is committed."""
    manifest = parse_manifest(manifest_bytes, media_type)
    if manifest.config.media_type and manifest.config.media_type not in (mt.OCI_CONFIG, mt.DOCKER_CONFIG):
        raise InvalidArchive(
            f"{where}: config has media type {manifest.config.media_type!r}, so this is not a container image "
            "(artifacts such as Helm charts cannot be loaded)"
        )
    diff_ids = diff_ids_of(config_bytes, where)
    if len(diff_ids) != len(manifest.layers):
        raise InvalidArchive(
            f"{where}: the config lists {len(diff_ids)} layers but the manifest {len(manifest.layers)}; "
            "the image is broken, re-create the archive"
        )
    return manifest


def diff_ids_of(config_bytes: bytes, where: str) -> list[str]:
    config = json_object(config_bytes, f"{where} config")
    try:
        diff_ids = list(config["rootfs"]["diff_ids"] or [])
    except (KeyError, TypeError) as exc:
        raise InvalidArchive(
            f"{where}: the image config has no rootfs.diff_ids ({exc}); it is not an image config"
        ) from None
    for d in diff_ids:
        if not isinstance(d, str):
            raise InvalidArchive(f"{where}: the image config has a diff_id that is not a string: {d!r}")
        check_digest(d)
    return diff_ids


def json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArchive(f"{what} is not valid JSON ({exc}); the archive is damaged") from None
    if not isinstance(value, dict):
        raise InvalidArchive(f"{what} must be a JSON object")
    return value


def _read(stream: BinaryIO, what: str) -> bytes:
    try:
        return stream.read(CHUNK)
    except (OSError, EOFError) as exc:
        raise InvalidArchive(
            f"{what}: cannot read it from the archive ({exc}); the archive is damaged or truncated"
        ) from None
    except Exception as exc:
        if isinstance(exc, decompression_errors()):
            raise InvalidArchive(f"{what}: cannot decompress it ({exc}); the archive is damaged") from None
        raise

