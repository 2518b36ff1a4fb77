"""Manifests, indexes and image configs as typed values.

Both OCI and Docker v2 schema 2 documents parse into the same types; the
original bytes are kept wherever a digest depends on them.
"""

from __future__ import annotations

import json

from intermodal.errors import InvalidArchive
from intermodal.images import mediatypes as mt
from intermodal.images.digest import check_digest
from intermodal.records import Frozen, factory

TYPE_CHECKING = False  # not `typing` (~2 ms)
if TYPE_CHECKING:
    from typing import Any


class Descriptor(Frozen):
    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None
    annotations: dict[str, str] | None = None
    urls: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, value: dict[str, Any], where: str) -> Descriptor:
        try:
            digest = check_digest(value["digest"])
            size = int(value["size"])
            media_type = value.get("mediaType", "")
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArchive(f"{where}: descriptor is missing or has a bad 'digest'/'size' ({exc})") from None
        if size < 0:
            raise InvalidArchive(f"{where}: descriptor size {size} is negative")
        urls = tuple(value.get("urls") or ())
        return cls(media_type, digest, size, value.get("platform"), value.get("annotations"), urls)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            out["platform"] = self.platform
        if self.annotations:
            out["annotations"] = self.annotations
        if self.urls:
            out["urls"] = list(self.urls)
        return out


class Manifest(Frozen):
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: dict[str, str] = factory(dict)


class Index(Frozen):
    media_type: str
    manifests: tuple[Descriptor, ...]


def media_type_of(data: bytes, declared: str | None = None) -> str:
    """The media type of a manifest document: its own field, else the transport's."""
    doc = _load(data, "manifest")
    inner = doc.get("mediaType")
    if inner:
        return inner
    if declared and declared not in ("application/json", "application/octet-stream", "text/plain"):
        return declared
    # OCI allows documents without mediaType: tell them apart by shape.
    return mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST


def parse_manifest(data: bytes, media_type: str | None = None) -> Manifest:
    doc = _load(data, "manifest")
    media_type = media_type or media_type_of(data)
    if media_type not in mt.MANIFESTS:
        raise InvalidArchive(f"unsupported manifest media type {media_type!r}")
    if doc.get("schemaVersion") != 2:
        raise InvalidArchive("manifest schemaVersion must be 2 (schema 1 images are not supported; re-push them)")
    if "config" not in doc:
        raise InvalidArchive("manifest has no 'config' descriptor")
    config = Descriptor.from_json(doc["config"], "manifest config")
    layers = tuple(Descriptor.from_json(d, f"manifest layers[{i}]") for i, d in enumerate(doc.get("layers") or ()))
    for i, layer in enumerate(layers):
        mt.layer_compression(layer.media_type or mt.OCI_LAYER_GZIP)
        if layer.urls:
            raise InvalidArchive(f"manifest layers[{i}]: foreign layers with URLs are not supported")
    return Manifest(media_type, config, layers, doc.get("annotations") or {})


def parse_index(data: bytes, media_type: str | None = None) -> Index:
    doc = _load(data, "index")
    media_type = media_type or media_type_of(data)
    entries = doc.get("manifests") or ()
    manifests = tuple(Descriptor.from_json(d, f"index manifests[{i}]") for i, d in enumerate(entries))
    return Index(media_type, manifests)


def host_platform() -> dict[str, str]:
    import platform

    machine = platform.machine().lower()
    arch, variant = {
        "x86_64": ("amd64", ""),
        "amd64": ("amd64", ""),
        "aarch64": ("arm64", "v8"),
        "arm64": ("arm64", "v8"),
        "armv7l": ("arm", "v7"),
        "armv6l": ("arm", "v6"),
        "i686": ("386", ""),
        "i386": ("386", ""),
        "ppc64le": ("ppc64le", ""),
        "s390x": ("s390x", ""),
        "riscv64": ("riscv64", ""),
    }.get(machine, (machine, ""))
    out = {"os": "linux", "architecture": arch}
    if variant:
        out["variant"] = variant
    return out


def choose_platform(index: Index, wanted: dict[str, str] | None = None) -> Descriptor:
    """The index entry for *wanted* (default: this host), as containerd's matcher picks it."""
    wanted = wanted or host_platform()
    candidates = []
    for desc in index.manifests:
        plat = desc.platform or {}
        if desc.media_type and desc.media_type not in mt.MANIFESTS:
            continue
        if (desc.annotations or {}).get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        if plat.get("os", "linux") != wanted["os"] or plat.get("architecture") != wanted["architecture"]:
            continue
        want_variant = wanted.get("variant")
        have_variant = plat.get("variant")
        if want_variant and have_variant and have_variant != want_variant:
            continue
        # An exact variant beats a missing one.
        candidates.append((0 if have_variant == want_variant else 1, desc))
    if not candidates:
        available = ", ".join(_platform_name(d.platform or {}) for d in index.manifests) or "none"
        raise InvalidArchive(
            f"no image for platform {_platform_name(wanted)} in the index (it has: {available}); "
            "use an image built for this host's architecture"
        )
    candidates.sort(key=lambda c: c[0])
    return candidates[0][1]


def _platform_name(plat: dict[str, Any]) -> str:
    name = f"{plat.get('os', '?')}/{plat.get('architecture', '?')}"
    return name + (f"/{plat['variant']}" if plat.get("variant") else "")


def _load(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArchive(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidArchive(f"{what} must be a JSON object")
    return doc


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON for documents we create (digest is stable across runs)."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
