"""Images as `docker image inspect` and `docker history` show them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from intermodal.images import reference as refs
from intermodal.timefmt import format_rfc3339

if TYPE_CHECKING:
    from intermodal.images.manifest import Manifest
    from intermodal.images.store import ImageRecord

EMPTY_LAYER_MARK = "empty_layer"


def familiar(full: str) -> str:
    """`docker.io/library/busybox:latest` -> `busybox:latest`, as Docker prints names."""
    try:
        return refs.parse(full).familiar
    except Exception:  # a record written by an older version: show it as it is
        return full


def inspect_image(record: ImageRecord, config: dict[str, Any], manifest: Manifest) -> dict[str, Any]:
    container_config = config.get("config") or {}
    return {
        "Id": record.id,
        "RepoTags": [familiar(t) for t in record.tags],
        "RepoDigests": [familiar(d) for d in record.digests],
        "Parent": "",
        "Comment": _last_comment(config),
        "Created": config.get("created", ""),
        "DockerVersion": config.get("docker_version", ""),
        "Author": config.get("author", ""),
        "Config": container_config,
        "Architecture": config.get("architecture", ""),
        "Variant": config.get("variant", ""),
        "Os": config.get("os", ""),
        "Size": record.size,
        "RootFS": {"Type": "layers", "Layers": list(record.diff_ids)},
        "Metadata": {"LastTagTime": format_rfc3339(record.added)},
        "Descriptor": {
            "mediaType": record.media_type,
            "digest": record.manifest,
            "size": (len(manifest.layers) and sum(layer.size for layer in manifest.layers)) or 0,
        },
        "ManifestMediaType": record.media_type,
        "History": config.get("history") or [],
    }


def image_history(record: ImageRecord, config: dict[str, Any], manifest: Manifest) -> list[dict[str, Any]]:
    """Newest first; only the topmost entry carries the image id, as in Docker."""
    history = config.get("history") or [{"created": config.get("created", "")} for _ in manifest.layers]
    layer_sizes = [d.size for d in manifest.layers]
    rows: list[dict[str, Any]] = []
    layer_index = 0
    for entry in history:
        empty = bool(entry.get(EMPTY_LAYER_MARK))
        size = 0
        if not empty and layer_index < len(layer_sizes):
            size = layer_sizes[layer_index]
            layer_index += 1
        rows.append({
            "Id": "<missing>",
            "Created": entry.get("created", ""),
            "CreatedBy": entry.get("created_by", ""),
            "Tags": [],
            "Size": size,
            "Comment": entry.get("comment", ""),
        })
    rows.reverse()
    if rows:
        rows[0]["Id"] = record.id
        rows[0]["Tags"] = [familiar(t) for t in record.tags]
    return rows


def _last_comment(config: dict[str, Any]) -> str:
    history = config.get("history") or []
    return history[-1].get("comment", "") if history else ""
