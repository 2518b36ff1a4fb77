"""`docker rmi` semantics: untag, then delete the image when nothing names it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from intermodal.errors import Conflict, InvalidReference
from intermodal.images import reference as refs
from intermodal.images.inspect import familiar

if TYPE_CHECKING:
    from intermodal.images.manager import ImageManager
    from intermodal.images.store import ImageRecord


def remove_image(manager: ImageManager, name: str, *, force: bool, prune: bool) -> list[dict[str, str]]:
    store = manager.store
    record = store.resolve(name)
    named_ref = _as_reference(name, record)
    users = manager.users(record.id)
    events: list[dict[str, str]] = []

    if named_ref is not None and len(record.tags) + len(record.digests) > 1:
        # One name of several: only that name goes, as Docker does.
        store.untag(named_ref)
        return [{"Untagged": familiar(str(named_ref))}]

    if named_ref is None and len(record.tags) > 1 and not force:
        raise Conflict(
            f"unable to delete {record.short_id} (must be forced): the image is referenced in several "
            f"repositories ({', '.join(familiar(t) for t in record.tags)}); remove the tags one by one or use --force"
        )
    if users and not force:
        raise Conflict(
            f"unable to remove image {name}: container {users[0]} is using it; "
            "remove the container first (`imod rm`), or use --force to untag it anyway"
        )
    for tag in record.tags:
        events.append({"Untagged": familiar(tag)})
    for digest in record.digests:
        events.append({"Untagged": familiar(digest)})
    if users:
        # Forced on an image in use: it loses its names but stays for its containers.
        for text in (*record.tags, *record.digests):
            store.untag(refs.parse(text))
        return events
    store.delete(record.id)
    events.append({"Deleted": record.id})
    if prune:
        from intermodal.images.prune import collect_garbage

        collect_garbage(manager, wait=False)
    return events


def _as_reference(name: str, record: ImageRecord) -> refs.Reference | None:
    """The tag or digest reference *name* stands for, or None when it is an id."""
    if refs.looks_like_id(name) or record.id.removeprefix("sha256:").startswith(name.removeprefix("sha256:")):
        return None
    try:
        ref = refs.parse(name)
    except InvalidReference:
        return None
    text = str(ref)
    return ref if text in record.tags or text in record.digests else None
