"""The vfs driver, for hosts without overlayfs: every layer is a full copy.

A layer's directory is its parent's snapshot copied, with the layer applied
on top (whiteouts carried out as deletions). A container gets its own copy
of the top snapshot. Slow and large, but it works on any filesystem.
"""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

from intermodal.errors import KernelError
from intermodal.fsutil import remove_tree


class VfsDriver:
    name = "vfs"
    whiteouts = "apply"
    needs_parent = True  # a snapshot starts as a copy of the parent's

    def prepare(self, diff: Path, parent: Path | None) -> None:
        diff.mkdir(mode=0o755)
        if parent is not None:
            copy_tree(parent, diff)

    def lower_dirs(self, diffs: list[Path]) -> list[Path]:
        return [diffs[-1]] if diffs else []

    def mount(self, lowers: list[Path], container_dir: Path) -> Path:
        """Copy the top snapshot to ``container_dir/rootfs`` once; later calls reuse it."""
        rootfs = container_dir / "rootfs"
        if rootfs.is_dir():
            return rootfs
        staging = container_dir / ".rootfs-copying"
        remove_tree(staging)  # left by a killed command
        staging.mkdir(mode=0o755, parents=True)
        if lowers:
            copy_tree(lowers[0], staging)
        os.rename(staging, rootfs)  # the copy is complete once it has its name
        return rootfs

    def unmount(self, container_dir: Path) -> None:
        # Nothing is mounted: the copy stays until the container is removed.
        return None


def copy_tree(src: Path, dst: Path) -> None:
    """Copy the contents of *src* into the existing *dst*, keeping owners, modes, times,
    xattrs, hardlinks and device nodes (`cp -a`; reflinks where the filesystem has them)."""
    proc = subprocess.run(
        ["cp", "-a", "--reflink=auto", "--", f"{src}/.", f"{dst}/"],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        hint = f"cp said: {proc.stderr.strip()}; check free space in the engine root"
        raise KernelError("copy layer", src, errno.EIO, hint)
