"""The OCI image layout (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`), in a tar or a directory.

Saving keeps our manifests and blobs byte for byte (their digests do not
change). Names go into the index the way containerd and Docker 25 write
them: `io.containerd.image.name` holds the full reference (what podman
reads), `org.opencontainers.image.ref.name` the tag (what `skopeo
oci:DIR:TAG` matches).
"""

from __future__ import annotations

import json
from typing import Any

from intermodal.errors import DigestMismatch, InvalidArchive, InvalidReference
from intermodal.images import mediatypes as mt
from intermodal.images import reference as refs
from intermodal.images.archive_source import Source, read_limited
from intermodal.images.archive_staging import BlobStager, PendingImage, check_image
from intermodal.images.archive_writer import ArchiveWriter
from intermodal.images.digest import hasher, split
from intermodal.images.manifest import (
    Descriptor,
    canonical_json,
    choose_platform,
    host_platform,
    media_type_of,
    parse_index,
    parse_manifest,
)
from intermodal.images.store import ImageRecord, ImageStore

LAYOUT_FILE = "oci-layout"
LAYOUT_BYTES = b'{"imageLayoutVersion":"1.0.0"}'
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
MAX_NESTING = 4


def blob_path(digest: str) -> str:
    algorithm, hexpart = split(digest)
    return f"blobs/{algorithm}/{hexpart}"


# -- saving --------------------------------------------------------------------


def write(writer: ArchiveWriter, store: ImageStore, images: list[tuple[ImageRecord, list[refs.Reference]]]) -> None:
    """Write *images* (each with the tags to record) as one OCI layout."""
    writer.add_bytes(LAYOUT_FILE, LAYOUT_BYTES)
    writer.add_dir("blobs")
    written: set[str] = set()
    entries: list[dict[str, Any]] = []
    for record, tags in images:
        manifest_bytes = store.manifest_bytes(record)
        manifest = store.manifest(record)
        config = store.config(record)
        for desc in (manifest.config, *manifest.layers):
            _write_blob(writer, store, desc.digest, desc.size, written)
        _write_blob(writer, store, record.manifest, len(manifest_bytes), written)
        base: dict[str, Any] = {"mediaType": record.media_type, "digest": record.manifest, "size": len(manifest_bytes)}
        platform = _platform(config)
        if platform:
            base["platform"] = platform
        if not tags:
            entries.append(base)
        for ref in tags:
            annotations = {ANNOTATION_CONTAINERD_NAME: str(ref), ANNOTATION_REF_NAME: ref.tag}
            entries.append({**base, "annotations": annotations})
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": entries}
    writer.add_bytes("index.json", canonical_json(index))


def _write_blob(writer: ArchiveWriter, store: ImageStore, digest: str, size: int, written: set[str]) -> None:
    """Each blob once; its `blobs/<alg>` directory entry before the first blob of that algorithm."""
    if digest in written:
        return
    path = blob_path(digest)
    directory = path.rsplit("/", 1)[0]
    if directory not in written:
        writer.add_dir(directory)
        written.add(directory)
    with store.blobs.open(digest) as f:
        writer.add_stream(path, size, f, expected=digest)
    written.add(digest)


def _platform(config: dict[str, Any]) -> dict[str, str]:
    keys = ("architecture", "os", "variant")
    out = {key: config[key] for key in keys if isinstance(config.get(key), str) and config[key]}
    return out if "architecture" in out and "os" in out else {}


# -- loading -------------------------------------------------------------------


def read(source: Source, stager: BlobStager, platform: dict[str, str] | None = None) -> list[PendingImage]:
    """Stage the blobs of every image named in the layout's index; return them, tags merged per manifest."""
    if source.exists(LAYOUT_FILE):
        _check_layout(read_limited(source, LAYOUT_FILE), source.description)
    index_bytes = read_limited(source, "index.json")
    index = parse_index(index_bytes, mt.OCI_INDEX)
    wanted = platform or host_platform()
    entries = list(enumerate(index.manifests))
    # A layout may list one manifest per platform at the top (buildx, containerd
    # exports): load this host's, as Docker does; entries without a platform always count.
    if any(_fits(desc, wanted) for _, desc in entries):
        entries = [(i, desc) for i, desc in entries if _fits(desc, wanted)]
    found: dict[str, PendingImage] = {}
    for i, desc in entries:
        where = f"{source.description}: index.json manifests[{i}]"
        tags = names_from_annotations(desc.annotations or {}, where)
        manifest_desc, manifest_bytes = _resolve_manifest(source, desc, platform, where)
        pending = found.get(manifest_desc.digest)
        if pending is None:
            pending = _stage_image(source, stager, manifest_desc, manifest_bytes, where)
            found[manifest_desc.digest] = pending
        pending.tags.extend(t for t in tags if t not in pending.tags)
    if not found:
        raise InvalidArchive(f"{source.description}: index.json lists no images; the layout is empty")
    return list(found.values())


