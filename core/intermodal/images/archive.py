"""`imod save` and `imod load`: images to and from docker-archive, oci-archive and OCI layouts.

save: names are resolved before anything is written; the archive goes to
a temporary file beside the destination and is renamed into place only
when complete (or streams to a pipe). The same images give the same bytes.

load: the format is found from the content (a `manifest.json` means
docker-archive, an `index.json` an OCI layout; gzip, bzip2, xz and zstd
are undone first); every blob of every image is verified before any enters
the store, then each image is recorded with the tags the archive gives.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from intermodal.errors import InvalidArchive, InvalidArgument, InvalidReference
from intermodal.images import reference as refs
from intermodal.images.store import ImageRecord
from intermodal.records import replace

if TYPE_CHECKING:
    from intermodal.images.archive_source import Source
    from intermodal.images.archive_staging import BlobStager, PendingImage
    from intermodal.images.archive_writer import ArchiveWriter
    from intermodal.images.manager import ImageManager
    from intermodal.images.store import ImageStore

FORMATS = ("docker-archive", "oci-archive", "oci-dir")
# The images to write, each with the tags to record for it.
Selection = list[tuple[ImageRecord, list[refs.Reference]]]


# -- save ----------------------------------------------------------------------


def save(manager: ImageManager, names: list[str], output: Any, *, format: str = "docker-archive") -> None:
    """Write the images *names* to *output*: a path, a binary file object, or None/"-" for stdout.

    Raises ImageNotFound, InvalidArgument (unknown format, stdout is a
    terminal, oci-dir without a directory), DigestMismatch when a stored
    blob is damaged (the partial file is removed).
    """
    if format not in FORMATS:
        raise InvalidArgument(f"unknown archive format {format!r}: use one of {', '.join(FORMATS)}")
    if not names:
        raise InvalidArgument("no image to save: name at least one image")
    images = select(manager, names)
    store = manager.store
    tmp = store.paths.tmp
    with store.gc_guard():  # prune must not remove the blobs we are reading
        if format == "oci-dir":
            _save_dir(store, images, output)
            return
        with _archive_output(output) as stream:
            _write_archive(store, images, format, stream, tmp)


def select(manager: ImageManager, names: list[str]) -> Selection:
    """The images *names* denote, each once (first mention first), with the tags to record.

    As `docker save`: `repo:tag` records that tag; `repo` alone records
    every tag of the repository; an id or digest records no tag.
    """
    chosen: dict[str, tuple[ImageRecord, list[refs.Reference]]] = {}
    for name in names:
        for record, tags in _expand(manager, name):
            entry = chosen.setdefault(record.id, (record, []))
            entry[1].extend(t for t in tags if t not in entry[1])
    return list(chosen.values())


def _expand(manager: ImageManager, name: str) -> Selection:
    ref = _as_reference(name)
    if ref is not None and ref.tag is None and ref.digest is None:
        found = []
        for record in manager.list():
            tags = [t for t in map(refs.parse, record.tags) if t.repository == ref.repository]
            if tags:
                found.append((record, tags))
        if found:
            return found
        ref = ref.with_tag(refs.DEFAULT_TAG)
    record = manager.get(name)  # also resolves ids and id prefixes, which parse as names too
    if ref is not None and ref.tag and not ref.digest and str(ref) in record.tags:
        return [(record, [ref])]
    return [(record, [])]


def _as_reference(name: str) -> refs.Reference | None:
    if refs.looks_like_id(name):
        return None
    try:
        return refs.parse(name, default_tag=False)
    except InvalidReference:
        return None  # an id prefix; the store resolves it


def _write_archive(store: ImageStore, images: Selection, format: str, stream: BinaryIO, tmp: Path) -> None:
    from intermodal.images.archive_writer import TarWriter

    writer = TarWriter(stream)
    _write(writer, store, images, format, tmp)
    writer.close()


def _write(writer: ArchiveWriter, store: ImageStore, images: Selection, format: str, tmp: Path) -> None:
    if format == "docker-archive":
        from intermodal.images import docker_archive

        docker_archive.write(writer, store, images, tmp)
    else:
        from intermodal.images import oci_layout

        oci_layout.write(writer, store, images)


def _save_dir(store: ImageStore, images: Selection, output: Any) -> None:
    from intermodal.images.archive_writer import DirWriter

    if output is None or output == "-" or not isinstance(output, str | os.PathLike):
        raise InvalidArgument("the oci-dir format writes a directory: give it with -o DIRECTORY")
    target = Path(output)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InvalidArgument(f"{target} exists and is not an empty directory; choose a new path for the OCI layout")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        _write(DirWriter(staging), store, images, "oci-dir", store.paths.tmp)
        os.chmod(staging, 0o755)
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    except BaseException:
        from intermodal.fsutil import remove_tree

        remove_tree(staging)
        raise


@contextlib.contextmanager
def _archive_output(output: Any) -> Iterator[BinaryIO]:
    """A binary stream for the archive; a path is written beside itself and renamed when complete."""
    if output is None or output == "-":
        stream = sys.stdout.buffer
        if stream.isatty():
            raise InvalidArgument(
                "refusing to write an image archive to a terminal; give a file with -o FILE, "
                "or redirect the output (imod save IMAGE > image.tar)"
            )
        yield stream
        stream.flush()
        return
    if hasattr(output, "write"):
        yield output
        return
    target = Path(output)
    if target.is_dir():
        raise InvalidArgument(f"{target} is a directory; give a file name for the archive (or --format oci-dir)")
    if not target.parent.is_dir():
        raise InvalidArgument(f"cannot write {target}: directory {target.parent} does not exist")
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


# -- load ----------------------------------------------------------------------


def load(manager: ImageManager, source: Any) -> list[ImageRecord]:
    """Load every image of an archive or layout; return one record per image, in archive order.

    Each returned record's ``tags`` are the tags this archive gave the
    image (what `docker load` reports); the image may carry more from
    before, which `get()` shows. *source* is a path (file or directory), a
    binary file object, or None/"-" for stdin. Raises InvalidArchive
    (unknown format, damaged, unsafe names), DigestMismatch (corrupted
    blob); in both cases nothing is stored.
    """
    from intermodal.images.archive_staging import BlobStager

    store = manager.store
    with _open_source(source, store.paths.tmp) as src, store.gc_guard():
        stager = BlobStager(store.blobs, frozenset(r.id for r in store.list()))
        try:
            pending = read(src, stager)
            stager.commit()
        except BaseException:
            stager.abort()
            raise
        records = [_record(store, p) for p in pending]
    return records


def _record(store: ImageStore, pending: PendingImage) -> ImageRecord:
    """Add (or, for an image the store holds, only tag) one loaded image; report the archive's tags."""
    if pending.known:
        record = store.get(pending.image_id)
        for ref in pending.tags:
            store.tag(record, ref)
        record = store.get(pending.image_id)
    else:
        record = store.add(pending.manifest_bytes, pending.media_type, tags=pending.tags)
    loaded = {str(t) for t in pending.tags}
    return replace(record, tags=tuple(t for t in record.tags if t in loaded))


