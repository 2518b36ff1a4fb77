"""`Engine`: the one public API every front end calls.

One manager per resource, each with the same verbs (get, list, exists,
create/add, remove). Managers are made on first use, so a command that only
lists images never imports the runtime or the network code.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING

from intermodal.paths import EnginePaths

if TYPE_CHECKING:
    from intermodal.images.manager import ImageManager
    from intermodal.network.manager import NetworkManager


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

    def __repr__(self) -> str:
        return f"Engine(root={str(self.paths.root)!r})"