def _fits(desc: Descriptor, wanted: dict[str, str]) -> bool:
    if (desc.annotations or {}).get("vnd.docker.reference.type") == "attestation-manifest":
        return False
    plat = desc.platform or {}
    if not plat:
        return True
    return plat.get("os") == wanted["os"] and plat.get("architecture") == wanted["architecture"]


def names_from_annotations(annotations: dict[str, str], where: str) -> list[refs.Reference]:
    """The image name an index entry carries, as podman reads it (containerd's annotation first).

    ``org.opencontainers.image.ref.name`` is often only a tag (skopeo's
    ``oci:DIR:TAG``, Docker 25's ``latest``); a tag alone names no
    repository, so such an image loads untagged, as Docker loads it.
    """
    name = annotations.get(ANNOTATION_CONTAINERD_NAME) or ""
    if not name:
        ref_name = annotations.get(ANNOTATION_REF_NAME) or ""
        if not any(c in ref_name for c in "/:@"):
            return []
        name = ref_name
    try:
        ref = refs.parse(name)
    except InvalidReference as exc:
        raise InvalidArchive(f"{where}: the image name annotation {name!r} is not a valid reference: {exc}") from None
    if ref.digest and not ref.tag:
        return []  # a digest names content, not a tag to create
    return [ref.with_tag(ref.tag or refs.DEFAULT_TAG)]


def _check_layout(data: bytes, description: str) -> None:
    try:
        version = json.loads(data).get("imageLayoutVersion")
    except (ValueError, AttributeError, UnicodeDecodeError):
        version = None
    if not isinstance(version, str) or not version.startswith("1."):
        raise InvalidArchive(
            f"{description}: oci-layout has imageLayoutVersion {version!r}; only 1.x layouts are supported"
        )


def _resolve_manifest(
    source: Source, desc: Descriptor, platform: dict[str, str] | None, where: str
) -> tuple[Descriptor, bytes]:
    """Follow nested indexes (multi-platform images) down to this platform's manifest."""
    for _ in range(MAX_NESTING):
        data = read_blob(source, desc, where)
        media_type = media_type_of(data, desc.media_type or None)
        if media_type in mt.MANIFESTS:
            return Descriptor(media_type, desc.digest, desc.size), data
        if media_type not in mt.INDEXES:
            raise InvalidArchive(
                f"{where}: {desc.digest} has media type {media_type!r}, not an image manifest or index"
            )
        desc = choose_platform(parse_index(data, media_type), platform)
    raise InvalidArchive(f"{where}: indexes are nested more than {MAX_NESTING} deep")


def _stage_image(
    source: Source, stager: BlobStager, desc: Descriptor, manifest_bytes: bytes, where: str
) -> PendingImage:
    manifest = parse_manifest(manifest_bytes, desc.media_type)
    if manifest.config.digest in stager.known_images:
        return PendingImage(manifest.config.digest, b"", "")
    config_bytes = read_blob(source, manifest.config, f"{where} config")
    check_image(manifest_bytes, desc.media_type, config_bytes, where)
    stager.stage_bytes(manifest.config.digest, config_bytes, f"{where} config {manifest.config.digest}")
    for n, layer in enumerate(manifest.layers):
        if stager.has(layer.digest):
            continue
        path = blob_path(layer.digest)
        with source.open(path) as f:
            stager.stage(layer.digest, layer.size, f, f"{where} layer {n} ({path})")
    return PendingImage(manifest.config.digest, manifest_bytes, desc.media_type)


def read_blob(source: Source, desc: Descriptor, where: str) -> bytes:
    """A small blob (manifest, index, config) read whole and checked against its descriptor."""
    path = blob_path(desc.digest)
    data = read_limited(source, path)
    if len(data) != desc.size:
        raise InvalidArchive(
            f"{where}: {path} has {len(data)} bytes but the descriptor says {desc.size}; the archive is damaged"
        )
    h = hasher(desc.digest)
    h.update(data)
    actual = f"{desc.digest.split(':', 1)[0]}:{h.hexdigest()}"
    if actual != desc.digest:
        raise DigestMismatch(f"{where}: {path}", desc.digest, actual)
    return data
