"""`imod pull`: fetch an image from a registry into the store.

The manifest (by tag or digest; an index picks this host's platform) is
fetched and verified first; then the config and the layers are fetched in
parallel, each streamed into the blob store, which checks digest and size
before a blob gets its name. A layer is unpacked as soon as its blob is
complete. Blobs already present are not fetched again; a kill at any point
leaves only temporary files, so the next pull simply completes. The image is
recorded (tag and repo digest) only when every part is in place.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
import random
import threading
import time
from typing import TYPE_CHECKING, Any

from intermodal.errors import DigestMismatch, InvalidArgument, RegistryError
from intermodal.images import mediatypes as mt
from intermodal.images import reference as refs
from intermodal.images.manifest import Descriptor, choose_platform, media_type_of, parse_index, parse_manifest
from intermodal.images.progress import Progress, short
from intermodal.images.registry import DEFAULT_RETRIES, RegistryClient, stream_chunks

if TYPE_CHECKING:
    from intermodal.images.manager import ImageManager
    from intermodal.images.store import ImageRecord

WORKERS = 3
MAX_MANIFEST = 4 << 20  # bytes; containerd's limit, against a registry sending junk


class _Aborted(Exception):
    """Another part of the pull failed; this worker stops early."""


def parse_platform(text: str | dict[str, str] | None) -> dict[str, str] | None:
    """``linux/arm64/v8`` -> {"os": "linux", "architecture": "arm64", "variant": "v8"}."""
    if text is None or isinstance(text, dict):
        return text
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument(f"invalid platform {text!r}: use os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8")
    out = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        out["variant"] = parts[2]
    return out


def chain_ids(diff_ids: list[str] | tuple[str, ...]) -> list[str]:
    """ChainID(n) = sha256(ChainID(n-1) + " " + DiffID(n)), as the OCI image spec defines it."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


def verify_digest(data: bytes, expected: str, what: str) -> None:
    algorithm = expected.split(":", 1)[0]
    actual = f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
    if actual != expected:
        raise DigestMismatch(what, expected, actual)


def pull(
    manager: ImageManager,
    reference: str,
    *,
    platform: str | dict[str, str] | None = None,
    tls_verify: bool = True,
    cert_dir: str | os.PathLike | None = None,
    authfile: str | os.PathLike | None = None,
    credentials: tuple[str, str] | None = None,
    progress: Progress | None = None,
    unpack: bool = True,
    workers: int = WORKERS,
    retries: int = DEFAULT_RETRIES,
) -> ImageRecord:
    """Pull *reference* and return its record.

    Raises ManifestUnknown (no such tag/digest), AuthenticationError,
    RegistryError (unreachable, server errors after retries), DigestMismatch
    (the registry sent other content than announced; nothing is recorded),
    InvalidArchive (no image for this platform, unsupported manifest).
    """
    progress = progress or Progress()
    wanted = parse_platform(platform)
    ref = refs.parse(reference)
    explicit = refs.parse(reference, default_tag=False)
    if explicit.tag is None and explicit.digest is None:
        progress.line(f"Using default tag: {refs.DEFAULT_TAG}")
    with RegistryClient(ref.domain, tls_verify=tls_verify, cert_dir=cert_dir, credentials=credentials,
                        authfile=authfile, retries=retries) as client:
        top_digest, manifest_bytes, media_type = _resolve(client, ref, wanted)
        progress.line(f"{ref.tag or ref.digest}: Pulling from {ref.path}")
        manifest = parse_manifest(manifest_bytes, media_type)
        store = manager.store
        with store.gc_guard():
            up_to_date = _up_to_date(store, ref, manifest.config.digest, manifest_bytes)
            # Present blobs are not fetched again (each layer then shows "Already exists").
            _fetch_all(client, store, ref.path, manifest, progress, unpack=unpack, workers=workers, retries=retries)
            progress.close()
            tags = [ref] if ref.digest is None else []
            record = store.add(manifest_bytes, media_type, tags=tags, repo_digest=ref.with_digest(top_digest),
                               unpack=unpack)
    progress.line(f"Digest: {top_digest}")
    name = ref.familiar
    progress.line(f"Status: {'Image is up to date' if up_to_date else 'Downloaded newer image'} for {name}")
    return record


def remote_id(reference: str, *, platform: str | dict[str, str] | None = None, tls_verify: bool = True,
              cert_dir: str | os.PathLike | None = None, authfile: str | os.PathLike | None = None,
              credentials: tuple[str, str] | None = None, retries: int = 1) -> str:
    """The image id (config digest) *reference* names in its registry now: manifests only, no layers.

    What a pull would give, for a prediction (check mode) or an up-to-date test. Raises as `pull`.
    """
    ref = refs.parse(reference)
    with RegistryClient(ref.domain, tls_verify=tls_verify, cert_dir=cert_dir, credentials=credentials,
                        authfile=authfile, retries=retries) as client:
        _top, data, media_type = _resolve(client, ref, parse_platform(platform))
    return parse_manifest(data, media_type).config.digest


def _resolve(client: RegistryClient, ref: refs.Reference, wanted: dict[str, str] | None) -> tuple[str, bytes, str]:
    """(digest the reference names, the platform manifest's bytes, its media type)."""
    data, content_type, header_digest = client.get_manifest(ref.path, ref.digest or ref.tag or refs.DEFAULT_TAG)
    if len(data) > MAX_MANIFEST:
        raise RegistryError(f"the manifest of {ref} is larger than {MAX_MANIFEST} bytes; refusing it")
    if ref.digest:
        verify_digest(data, ref.digest, f"manifest of {ref}")
        top = ref.digest
    else:
        top = "sha256:" + hashlib.sha256(data).hexdigest()
        if header_digest.startswith("sha256:") and header_digest != top:
            raise DigestMismatch(f"manifest of {ref}", header_digest, top)
    media_type = media_type_of(data, content_type)
    if media_type not in mt.INDEXES:
        return top, data, media_type
    chosen = choose_platform(parse_index(data, media_type), wanted)
    data, content_type, _ = client.get_manifest(ref.path, chosen.digest)
    verify_digest(data, chosen.digest, f"manifest {chosen.digest} of {ref}")
    return top, data, media_type_of(data, chosen.media_type or content_type)


