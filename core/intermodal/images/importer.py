"""`imod import`: a one-layer image from a root filesystem tar, as `docker import` makes it.

The tar (plain, gzip, zstd, bzip2 or xz: told by its first bytes) is read
once: hashed for the diff_id, gzip-compressed into the blob store and
unpacked. Then an OCI config (this host's platform, the ``--change``
instructions, Docker's "Imported from -" history entry) and an OCI manifest
are stored and the image recorded. The gc guard is held from the first blob
to the record, so a concurrent prune cannot take the new blobs.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from intermodal.errors import InvalidArgument, InvalidReference
from intermodal.images import mediatypes as mt
from intermodal.images import reference as refs
from intermodal.images.changes import apply_changes
from intermodal.images.manifest import Descriptor, canonical_json, host_platform
from intermodal.images.store import ImageRecord

if TYPE_CHECKING:
    from intermodal.images.manager import ImageManager


def import_rootfs(manager: ImageManager, source: Any, reference: str | None = None, *,
                  changes: Sequence[str] = (), message: str = "") -> ImageRecord:
    """Import *source* (a path, a binary file object, or "-" for stdin) as an image.

    Raises InvalidReference, InvalidArgument (a bad --change, a missing
    file), InvalidArchive / UnsafePath (a bad tar).
    """
    tags = [_tag(reference)] if reference else []
    container_config = apply_changes({}, changes)  # refuse a bad --change before reading anything
    store = manager.store
    with store.gc_guard():
        with _opened(source) as raw:
            from intermodal.storage.streams import decompressed, sniffed

            compression, stream = sniffed(raw)
            layer, diff_id = store.layers.create_from_tar(decompressed(stream, compression))
        config = image_config(container_config, [diff_id], message or "Imported from -")
        config_bytes = canonical_json(config)
        config_digest = store.blobs.put(config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": Descriptor(mt.OCI_CONFIG, config_digest, len(config_bytes)).to_json(),
            "layers": [layer.to_json()],
        }
        return store.add(canonical_json(manifest), mt.OCI_MANIFEST, tags=tags)


def image_config(container_config: dict[str, Any], diff_ids: list[str], comment: str) -> dict[str, Any]:
    """An OCI image config for a freshly imported rootfs (moby daemon/images/image_import.go)."""
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    platform = host_platform()
    config: dict[str, Any] = {
        "architecture": platform["architecture"],
        "os": platform["os"],
        "created": created,
        "comment": comment,  # Docker's V1Image.Comment, which `docker inspect` shows
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        # Docker's import leaves created_by empty and says where the layer came from
        "history": [{"created": created, "comment": comment}],
    }
    if platform.get("variant"):
        config["variant"] = platform["variant"]
    return config


def _tag(reference: str) -> refs.Reference:
    ref = refs.parse(reference)
    if ref.digest:
        raise InvalidReference(f"cannot import as {reference!r}: give REPOSITORY[:TAG], not a digest")
    return ref


@contextlib.contextmanager
def _opened(source: Any) -> Iterator[BinaryIO]:
    if hasattr(source, "read"):
        yield source
        return
    if source == "-":
        yield sys.stdin.buffer
        return
    text = os.fspath(source)
    if isinstance(text, str) and text.startswith(("http://", "https://")):
        raise InvalidArgument(
            f"importing from a URL ({text}) is not supported; download it first, then `imod import FILE`"
        )
    try:
        f = open(Path(text), "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        raise InvalidArgument(f"cannot import {text}: no such file; give a tar file, or - for stdin") from None
    except IsADirectoryError:
        raise InvalidArgument(f"cannot import {text}: it is a directory; make a tar of it first "
                              f"(tar -C {text} -c . | imod import -)") from None
    with f:
        yield f
