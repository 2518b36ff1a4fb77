"""`docker save` / `docker load` archives: `manifest.json`, `repositories`, config and layer tars.

Saving writes the layout skopeo and Docker before 25 write: the config as
`<hex>.json`, each layer uncompressed as `<id>/layer.tar` (so its digest is
its diff_id) with the legacy `VERSION` and `json` beside it, where `<id>` is
the layer's chain id (as skopeo computes it: unique per position in the
stack, shared by images with the same base). Loading follows the paths
`manifest.json` gives, so Docker 25's `blobs/sha256/<hex>` layout and
compressed layer tars load as well.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from intermodal.errors import DigestMismatch, InvalidArchive, InvalidReference
from intermodal.images import mediatypes as mt
from intermodal.images import reference as refs
from intermodal.images.archive_source import Source, member_name, read_limited
from intermodal.images.archive_staging import BlobStager, PendingImage, diff_ids_of
from intermodal.images.archive_writer import ArchiveWriter, spool_uncompressed
from intermodal.images.digest import hasher, is_digest, sha256_digest
from intermodal.images.manifest import Descriptor, canonical_json
from intermodal.images.store import ImageRecord, ImageStore

MANIFEST_FILE = "manifest.json"
REPOSITORIES_FILE = "repositories"
# Keys of the image config that skopeo copies into the top layer's legacy `json`.
_LEGACY_TOP_KEYS = ("architecture", "config", "container", "container_config", "created", "docker_version", "os")


def chain_ids(diff_ids: list[str] | tuple[str, ...]) -> list[str]:
    """ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)) (OCI image spec)."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else sha256_digest(f"{out[-1]} {diff_id}".encode()))
    return out


# -- saving --------------------------------------------------------------------


def write(
    writer: ArchiveWriter, store: ImageStore, images: list[tuple[ImageRecord, list[refs.Reference]]], tmp: Path
) -> None:
    """Write *images* (each with the tags to record) as one docker-archive."""
    entries: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    written: set[str] = set()
    layer_of_diff: dict[str, str] = {}  # diff_id -> path of the layer.tar holding it
    for record, tags in images:
        config_bytes = store.blobs.read(record.id)
        config = json.loads(config_bytes)
        manifest = store.manifest(record)
        diff_ids = diff_ids_of(config_bytes, f"image {record.id}")
        config_path = record.id.split(":", 1)[1] + ".json"
        if config_path not in written:
            writer.add_bytes(config_path, config_bytes)
            written.add(config_path)
        layer_paths = []
        parent = ""
        chains = chain_ids(diff_ids)
        for n, (desc, diff_id, chain) in enumerate(zip(manifest.layers, diff_ids, chains, strict=True)):
            layer_id = chain.split(":", 1)[1]
            path = f"{layer_id}/layer.tar"
            if layer_id not in written:
                top = config if n == len(diff_ids) - 1 else None
                _write_layer(writer, store, tmp, layer_id, parent, top, desc, diff_id, layer_of_diff)
                written.add(layer_id)
            layer_paths.append(path)
            parent = layer_id
        # Full names, as podman and skopeo write them: podman reads a short `busybox:latest` as localhost/busybox.
        entries.append({"Config": config_path, "RepoTags": [str(t) for t in tags] or None, "Layers": layer_paths})
        for ref in tags:
            if parent:
                repositories.setdefault(ref.repository, {})[ref.tag or refs.DEFAULT_TAG] = parent
    writer.add_bytes(MANIFEST_FILE, json.dumps(entries, separators=(",", ":")).encode())
    writer.add_bytes(REPOSITORIES_FILE, canonical_json(repositories))


def _write_layer(
    writer: ArchiveWriter,
    store: ImageStore,
    tmp: Path,
    layer_id: str,
    parent: str,
    top: dict[str, Any] | None,
    desc: Descriptor,
    diff_id: str,
    layer_of_diff: dict[str, str],
) -> None:
    writer.add_dir(layer_id)
    writer.add_bytes(f"{layer_id}/VERSION", b"1.0")
    legacy: dict[str, Any] = {"id": layer_id}
    if parent:
        legacy["parent"] = parent
    if top is not None:
        legacy.update({k: top[k] for k in _LEGACY_TOP_KEYS if k in top})
    writer.add_bytes(f"{layer_id}/json", canonical_json(legacy))
    path = f"{layer_id}/layer.tar"
    if diff_id in layer_of_diff:
        # The same content at another place in a stack: link to it rather than repeat it (skopeo does so too).
        writer.add_symlink(path, f"../{layer_of_diff[diff_id]}")
        return
    compression = mt.layer_compression(desc.media_type or mt.OCI_LAYER_GZIP)
    what = f"layer {desc.digest} (diff_id {diff_id})"
    with store.blobs.open(desc.digest) as raw:
        if compression == "none":
            writer.add_stream(path, store.blobs.size(desc.digest), raw, expected=diff_id)
        else:
            with spool_uncompressed(raw, compression, diff_id, tmp, what) as plain:
                size = plain.seek(0, 2)
                plain.seek(0)
                writer.add_stream(path, size, plain)
    layer_of_diff[diff_id] = path