def _up_to_date(store: Any, ref: refs.Reference, image_id: str, manifest_bytes: bytes) -> bool:
    """Did the reference already name this very image (Docker's "Image is up to date")?"""
    from intermodal.errors import ImageNotFound

    try:
        record = store.resolve(str(ref))
    except ImageNotFound:
        return False
    return record.id == image_id and record.manifest == "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()


def _fetch_all(client: RegistryClient, store: Any, repository: str, manifest: Any, progress: Progress, *,
               unpack: bool, workers: int, retries: int) -> None:
    """Config and layers in parallel; each layer unpacked as soon as it is complete."""
    abort = threading.Event()
    layer_store = store.layers if unpack else None
    ensure_layer = getattr(layer_store, "ensure_layer", None)
    for desc in manifest.layers:
        progress.update(desc.digest, "Pulling fs layer")
    with cf.ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="imod-pull") as pool:
        config_future = pool.submit(_fetch_blob, client, store.blobs, repository, manifest.config, None, abort,
                                    retries)

        def layer_task(index: int, desc: Descriptor) -> None:
            fetched = _fetch_blob(client, store.blobs, repository, desc, progress, abort, retries)
            if ensure_layer is not None:
                diff_ids = _diff_ids(store, manifest, config_future)
                parents = chain_ids(diff_ids[:index])
                if abort.is_set():
                    raise _Aborted
                progress.update(desc.digest, "Extracting")
                ensure_layer(desc, diff_ids[index], parents[-1] if parents else None)
            progress.update(desc.digest, "Pull complete" if fetched else "Already exists")

        futures = [config_future] + [pool.submit(layer_task, i, d) for i, d in enumerate(manifest.layers)]
        try:
            _wait(futures, abort)
        except BaseException:
            # Ctrl-C or a failed part: workers stop at their next chunk, so leaving the pool is quick.
            abort.set()
            for future in futures:
                future.cancel()
            raise


def _wait(futures: list[cf.Future], abort: threading.Event) -> None:
    _, pending = cf.wait(futures, return_when=cf.FIRST_EXCEPTION)
    failed = [f for f in futures if f.done() and not f.cancelled() and f.exception() is not None]
    if not failed:
        return
    abort.set()
    for f in pending:
        f.cancel()
    cf.wait(futures)
    errors = [f.exception() for f in futures if f.done() and not f.cancelled() and f.exception() is not None]
    real = [e for e in errors if not isinstance(e, _Aborted)]
    raise (real or errors)[0]


def _diff_ids(store: Any, manifest: Any, config_future: cf.Future) -> list[str]:
    import json

    config_future.result()
    config = json.loads(store.blobs.read(manifest.config.digest))
    try:
        diff_ids = list(config["rootfs"]["diff_ids"])
    except (KeyError, TypeError):
        diff_ids = []
    if len(diff_ids) != len(manifest.layers):
        from intermodal.errors import InvalidArchive

        raise InvalidArchive(
            f"image config lists {len(diff_ids)} layers but the manifest {len(manifest.layers)}; the image is broken"
        )
    return diff_ids


def _fetch_blob(client: RegistryClient, blobs: Any, repository: str, desc: Descriptor, progress: Progress | None,
                abort: threading.Event, retries: int) -> bool:
    """Stream one blob into the store; False when it was already there.

    A connection cut in the middle resumes where it stopped (HTTP Range) when
    the registry supports it, else starts the blob again; the hash runs on.
    """
    import requests
    import urllib3

    if blobs.has(desc.digest):
        return False
    attempt = 0
    writer = None
    try:
        while True:
            if abort.is_set():
                raise _Aborted
            try:
                offset = writer.size if writer is not None else 0
                resp = client.open_blob(repository, desc.digest, start=offset)
                with resp:
                    if writer is not None and (resp.status_code != 206 or not _resumes_at(resp, offset)):
                        writer.abort()  # the registry sends the whole blob again
                        writer = None
                    if writer is None:
                        writer = blobs.writer(desc.digest, desc.size)
                    for chunk in stream_chunks(resp):
                        if abort.is_set():
                            raise _Aborted
                        writer.write(chunk)
                        if progress is not None:
                            progress.update(desc.digest, "Downloading", writer.size, desc.size)
                writer.commit()
                if progress is not None:
                    progress.update(desc.digest, "Download complete")
                return True
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
                if attempt >= retries:
                    raise client.connection_error(exc, f"downloading blob {short(desc.digest)}") from None
            except RegistryError as exc:
                if exc.status is None or exc.status < 500 or attempt >= retries:
                    raise
            time.sleep(min(0.25 * 2**attempt, 8.0) * (0.75 + random.random() / 2))
            attempt += 1
    finally:
        if writer is not None and writer.digest is None:
            writer.abort()


def _resumes_at(resp: Any, offset: int) -> bool:
    """Does a 206 answer start at *offset* (``Content-Range: bytes OFFSET-END/SIZE``)?"""
    content_range = resp.headers.get("Content-Range", "")
    return content_range.startswith(f"bytes {offset}-")
