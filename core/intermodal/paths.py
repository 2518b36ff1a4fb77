"""Where the engine keeps its state.

The engine root holds persistent state (blobs, layers, images, containers,
volumes); the run root holds what a reboot must forget (runtime state,
monitor sockets). Both are overridable so tests and several "hosts" on one
machine each use their own.
"""

from __future__ import annotations

import os
from pathlib import Path

from intermodal.records import Frozen

DEFAULT_ROOT = "/var/lib/intermodal"
DEFAULT_RUN_ROOT = "/run/intermodal"


class EnginePaths(Frozen):
    root: Path
    run_root: Path

    @classmethod
    def resolve(cls, root: str | os.PathLike | None = None, run_root: str | os.PathLike | None = None) -> EnginePaths:
        """Explicit arguments win, then IMOD_ROOT / IMOD_RUN_ROOT, then the defaults."""
        root_path = Path(root or os.environ.get("IMOD_ROOT") or DEFAULT_ROOT).absolute()
        run = run_root or os.environ.get("IMOD_RUN_ROOT")
        if run is None:
            # A non-default root gets its own run root, so two engine roots
            # on one machine never share runtime state.
            run = DEFAULT_RUN_ROOT if str(root_path) == DEFAULT_ROOT else root_path / "run"
        return cls(root_path, Path(run).absolute())

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def layers(self) -> Path:
        return self.root / "layers"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def containers(self) -> Path:
        return self.root / "containers"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    @property
    def networks(self) -> Path:
        return self.root / "networks"

    @property
    def tmp(self) -> Path:
        """Staging area on the same filesystem as the store, for atomic renames."""
        return self.root / "tmp"

    @property
    def locks(self) -> Path:
        return self.root / "locks"
