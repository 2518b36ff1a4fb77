"""`engine.images`: every image operation the front ends use.

The heavy parts live in their own modules (registry client, archives, layer
store) and are imported only by the method that needs them.
"""

from __future__ import annotations

from functools import cached_property

from intermodal.errors import Conflict, ImageNotFound, InvalidReference
from intermodal.images import reference as refs
from intermodal.images.store import ImageRecord, ImageStore

TYPE_CHECKING = False  # not `typing` (~2 ms): `imod run` imports this
if TYPE_CHECKING:
    from typing import Any

    from intermodal.engine import Engine


class ImageManager:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @cached_property
    def store(self) -> ImageStore:
        return ImageStore(self.engine.paths)

    # -- reading -------------------------------------------------------------

    def list(self, *, all: bool = True) -> list[ImageRecord]:
        return self.store.list()

    def get(self, name: str) -> ImageRecord:
        """Raises ImageNotFound, InvalidReference."""
        return self.store.resolve(name)

    def exists(self, name: str) -> bool:
        return self.store.exists(name)

    def config(self, name_or_record: str | ImageRecord) -> dict[str, Any]:
        return self.store.config(self._record(name_or_record))

    def inspect(self, name: str) -> dict[str, Any]:
        """The image as `docker image inspect` shows it."""
        from intermodal.images.inspect import inspect_image

        record = self.get(name)
        return inspect_image(record, self.store.config(record), self.store.manifest(record))

    def history(self, name: str) -> list[dict[str, Any]]:
        from intermodal.images.inspect import image_history

        record = self.get(name)
        return image_history(record, self.store.config(record), self.store.manifest(record))

    # -- changing ------------------------------------------------------------

    def tag(self, name: str, target: str) -> ImageRecord:
        ref = refs.parse(target)  # a bad target is reported before a missing source
        record = self.get(name)
        self.store.tag(record, ref)
        return self.store.get(record.id)

    def remove(self, name: str, *, force: bool = False, prune: bool = True) -> list[dict[str, str]]:
        """Remove a tag, or the image when it has one tag left; like `docker rmi`.

        Returns Docker's list of {"Untagged": ref} / {"Deleted": id}.
        Raises ImageNotFound; Conflict when the image is in use or several tags
        name it and *name* is an id (without *force*).
        """
        from intermodal.images.remove import remove_image

        return remove_image(self, name, force=force, prune=prune)

    def prune(self, *, all: bool = False) -> dict[str, Any]:
        """Remove dangling images (all unused with *all*), then unreferenced blobs and layers."""
        from intermodal.images.prune import prune_images

        return prune_images(self, all_unused=all)

    def users(self, image_id: str) -> list[str]:
        """Containers that use the image (their names); none until containers exist."""
        containers = getattr(self.engine, "containers_using_image", None)
        return list(containers(image_id)) if containers else []

    def import_rootfs(self, source: Any, reference: str | None = None, *, changes: list[str] | None = None,
                      message: str = "") -> ImageRecord:
        """Make a one-layer image from a rootfs tar (path, file object or '-')."""
        from intermodal.images.importer import import_rootfs

        return import_rootfs(self, source, reference, changes=changes or [], message=message)

    def pull(self, reference: str, **options: Any) -> ImageRecord:
        from intermodal.images.pull import pull

        return pull(self, reference, **options)

    def remote_id(self, reference: str, **options: Any) -> str:
        """The image id *reference* names in its registry now (manifests only); options as `pull`'s."""
        from intermodal.images.pull import remote_id

        return remote_id(reference, **options)

    def push(self, name: str, destination: str | None = None, **options: Any) -> str:
        from intermodal.images.push import push

        return push(self, name, destination, **options)

    def save(self, names: list[str], output: Any, *, format: str = "docker-archive") -> None:
        from intermodal.images.archive import save

        save(self, names, output, format=format)

    def load(self, source: Any) -> list[ImageRecord]:
        from intermodal.images.archive import load

        return load(self, source)

    def build(self, context: str, **options: Any) -> ImageRecord:
        """Build an image from a Dockerfile in *context*; options as `images.build.executor.BuildOptions`.

        Raises DockerfileError (bad Dockerfile, with its line), BuildFailed (a RUN failed; nothing tagged),
        InvalidArgument, ImageNotFound.
        """
        from intermodal.images.build.executor import BuildOptions, build

        return build(self, BuildOptions(context=context, **options))

    def _record(self, name_or_record: str | ImageRecord) -> ImageRecord:
        return name_or_record if isinstance(name_or_record, ImageRecord) else self.get(name_or_record)


__all__ = ["Conflict", "ImageManager", "ImageNotFound", "InvalidReference"]
