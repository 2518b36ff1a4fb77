"""Image records and tags over the blob store and the layer store.

``images/index.json`` holds one record per image (keyed by image id, the
config digest, as Docker does) with the summary `imod images` shows, so
listing reads one file. It is rewritten atomically under ``locks/images``.
Writers of new content (pull, load, import, build) hold the ``gc`` lock
shared while their blobs are not yet referenced; prune holds it exclusive.
"""

from __future__ import annotations

import time

from intermodal import cjson  # json's C half, without re and enum
from intermodal.errors import Conflict, ImageNotFound, InvalidArchive, InvalidReference
from intermodal.fsutil import atomic_write_json, read_json
from intermodal.images import mediatypes as mt
from intermodal.images import reference as refs
from intermodal.images.blobs import BlobStore
from intermodal.images.digest import check_digest
from intermodal.locking import locked
from intermodal.records import Frozen, Mutable, factory

TYPE_CHECKING = False  # not `typing` (~2 ms) nor dataclasses (~7 ms): `imod run` imports this
if TYPE_CHECKING:
    import contextlib
    from typing import Any

    from intermodal.images.manifest import Manifest
    from intermodal.paths import EnginePaths

INDEX_VERSION = 1


class ImageRecord(Frozen):
    """What the store knows of one image without reading its blobs."""

    id: str  # the config digest
    manifest: str  # digest of the manifest blob we hold
    media_type: str  # the manifest's media type
    diff_ids: tuple[str, ...]
    tags: tuple[str, ...] = ()  # full references, e.g. docker.io/library/busybox:latest
    digests: tuple[str, ...] = ()  # repository@digest the image was pulled or pushed as
    created: str = ""
    size: int = 0  # bytes of unpacked layers
    added: float = 0.0

    @property
    def short_id(self) -> str:
        return self.id.split(":", 1)[1][:12]

    def to_json(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "media_type": self.media_type,
            "diff_ids": list(self.diff_ids),
            "tags": list(self.tags),
            "digests": list(self.digests),
            "created": self.created,
            "size": self.size,
            "added": self.added,
        }

    @classmethod
    def from_json(cls, image_id: str, value: dict[str, Any]) -> ImageRecord:
        return cls(
            id=image_id,
            manifest=value["manifest"],
            media_type=value["media_type"],
            diff_ids=tuple(value.get("diff_ids", ())),
            tags=tuple(value.get("tags", ())),
            digests=tuple(value.get("digests", ())),
            created=value.get("created", ""),
            size=int(value.get("size", 0)),
            added=float(value.get("added", 0.0)),
        )


class _Index(Mutable):
    images: dict[str, dict[str, Any]] = factory(dict)


class _Mutation:
    """A class, not a ``contextlib.contextmanager``: `imod run` need not import contextlib for it."""

    __slots__ = ("index", "lock", "store")

    def __init__(self, store: ImageStore) -> None:
        self.store = store
        self.lock = locked(store.paths.locks / "images")

    def __enter__(self) -> _Index:
        self.lock.__enter__()
        try:
            self.index = self.store._read()
        except BaseException:
            self.lock.__exit__(None, None, None)
            raise
        return self.index

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                atomic_write_json(self.store.index_path, {"version": INDEX_VERSION, "images": self.index.images})
        finally:
            self.lock.__exit__(None, None, None)


