"""File locks that make parallel `imod` commands safe.

flock(2) locks are released by the kernel when the holder dies, so a
command killed with SIGKILL never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from intermodal.errors import LockTimeout

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
            _acquire(fd, self.path, self.shared, self.timeout)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def __exit__(self, *exc: object) -> None:
        fd, self.fd = self.fd, -1
        os.close(fd)  # closing the descriptor releases the lock


def _acquire(fd: int, path: Path, shared: bool, timeout: float) -> None:
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"{path} is still locked by another intermodal command after {timeout:.0f}s; "
                    "wait for it to finish (see `ps`), then retry"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