def read(source: Source, stager: BlobStager) -> list[PendingImage]:
    """Stage the images of *source*, whatever its format; one entry per image, tags merged."""
    if source.exists("manifest.json"):
        from intermodal.images import docker_archive

        return _merged(docker_archive.read(source, stager))
    if source.exists("index.json"):
        from intermodal.images import oci_layout

        return _merged(oci_layout.read(source, stager))
    raise InvalidArchive(
        f"{source.description} is not an image archive: it has neither manifest.json (docker-archive) "
        "nor index.json (OCI layout); create one with `imod save` or `skopeo copy`"
    )


def _merged(pending: list[PendingImage]) -> list[PendingImage]:
    by_id: dict[str, PendingImage] = {}
    for p in pending:
        first = by_id.setdefault(p.image_id, p)
        if first is not p:
            first.tags.extend(t for t in p.tags if t not in first.tags)
    return list(by_id.values())


@contextlib.contextmanager
def _open_source(source: Any, tmp: Path) -> Iterator[Source]:
    from intermodal.images.archive_source import DirSource, open_stream

    with contextlib.ExitStack() as stack:
        if source is None or source == "-":
            stdin = sys.stdin.buffer
            if stdin.isatty():
                raise InvalidArgument(
                    "no archive given: use -i FILE, or pipe the archive to stdin (imod load < image.tar)"
                )
            opened: Source = open_stream(stdin, "the archive on stdin", tmp)
        elif hasattr(source, "read"):
            opened = open_stream(source, getattr(source, "name", "the archive"), tmp)
        elif Path(source).is_dir():
            opened = DirSource(Path(source))
        else:
            try:
                f = stack.enter_context(open(source, "rb"))
            except FileNotFoundError:
                raise InvalidArgument(f"{source} does not exist; give the path of an image archive") from None
            opened = open_stream(f, str(source), tmp)
        stack.callback(opened.close)
        yield opened
