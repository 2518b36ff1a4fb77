"""`Engine`: the one public API every front end calls.

One manager per resource, each with the same verbs (get, list, exists,
create/add, remove). Managers are made on first use, so a command that only
lists images never imports the runtime or the network code.
"""

from __future__ import annotations

import os
from functools import cached_property

from intermodal.paths import EnginePaths

TYPE_CHECKING = False  # not `typing` (~4 ms of every `imod`)
if TYPE_CHECKING:
    from intermodal.containers.manager import ContainerManager
    from intermodal.images.manager import ImageManager
    from intermodal.network.manager import NetworkManager
    from intermodal.volumes import VolumeManager


class Engine:
    def __init__(self, root: str | os.PathLike | None = None, run_root: str | os.PathLike | None = None) -> None:
        self.paths = EnginePaths.resolve(root, run_root)

    @cached_property
    def images(self) -> ImageManager:
        from intermodal.images.manager import ImageManager

        return ImageManager(self)

    @cached_property
    def networks(self) -> NetworkManager:
        from intermodal.network.manager import NetworkManager

        return NetworkManager(self)

    @cached_property
    def containers(self) -> ContainerManager:
        from intermodal.containers.manager import ContainerManager

        return ContainerManager(self)

    @cached_property
    def volumes(self) -> VolumeManager:
        from intermodal.volumes import VolumeManager

        return VolumeManager(self)

    def containers_using_image(self, image_id: str) -> list[str]:
        """Names of the containers created from the image (`rmi` refuses to remove it while there are any)."""
        if not self.paths.containers.is_dir():
            return []
        return self.containers.using_image(image_id)

    def __repr__(self) -> str:
        return f"Engine(root={str(self.paths.root)!r})"
