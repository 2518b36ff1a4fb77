"""Pull and push progress, shown as Docker shows it.

On a terminal: one line per layer (``a3ed95caeb02: Downloading  12.1MB/40MB``),
rewritten in place. Elsewhere: only each layer's final status. Quiet: nothing.
Thread-safe, because layers move in parallel worker threads.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

FINAL = frozenset({"Pull complete", "Already exists", "Pushed", "Layer already exists"})


def short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


class Progress:
    """Silent base: what the library API uses when nobody watches."""

    def line(self, text: str) -> None:
        pass

    def update(self, key: str, status: str, current: int | None = None, total: int | None = None) -> None:
        pass

    def close(self) -> None:
        pass


class TextProgress(Progress):
    def __init__(self, out: TextIO | None = None, *, tty: bool | None = None, interval: float = 0.1) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.interval = interval
        self._lock = threading.Lock()
        self._order: list[str] = []
        self._status: dict[str, str] = {}
        self._drawn = 0
        self._last = 0.0

    def line(self, text: str) -> None:
        with self._lock:
            self._redraw(force=True)
            self.out.write(text + "\n")
            self.out.flush()
            # Lines written after the layer block leave it behind for good.
            self._order.clear()
            self._status.clear()
            self._drawn = 0

    def update(self, key: str, status: str, current: int | None = None, total: int | None = None) -> None:
        text = status
        if current is not None and total and not _final(status):
            text = f"{status:<12} {_size(current)}/{_size(total)}"
        with self._lock:
            if key not in self._status:
                self._order.append(key)
            self._status[key] = text
            if not self.tty:
                if _final(status):
                    self.out.write(f"{short(key)}: {text}\n")
                    self.out.flush()
                return
            self._redraw(force=_final(status) or current is None)

    def close(self) -> None:
        with self._lock:
            self._redraw(force=True)

    def _redraw(self, *, force: bool) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        parts = []
        if self._drawn:
            parts.append(f"\x1b[{self._drawn}A")  # back to the first layer line
        for key in self._order:
            parts.append(f"\x1b[2K{short(key)}: {self._status[key]}\n")
        self.out.write("".join(parts))
        self.out.flush()
        self._drawn = len(self._order)


def _final(status: str) -> bool:
    return status in FINAL or status.startswith("Mounted from")


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}B"
