"""Rows of `imod images`: one per tag, `<none>` for untagged images."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from intermodal.errors import InvalidArgument
from intermodal.images import reference as refs
from intermodal.timefmt import parse_rfc3339 as parse_time

if TYPE_CHECKING:
    from intermodal.images.store import ImageRecord


def image_rows(records: Iterable[ImageRecord], *, reference: str | None = None, filters: Iterable[str] = (),
               no_trunc: bool = False, now: float) -> list[dict[str, Any]]:
    from intermodal.cli.base import human_ago, human_size

    wanted = _parse_filters(filters)
    if reference:
        wanted.setdefault("reference", []).append(reference)
    rows = []
    for record in records:
        if not _dangling_ok(record, wanted.get("dangling")):
            continue
        created = parse_time(record.created)
        image_id = record.id if no_trunc else record.short_id
        digest = record.digests[0].rpartition("@")[2] if record.digests else "<none>"
        for repo, tag in _names(record):
            if "reference" in wanted and not any(_matches(repo, tag, p) for p in wanted["reference"]):
                continue
            rows.append({
                "Repository": repo,
                "Tag": tag,
                "Digest": digest,
                "ID": image_id,
                "CreatedAt": record.created,
                "CreatedSince": human_ago(now - created) if created else "N/A",
                "Size": human_size(record.size),
                "Containers": "N/A",
                "SharedSize": "N/A",
                "UniqueSize": "N/A",
                "VirtualSize": human_size(record.size),
            })
    return rows


def _names(record: ImageRecord) -> list[tuple[str, str]]:
    names = []
    for text in record.tags:
        ref = refs.parse(text)
        names.append((ref.familiar_name, ref.tag or "<none>"))
    if not names:
        if record.digests:
            names.append((refs.parse(record.digests[0], default_tag=False).familiar_name, "<none>"))
        else:
            names.append(("<none>", "<none>"))
    return names


def _matches(repo: str, tag: str, pattern: str) -> bool:
    if ":" in pattern.rpartition("/")[2]:
        return fnmatch.fnmatchcase(f"{repo}:{tag}", pattern)
    return fnmatch.fnmatchcase(repo, pattern)


def _dangling_ok(record: ImageRecord, values: list[str] | None) -> bool:
    if not values:
        return True
    dangling = not record.tags
    return any((v.lower() in ("true", "1")) == dangling for v in values)


def _parse_filters(filters: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for text in filters:
        key, eq, value = text.partition("=")
        if not eq or key not in ("dangling", "reference"):
            raise InvalidArgument(f"invalid filter {text!r}: use dangling=true|false or reference=PATTERN")
        out.setdefault(key, []).append(value)
    return out