# -- loading -------------------------------------------------------------------


def read(source: Source, stager: BlobStager) -> list[PendingImage]:
    """Stage config and layers of every image in `manifest.json`; synthesise an OCI manifest for each.

    The manifest lists the layers uncompressed (digest = diff_id), so the
    config bytes, and with them the image id, stay those of Docker.
    """
    entries = _manifest_entries(source)
    images = []
    for i, entry in enumerate(entries):
        where = f"{source.description}: manifest.json[{i}]"
        config_path, layer_paths, tags = _entry_fields(entry, where)
        config_bytes = read_limited(source, config_path)
        config_digest = sha256_digest(config_bytes)
        named = _digest_in_name(config_path)
        if named is not None and (actual := _digest_as(named, config_bytes)) != named:
            raise DigestMismatch(f"{where}: config {config_path}", named, actual)
        if config_digest in stager.known_images:
            images.append(PendingImage(config_digest, b"", "", tags))
            continue
        diff_ids = diff_ids_of(config_bytes, where)
        if len(diff_ids) != len(layer_paths):
            raise InvalidArchive(
                f"{where}: the config lists {len(diff_ids)} layers but manifest.json {len(layer_paths)}; "
                "the archive is damaged, save the image again"
            )
        stager.stage_bytes(config_digest, config_bytes, f"{where} config {config_path}")
        layers = []
        for path, diff_id in zip(layer_paths, diff_ids, strict=True):
            size = _stage_layer(source, stager, path, diff_id, f"{where} layer {path}")
            layers.append({"mediaType": mt.OCI_LAYER, "digest": diff_id, "size": size})
        manifest = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
            "layers": layers,
        }
        images.append(PendingImage(config_digest, canonical_json(manifest), mt.OCI_MANIFEST, tags))
    return images


def _manifest_entries(source: Source) -> list[Any]:
    try:
        entries = json.loads(read_limited(source, MANIFEST_FILE))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArchive(f"{source.description}: manifest.json is not valid JSON ({exc})") from None
    if not isinstance(entries, list) or not entries:
        raise InvalidArchive(f"{source.description}: manifest.json must be a non-empty list of images")
    return entries


def _entry_fields(entry: Any, where: str) -> tuple[str, list[str], list[refs.Reference]]:
    if not isinstance(entry, dict):
        raise InvalidArchive(f"{where} is not an object")
    config_path = entry.get("Config")
    layer_paths = entry.get("Layers") or []
    if not isinstance(config_path, str) or not isinstance(layer_paths, list):
        raise InvalidArchive(f"{where} needs 'Config' (a path) and 'Layers' (a list of paths)")
    if not all(isinstance(p, str) for p in layer_paths):
        raise InvalidArchive(f"{where}: 'Layers' must hold paths")
    tags = []
    for text in entry.get("RepoTags") or []:
        try:
            ref = refs.parse(text)
        except InvalidReference as exc:
            raise InvalidArchive(f"{where}: RepoTags entry {text!r} is not a valid name:tag ({exc})") from None
        if ref.digest:
            raise InvalidArchive(f"{where}: RepoTags entry {text!r} has a digest; only name:tag is allowed there")
        if ref not in tags:
            tags.append(ref)
    return config_path, layer_paths, tags


def _digest_in_name(path: str) -> str | None:
    """The digest a path states: `<hex>.json` (Docker, skopeo) or `blobs/<alg>/<hex>` (Docker 25)."""
    parts = member_name(path).split("/")
    if len(parts) == 3 and parts[0] == "blobs":
        candidate = f"{parts[1]}:{parts[2]}"
    elif len(parts) == 1 and parts[0].endswith(".json"):
        candidate = "sha256:" + parts[0].removesuffix(".json")
    else:
        return None
    return candidate if is_digest(candidate) else None


def _digest_as(digest: str, data: bytes) -> str:
    h = hasher(digest)
    h.update(data)
    return f"{digest.split(':', 1)[0]}:{h.hexdigest()}"


def _stage_layer(source: Source, stager: BlobStager, path: str, diff_id: str, what: str) -> int:
    """Stage a layer tar under its diff_id, decompressing it when the archive holds it compressed."""
    if stager.has(diff_id):
        return stager.size(diff_id)
    from intermodal.storage.streams import decompressed, detect

    size = source.size(path)
    with source.open(path) as raw:
        head = raw.read(8)
        raw.seek(0)
        compression = detect(head)
        if compression == "none":
            return stager.stage(diff_id, size, raw, what)
        return stager.stage(diff_id, None, decompressed(raw, compression), what)  # type: ignore[arg-type]