class ImageStore:
    def __init__(self, paths: EnginePaths, blobs: BlobStore | None = None, layers: Any = None) -> None:
        self.paths = paths
        self.blobs = blobs or BlobStore(paths.blobs, paths.tmp)
        self._layers = layers
        self.index_path = paths.images / "index.json"

    # -- locks ---------------------------------------------------------------

    def gc_guard(self) -> contextlib.AbstractContextManager[None]:
        """Held (shared) by writers of new blobs so that prune cannot race them."""
        return locked(self.paths.locks / "gc", shared=True)

    def gc_exclusive(self) -> contextlib.AbstractContextManager[None]:
        return locked(self.paths.locks / "gc")

    def _mutate(self) -> _Mutation:
        """``with store._mutate() as index``: the index under its lock, written back unless the block raised."""
        return _Mutation(self)

    def _read(self) -> _Index:
        data = read_json(self.index_path, default=None)
        if data is None:
            return _Index()
        return _Index(images=data.get("images", {}))

    @property
    def layers(self) -> Any:
        if self._layers is None:
            from intermodal.storage.layers import LayerStore

            self._layers = LayerStore(self.paths, self.blobs)
        return self._layers

    # -- reading -------------------------------------------------------------

    def list(self) -> list[ImageRecord]:
        records = [ImageRecord.from_json(k, v) for k, v in self._read().images.items()]
        records.sort(key=lambda r: r.added, reverse=True)
        return records

    def get(self, image_id: str) -> ImageRecord:
        value = self._read().images.get(image_id)
        if value is None:
            raise _not_found(image_id)
        return ImageRecord.from_json(image_id, value)

    def resolve(self, name: str) -> ImageRecord:
        """Find an image by reference, repo digest, full id or unique id prefix (as Docker does)."""
        images = self._read().images
        found = _lookup(images, name)
        if found is None:
            raise _not_found(name)
        return ImageRecord.from_json(found, images[found])

    def exists(self, name: str) -> bool:
        try:
            self.resolve(name)
        except (ImageNotFound, InvalidReference):
            return False
        return True

    def manifest(self, record: ImageRecord) -> Manifest:
        from intermodal.images.manifest import parse_manifest

        return parse_manifest(self.blobs.read(record.manifest), record.media_type)

    def manifest_bytes(self, record: ImageRecord) -> bytes:
        return self.blobs.read(record.manifest)

    def config(self, record: ImageRecord) -> dict[str, Any]:
        return cjson.loads(self.blobs.read(record.id))

    # -- writing -------------------------------------------------------------

    def add(
        self,
        manifest_bytes: bytes,
        media_type: str,
        *,
        tags: list[refs.Reference] | tuple[refs.Reference, ...] = (),
        repo_digest: refs.Reference | None = None,
        unpack: bool = True,
    ) -> ImageRecord:
        """Record an image whose config and layer blobs are already in the blob store.

        The manifest is stored (its bytes keep their digest), every layer is
        unpacked once, and the tags move to this image (an image that loses
        its last tag stays, untagged, as Docker keeps it).

        Raises InvalidArchive when a blob is missing or config and manifest disagree.
        """
        from intermodal.images.manifest import parse_manifest

        manifest = parse_manifest(manifest_bytes, media_type)
        manifest_digest = self.blobs.put(manifest_bytes)
        config = self._checked_config(manifest)
        diff_ids = tuple(config["rootfs"]["diff_ids"])
        size = 0
        if unpack:
            layers = self.layers.ensure(manifest.layers, diff_ids)
            size = sum(layer.size for layer in layers)
        else:
            size = sum(d.size for d in manifest.layers)
        image_id = manifest.config.digest
        with self._mutate() as index:
            record = index.images.get(image_id) or {}
            record.update(
                manifest=manifest_digest,
                media_type=manifest.media_type,
                diff_ids=list(diff_ids),
                created=config.get("created", "") or "",
                size=size,
                added=record.get("added") or time.time(),
            )
            record.setdefault("tags", [])
            record.setdefault("digests", [])
            index.images[image_id] = record
            for ref in tags:
                _move_tag(index.images, str(ref.with_tag(ref.tag or refs.DEFAULT_TAG)), image_id)
            if repo_digest is not None:
                entry = str(repo_digest)
                if entry not in record["digests"]:
                    record["digests"].append(entry)
            return ImageRecord.from_json(image_id, record)

    def tag(self, record: ImageRecord, ref: refs.Reference) -> None:
        if ref.digest:
            raise InvalidReference(f"cannot tag with a digest reference {ref}: give a name:tag")
        with self._mutate() as index:
            if record.id not in index.images:
                raise _not_found(record.id)
            _move_tag(index.images, str(ref), record.id)

    def untag(self, ref: refs.Reference) -> ImageRecord:
        """Remove one tag (or repo digest); return the image it named."""
        with self._mutate() as index:
            text = str(ref)
            for image_id, value in index.images.items():
                for key in ("tags", "digests"):
                    if text in value.get(key, []):
                        value[key].remove(text)
                        return ImageRecord.from_json(image_id, value)
        raise _not_found(str(ref))

    def delete(self, image_id: str) -> ImageRecord:
        """Forget an image record. Blobs and layers go at the next prune."""
        with self._mutate() as index:
            value = index.images.pop(image_id, None)
            if value is None:
                raise _not_found(image_id)
            return ImageRecord.from_json(image_id, value)

    def add_repo_digest(self, image_id: str, ref: refs.Reference) -> None:
        """Record ``repository@digest`` for an image (after a push)."""
        with self._mutate() as index:
            value = index.images.get(image_id)
            if value is None:
                raise _not_found(image_id)
            digests = value.setdefault("digests", [])
            if str(ref) not in digests:
                digests.append(str(ref))

    def _checked_config(self, manifest: Manifest) -> dict[str, Any]:
        if manifest.config.media_type and manifest.config.media_type not in (mt.OCI_CONFIG, mt.DOCKER_CONFIG):
            raise InvalidArchive(
                f"manifest config has media type {manifest.config.media_type!r}: not a container image "
                "(artifacts such as Helm charts cannot be run)"
            )
        try:
            config = cjson.loads(self.blobs.read(manifest.config.digest))
            diff_ids = config["rootfs"]["diff_ids"]
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArchive(f"image config {manifest.config.digest} has no rootfs.diff_ids ({exc})") from None
        if len(diff_ids) != len(manifest.layers):
            raise InvalidArchive(
                f"image config lists {len(diff_ids)} layers but the manifest {len(manifest.layers)}; "
                "the image is broken, rebuild or re-push it"
            )
        for d in diff_ids:
            check_digest(d)
        return config


