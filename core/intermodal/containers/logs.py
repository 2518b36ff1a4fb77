"""Container logs in Docker's json-file format, with rotation.

One JSON object per line, ``{"log": "hi\\n", "stream": "stdout", "time":
"2024-01-01T00:00:00.000000001Z"}``, in ``container.log``; when it would
grow past ``max-size`` it becomes ``container.log.1`` (older ones shift up,
the one past ``max-file`` is dropped). The monitor writes, `imod logs` reads.
The writer half is imported by the monitor, so the module imports only
``os``, ``time`` and ``_json`` at the top: the ``json`` package pulls in
``re`` and ``enum``, 1.4 MB of resident memory per monitor.
"""

from __future__ import annotations

import os
import time
from _json import encode_basestring

LOG_NAME = "container.log"
# Docker splits lines longer than 16 KiB into several records.
MAX_RECORD = 16 * 1024


def timestamp(ns: int | None = None) -> str:
    """RFC 3339 with nanoseconds in UTC, as Docker writes it."""
    ns = time.time_ns() if ns is None else ns
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


class LogWriter:
    """Appends records to ``directory/container.log``, rotating by size."""

    def __init__(self, directory: str, max_size: int = 0, max_file: int = 1) -> None:
        self.path = os.path.join(directory, LOG_NAME)
        self.max_size = max_size  # 0: never rotate
        self.max_file = max(1, max_file)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size
        self.partial = {"stdout": b"", "stderr": b""}

    def feed(self, stream: str, data: bytes) -> None:
        """Take raw output; whole lines become records, the rest waits for more."""
        buf = self.partial[stream] + data
        start = 0
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            self._records(stream, buf[start:nl + 1])
            start = nl + 1
        rest = buf[start:]
        while len(rest) >= MAX_RECORD:
            self._records(stream, rest[:MAX_RECORD])
            rest = rest[MAX_RECORD:]
        self.partial[stream] = rest

    def flush(self) -> None:
        """Write what is left without a newline (the process ended mid-line)."""
        for stream, rest in self.partial.items():
            if rest:
                self._records(stream, rest)
                self.partial[stream] = b""

    def close(self) -> None:
        self.flush()
        os.close(self.fd)

    def _records(self, stream: str, line: bytes) -> None:
        for i in range(0, len(line), MAX_RECORD):
            text = encode_basestring(line[i:i + MAX_RECORD].decode("utf-8", "replace"))
            self._write(f'{{"log":{text},"stream":"{stream}","time":"{timestamp()}"}}\n'.encode())

    def _write(self, data: bytes) -> None:
        if self.max_size and self.size and self.size + len(data) > self.max_size:
            self._rotate()
        os.write(self.fd, data)
        self.size += len(data)

    def _rotate(self) -> None:
        os.close(self.fd)
        if self.max_file == 1:
            os.truncate(self.path, 0)
        else:
            for n in range(self.max_file - 1, 0, -1):
                older = f"{self.path}.{n}"
                newer = self.path if n == 1 else f"{self.path}.{n - 1}"
                if os.path.exists(newer):
                    os.replace(newer, older)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = 0


# -- reading (imod logs) -------------------------------------------------------


def log_files(directory: str) -> list[str]:
    """The log files of a container, oldest first."""
    base = os.path.join(directory, LOG_NAME)
    rotated = []
    n = 1
    while os.path.exists(f"{base}.{n}"):
        rotated.append(f"{base}.{n}")
        n += 1
    return [*reversed(rotated), *([base] if os.path.exists(base) else [])]


def read_records(directory: str) -> list[dict]:
    import json

    records = []
    for path in log_files(directory):
        with open(path, "rb") as f:
            for line in f:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue  # a line cut by a crash mid-write
    return records


def parse_time(text: str) -> int:
    """A record's time (or a --since value: RFC 3339 or a Unix timestamp) as ns since the epoch.

    Raises InvalidArgument for anything else."""
    whole, dot, frac = text.partition(".")
    if whole.isdigit() and (frac.isdigit() or not dot):  # a Unix timestamp, exact to the nanosecond
        return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])
    from intermodal.timefmt import parse_rfc3339_ns

    ns = parse_rfc3339_ns(text)
    if ns is None:
        from intermodal.errors import InvalidArgument

        raise InvalidArgument(f"invalid time {text!r}: use RFC 3339 (2024-01-02T15:04:05Z) or a Unix timestamp")
    return ns


def select(records: list[dict], *, tail: int | None = None, since_ns: int | None = None,
           until_ns: int | None = None) -> list[dict]:
    if since_ns is not None or until_ns is not None:
        records = [r for r in records if _within(parse_time(r["time"]), since_ns, until_ns)]
    if tail is not None:
        records = records[-tail:] if tail > 0 else []
    return records


def _within(ns: int, since_ns: int | None, until_ns: int | None) -> bool:
    return (since_ns is None or ns >= since_ns) and (until_ns is None or ns <= until_ns)



class Follower:
    """The records added to a container's log from now on, across rotations (`imod attach`).

    It keeps the file open: a rotation renames it (or drops it), and what was
    written to it before is still read through the open descriptor.
    """

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, LOG_NAME)
        self.fd: int | None = None
        self.partial = b""
        self._open(at_end=True)

    def _open(self, at_end: bool) -> None:
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self.fd = None
            return
        if at_end:
            os.lseek(self.fd, 0, os.SEEK_END)

    def read(self) -> list[dict]:
        """What was written since the last call, as records; a line still being written waits for the next."""
        import json

        data = self._drain()
        if self.fd is None or self._rotated():
            data += self._drain()  # the rest of the old file, the files rotated since, then the new one
            data += self._rotated_since()
            self.close()
            self._open(at_end=False)
            data += self._drain()
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def _drain(self) -> bytes:
        if self.fd is None:
            return b""
        chunks = []
        while True:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def _rotated_since(self) -> bytes:
        """Whole files rotated after ours (ours is now ``.N``: ``.N-1`` down to ``.1``); those dropped are lost."""
        if self.fd is None:
            return b""
        ours = os.fstat(self.fd).st_ino
        rotated = log_files(os.path.dirname(self.path))[:-1]  # oldest first, without the current file
        inodes = [_inode(path) for path in rotated]
        newer = rotated[inodes.index(ours) + 1:] if ours in inodes else rotated
        chunks = []
        for path in newer:
            try:
                with open(path, "rb") as f:
                    chunks.append(f.read())
            except FileNotFoundError:
                continue  # rotated away meanwhile
        return b"".join(chunks)

    def _rotated(self) -> bool:
        try:
            return os.stat(self.path).st_ino != os.fstat(self.fd).st_ino
        except FileNotFoundError:
            return False  # between the rename and the new file: the next call looks again

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None
