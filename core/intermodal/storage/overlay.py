"""The overlay driver: layers are overlayfs lower directories, containers get upper/work/merged.

A layer's directory holds its own changes only; whiteouts are stored the way
overlayfs reads them (see `unpack`). A container mount stacks the layers'
directories, topmost first, under the container's writable upper directory.
"""

from __future__ import annotations

import errno
import os

from intermodal.errors import InvalidArgument, KernelError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

MNT_DETACH = 2


class OverlayDriver:
    name = "overlay"
    whiteouts = "overlay"
    needs_parent = False  # a layer's directory does not depend on the layers below

    def prepare(self, diff: Path, parent: Path | None) -> None:
        diff.mkdir(mode=0o755)

    def lower_dirs(self, diffs: list[Path]) -> list[Path]:
        return list(reversed(diffs))

    def mount(self, lowers: list[Path], container_dir: Path) -> Path:
        """Mount the container's root filesystem at ``container_dir/merged`` (idempotent)."""
        merged = container_dir / "merged"
        upper = container_dir / "upper"
        work = container_dir / "work"
        for d in (upper, work, merged):
            d.mkdir(mode=0o755, parents=True, exist_ok=True)
        if os.path.ismount(merged):
            return merged
        mount_overlay(lowers, upper, work, merged)
        return merged

    def unmount(self, container_dir: Path) -> None:
        unmount(container_dir / "merged")


def mount_overlay(lowers: list[Path], upper: Path | None, work: Path | None, target: Path) -> None:
    """mount -t overlay; *lowers* topmost first. Long lists go through /proc/self/fd paths.

    The mount data is limited to one page (mount(2)); a path per layer under a
    deep engine root passes that at a few dozen layers, so then each directory
    is opened O_PATH and named by its short ``/proc/self/fd/N`` link, which
    overlayfs resolves while mounting.
    """
    fds: list[int] = []
    try:
        data = _options([str(p) for p in lowers], upper, work)
        if len(data) >= os.sysconf("SC_PAGE_SIZE"):
            for p in lowers:
                fds.append(os.open(p, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
            data = _options([f"/proc/self/fd/{fd}" for fd in fds], upper, work)
            if len(data) >= os.sysconf("SC_PAGE_SIZE"):
                raise InvalidArgument(
                    f"an image with {len(lowers)} layers is too deep for an overlay mount; "
                    "squash it into fewer layers (build with --squash or export/import)"
                )
        _mount("overlay", target, "overlay", 0, data)
    finally:
        for fd in fds:
            os.close(fd)


def unmount(target: Path) -> None:
    """Unmount *target*; not mounted or missing counts as done, a busy one is detached."""
    if not os.path.ismount(target):
        return
    try:
        _umount(target, 0)
    except KernelError as err:
        if err.errno == errno.EBUSY:
            _umount(target, MNT_DETACH)  # a process still inside: let the kernel finish later
        elif err.errno not in (errno.EINVAL, errno.ENOENT):
            raise


def _options(lowers: list[str], upper: Path | None, work: Path | None) -> str:
    text = "lowerdir=" + ":".join(_escape(p) for p in lowers)
    if upper is not None and work is not None:
        text += f",upperdir={_escape(str(upper))},workdir={_escape(str(work))}"
    return text


def _escape(path: str) -> str:
    # overlayfs splits lowerdir on ':' and options on ',' unless backslash-escaped
    return path.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")


def _mount(source: str, target: Path, fstype: str, flags: int, data: str) -> None:
    from intermodal.runtime import syscalls  # its libc calls, without the ctypes package (~1.4 ms)

    try:
        syscalls.mount(source, os.fspath(target), fstype, flags, data)
    except KernelError as err:
        raise KernelError("mount overlay on", target, err.errno,
                          "check that the engine root is not itself on overlayfs and that you are root") from None


def _umount(target: Path, flags: int) -> None:
    from intermodal.runtime import syscalls

    syscalls.umount2(os.fspath(target), flags)