def _move_tag(images: dict[str, dict[str, Any]], tag: str, image_id: str) -> None:
    for other_id, value in images.items():
        if other_id != image_id and tag in value.get("tags", []):
            value["tags"].remove(tag)
    tags = images[image_id].setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)


def _lookup(images: dict[str, dict[str, Any]], name: str) -> str | None:
    if name.startswith("sha256:") and name in images:
        return name
    if refs.looks_like_id(name):
        full = name if name.startswith("sha256:") else f"sha256:{name}"
        return full if full in images else None
    try:
        ref = refs.parse(name)
    except InvalidReference:
        ref = None
    if ref is not None:
        text = str(ref)
        for image_id, value in images.items():
            if text in value.get("tags", []) or text in value.get("digests", []):
                return image_id
        if ref.digest:
            # name@digest where the repo differs but the manifest is ours
            for image_id, value in images.items():
                if value.get("manifest") == ref.digest:
                    return image_id
    return _by_prefix(images, name)


def _by_prefix(images: dict[str, dict[str, Any]], name: str) -> str | None:
    prefix = name.removeprefix("sha256:")
    if not prefix or any(c not in "0123456789abcdef" for c in prefix):
        return None
    matches = [i for i in images if i.split(":", 1)[1].startswith(prefix)]
    if len(matches) > 1:
        raise Conflict(f"id prefix {name!r} matches {len(matches)} images; give more digits of the id")
    return matches[0] if matches else None


def _not_found(name: str) -> ImageNotFound:
    return ImageNotFound(
        f"no such image: {name}; list local images with `imod images`, or pull it with `imod pull {name}`"
    )
