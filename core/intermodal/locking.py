"""File locks that make parallel `imod` commands safe.

flock(2) locks are released by the kernel when the holder dies, so a
command killed with SIGKILL never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import time

from intermodal.errors import LockTimeout

TYPE_CHECKING = False  # not pathlib or typing: the runtime's start path locks through this module too
if TYPE_CHECKING:
    from pathlib import Path

DEFAULT_TIMEOUT = 120.0


class locked:
    """Hold an flock on *path* (created if missing) for the duration of the ``with`` block.

    A class, not a ``contextlib.contextmanager``: `imod` need not import contextlib for it.
    """

    __slots__ = ("fd", "path", "shared", "timeout")

    def __init__(self, path: Path, *, shared: bool = False, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path, self.shared, self.timeout = path, shared, timeout
        self.fd = -1

    def __enter__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            acquire(fd, self.path, shared=self.shared, timeout=self.timeout)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def __exit__(self, *exc: object) -> None:
        fd, self.fd = self.fd, -1
        os.close(fd)  # closing the descriptor releases the lock


def acquire(fd: int, path: Path | str, *, shared: bool = False, timeout: float = DEFAULT_TIMEOUT,
            holder: str = "another intermodal command") -> None:
    """flock *fd* (the file at *path*), retrying with back-off; LockTimeout naming *holder* after *timeout* s."""
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockTimeout(f"{path} is still locked by {holder} after {timeout:.0f}s; "
                                  "wait for it to finish (see `ps`), then retry") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
