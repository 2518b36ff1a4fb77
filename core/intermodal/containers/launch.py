"""Starting a container's monitor, and attaching to its output.

`imod` starts the monitor (`monitor.py`) with a fresh, small interpreter
(``python -I -S``) in a new session, then waits on the ready pipe for the
monitor to report the container's start (or why it could not start). An
attached `imod run` also hands it pipes for stdout, stderr and the final
status, and copies them to its own stdout and stderr.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intermodal.errors import RuntimeFailure

CORE = Path(__file__).resolve().parents[2]  # the directory that holds the `intermodal` package
# Imported, not run as a script: a script is compiled from source at every
# start (no .pyc), which costs time and leaves ~1 MB more heap in each monitor.
MONITOR = (f"import sys; sys.path.insert(0, {str(CORE)!r}); "
           "from intermodal.containers.monitor import main; main(sys.argv[1:])")


@dataclass
class Attach:
    """The reading ends `imod run` copies from, until the monitor closes them."""

    stdout: int
    stderr: int
    status: int

    def close(self) -> None:
        if self.status >= 0:
            os.close(self.status)
            self.status = -1


@dataclass
class Started:
    ok: bool
    info: dict[str, Any]
    attach: Attach | None


def spawn_monitor(directory: Path, *, attach: bool = False, stdin: int | None = None) -> Started:
    """Start the monitor; return what it reported on the ready pipe."""
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    mine: list[int] = [ready_r]
    theirs: dict[str, int] = {"ready": ready_w}
    if attach:
        for stream in ("stdout", "stderr"):
            r, w = os.pipe2(os.O_CLOEXEC)
            mine.append(r)
            theirs[stream] = w
        # Both ways: the monitor sends the exit code; our closing it says a
        # `--rm` container has been removed (see monitor.finish).
        ours, monitors = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        mine.append(ours.detach())
        theirs["status"] = monitors.detach()
    if stdin is not None:
        theirs["stdin"] = os.dup(stdin)
    argv = [_python(), "-I", "-S", "-c", MONITOR, str(directory)]
    for key, fd in theirs.items():
        argv += [f"--{key}", str(fd)]
    err = _monitor_stderr(directory)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                pass_fds=tuple(theirs.values()), start_new_session=True, close_fds=True)
    except OSError as err:
        for fd in [*mine, *theirs.values()]:
            os.close(fd)
        raise RuntimeFailure(f"could not start the container monitor ({err.strerror}); check {_python()}") from None
    finally:
        os.close(err)
        for fd in theirs.values():
            try:
                os.close(fd)
            except OSError:
                pass
    proc.wait()  # the monitor forks at once; this is its short-lived first half
    info = _read_ready(ready_r)
    os.close(ready_r)
    handles = Attach(*mine[1:4]) if attach else None
    if info is None:
        if handles:
            for fd in mine[1:]:
                os.close(fd)
        raise RuntimeFailure(f"the container monitor exited before starting the container; see "
                             f"{directory / 'monitor.err'}")
    return Started(bool(info.get("ok")), info, handles)


def _read_ready(fd: int) -> dict[str, Any] | None:
    data = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    if not data.strip():
        return None
    return json.loads(data.splitlines()[0])


def _python() -> str:
    return os.path.realpath(sys.executable)


def _monitor_stderr(directory: Path) -> int:
    """The monitor's own tracebacks, if it ever has one, go to a file beside its state."""
    return os.open(directory / "monitor.err", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)


def copy_output(handles: Attach) -> int:
    """Copy the container's output to ours until it exits; return the exit code the monitor sends.

    The status socket stays open: the caller closes it (``handles.close()``)
    once it has removed a `--rm` container, or at once.
    """
    import select

    outs = {handles.stdout: sys.stdout.buffer, handles.stderr: sys.stderr.buffer}
    sys.stdout.flush()
    sys.stderr.flush()
    targets = {handles.stdout: 1, handles.stderr: 2}
    open_fds = set(outs)
    while open_fds:
        ready, _, _ = select.select(list(open_fds), [], [])
        for fd in ready:
            data = os.read(fd, 65536)
            if not data:
                open_fds.discard(fd)
                os.close(fd)
                continue
            _write_all(targets[fd], data)
    status = _read_line(handles.status)
    if status is None:
        return 125
    return int(status.get("exit_code", 125))


def _read_line(fd: int) -> dict[str, Any] | None:
    """One JSON line from the status socket, leaving it open."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return json.loads(data) if data.strip() else None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
