"""`imod push`: send an image of the store to a registry.

Blobs the registry already holds are skipped (HEAD); a blob known to live in
another repository of the same registry (from the image's repo digests) is
mounted across repositories instead of uploaded; the rest is uploaded in one
PUT, or in PATCH chunks when a chunk size is given and the blob is larger.
The manifest goes last, with its exact bytes and media type, so its digest
is the one the store holds; the resulting repo digest is recorded.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
from typing import TYPE_CHECKING

from intermodal.errors import DigestMismatch, InvalidArgument, InvalidReference, RegistryError
from intermodal.images import reference as refs
from intermodal.images.manifest import Descriptor, parse_manifest
from intermodal.images.progress import Progress
from intermodal.images.registry import DEFAULT_RETRIES, RegistryClient

if TYPE_CHECKING:
    from intermodal.images.blobs import BlobStore
    from intermodal.images.manager import ImageManager
    from intermodal.images.store import ImageRecord

WORKERS = 3


def push(
    manager: ImageManager,
    name: str,
    destination: str | None = None,
    *,
    tls_verify: bool = True,
    cert_dir: str | os.PathLike | None = None,
    authfile: str | os.PathLike | None = None,
    credentials: tuple[str, str] | None = None,
    progress: Progress | None = None,
    workers: int = WORKERS,
    chunk_size: int | None = None,
    retries: int = DEFAULT_RETRIES,
) -> str:
    """Push the image *name* to *destination* (default: *name*); return the manifest digest.

    Raises ImageNotFound, InvalidReference, AuthenticationError, RegistryError,
    BlobNotFound (the store lost a blob of the image).
    """
    progress = progress or Progress()
    record = manager.get(name)
    dest = _destination(name, destination)
    store = manager.store
    data = store.manifest_bytes(record)
    manifest = parse_manifest(data, record.media_type)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    sources = mount_sources(record, dest)
    progress.line(f"The push refers to repository [{dest.familiar_name}]")
    with RegistryClient(dest.domain, tls_verify=tls_verify, cert_dir=cert_dir, credentials=credentials,
                        authfile=authfile, retries=retries) as client:
        for layer in manifest.layers:
            progress.update(layer.digest, "Preparing")
        blobs = [manifest.config, *manifest.layers]
        with cf.ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="imod-push") as pool:
            futures = [pool.submit(_push_blob, client, store.blobs, dest.path, desc, sources,
                                   progress if desc is not manifest.config else None, chunk_size) for desc in blobs]
            for future in futures:
                future.result()
        progress.close()
        reported = client.put_manifest(dest.path, dest.tag or refs.DEFAULT_TAG, data, record.media_type)
    if reported.startswith("sha256:") and reported != digest:
        raise DigestMismatch(f"manifest pushed to {dest}", digest, reported)
    store.add_repo_digest(record.id, dest.with_digest(digest))
    progress.line(f"{dest.tag}: digest: {digest} size: {len(data)}")
    return digest


def _destination(name: str, destination: str | None) -> refs.Reference:
    target = destination or name
    if destination is None and refs.looks_like_id(name.removeprefix("sha256:")):
        raise InvalidArgument(f"cannot push {name!r}: an image id has no repository; give a destination "
                              "(imod push ID registry.example:5000/team/app:1)")
    try:
        dest = refs.parse(target)
    except InvalidReference:
        raise
    if dest.digest:
        raise InvalidReference(f"cannot push to {target!r}: a digest is computed by the push, give name:tag")
    return dest


def mount_sources(record: ImageRecord, dest: refs.Reference) -> list[str]:
    """Repositories on the destination's registry that already hold this image (from its repo digests)."""
    out: list[str] = []
    for entry in (*record.digests, *record.tags):
        try:
            ref = refs.parse(entry)
        except InvalidReference:
            continue
        if ref.domain == dest.domain and ref.path != dest.path and ref.path not in out:
            out.append(ref.path)
    return out


def _push_blob(client: RegistryClient, blobs: BlobStore, repository: str, desc: Descriptor, sources: list[str],
               progress: Progress | None, chunk_size: int | None) -> str:
    """Make one blob present in *repository*; returns how: exists, mounted, uploaded."""
    report = progress.update if progress is not None else (lambda *a, **k: None)
    if client.has_blob(repository, desc.digest, push=True):
        report(desc.digest, "Layer already exists")
        return "exists"
    location = None
    for source in sources[:1]:
        try:
            location = client.mount_blob(repository, desc.digest, source)
        except RegistryError:
            location = None  # a refused mount is not fatal: upload instead
        else:
            if location is None:
                report(desc.digest, f"Mounted from {source}")
                return "mounted"
    path = blobs.path(desc.digest)
    size = blobs.size(desc.digest)
    report(desc.digest, "Pushing", 0, size)
    client.upload_blob(repository, desc.digest, size, lambda: open(path, "rb"), location=location,  # noqa: SIM115
                       chunk_size=chunk_size)
    report(desc.digest, "Pushed")
    return "uploaded"
