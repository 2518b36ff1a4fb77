"""Removing what no one uses: dangling images, then blobs and layers.

Garbage collection runs under the exclusive ``gc`` lock, which every writer
of new content holds shared; so while it runs no pull, load or import is
half-way, and everything in ``tmp/`` is abandoned.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from intermodal.errors import BlobNotFound, InvalidArchive, LockTimeout
from intermodal.fsutil import remove_tree
from intermodal.locking import locked

if TYPE_CHECKING:
    from intermodal.images.manager import ImageManager


def prune_images(manager: ImageManager, *, all_unused: bool) -> dict[str, Any]:
    deleted: list[dict[str, str]] = []
    for record in manager.store.list():
        if manager.users(record.id):
            continue
        if record.tags and not all_unused:
            continue
        for tag in record.tags:
            deleted.append({"Untagged": tag})
        manager.store.delete(record.id)
        deleted.append({"Deleted": record.id})
    reclaimed = collect_garbage(manager, wait=True)
    return {"ImagesDeleted": deleted, "SpaceReclaimed": reclaimed}


def collect_garbage(manager: ImageManager, *, wait: bool) -> int:
    """Delete blobs and layers no image references; return the bytes freed.

    With ``wait=False`` (after `rmi`) it gives up at once when a pull or load
    is running; the next prune finishes the job.
    """
    store = manager.store
    try:
        with locked(store.paths.locks / "gc", timeout=120.0 if wait else 0.0):
            keep_blobs, keep_layers = _referenced(manager)
            freed = _remove_blobs(store.blobs, keep_blobs)
            freed += _clear_tmp(store.paths.tmp)
            layers = store.layers
            layers.remove_unused(keep_layers)
            return freed
    except LockTimeout:
        if wait:
            raise
        return 0


def _referenced(manager: ImageManager) -> tuple[set[str], set[str]]:
    store = manager.store
    blobs: set[str] = set()
    diff_ids: set[str] = set()
    for record in store.list():
        blobs.update((record.manifest, record.id))
        diff_ids.update(record.diff_ids)
        try:
            manifest = store.manifest(record)
        except (BlobNotFound, InvalidArchive):
            continue  # a damaged image keeps what it still has; rmi removes it
        blobs.update(layer.digest for layer in manifest.layers)
    return blobs, diff_ids


def _remove_blobs(blobs: Any, keep: set[str]) -> int:
    freed = 0
    for digest in list(blobs.digests()):
        if digest in keep:
            continue
        try:
            freed += blobs.size(digest)
        except BlobNotFound:
            continue
        blobs.delete(digest)
    return freed


def _clear_tmp(tmp: Any) -> int:
    freed = 0
    if not tmp.is_dir():
        return 0
    for entry in os.scandir(tmp):
        path = tmp / entry.name
        if entry.is_dir(follow_symlinks=False):
            remove_tree(path)
        else:
            freed += entry.stat(follow_symlinks=False).st_size
            os.unlink(path)
    return freed
