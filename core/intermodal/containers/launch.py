"""Starting a container's monitor, and attaching to its output.

`imod` starts the monitor (`monitor.py`) in a new session: an attached
`imod run` forks it first of all (`prespawn`), before it imports anything
more than this module, so the monitor and its launcher start ~10 ms sooner
than a new interpreter would; every other start (`imod run -d`, `imod
start`, the Ansible modules, restarts at boot) runs it with a fresh, small
interpreter (``python -I -S``, through posix_spawn: `subprocess` is not
imported for it), ~0.35 MB smaller for as long as the container runs.
`imod` then waits on the ready pipe for the monitor to report the
container's start (or why it could not start). An attached `imod run` also
hands it pipes for stdout, stderr and the final status, and copies them to
its own stdout and stderr.
"""

from __future__ import annotations

import _signal
import _socket
import os
import sys

from intermodal.errors import RuntimeFailure

TYPE_CHECKING = False  # this module is imported before anything else by `imod run`: not even `typing`
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any

# The directory that holds the `intermodal` package.
CORE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
# Imported, not run as a script: a script is compiled from source at every
# start (no .pyc), which costs time and leaves ~1 MB more heap in each monitor.
MONITOR = (f"import sys; sys.path.insert(0, {str(CORE)!r}); "
           "from intermodal.containers.monitor import main; main(sys.argv[1:])")
# How long `go` waits for the monitor's report of the start. Our runtime bounds each set-up step by
# runtime.launch.SETUP_TIMEOUT (300 s) and the start by container.START_TIMEOUT (30 s); past this
# something is stuck (in the kernel, or another runtime that never returns).
READY_TIMEOUT = 360.0


class Attach:
    """The reading ends `imod run` copies from, until the monitor closes them."""

    def __init__(self, stdout: int, stderr: int, status: int) -> None:
        self.stdout, self.stderr, self.status = stdout, stderr, status

    def close(self) -> None:
        if self.status >= 0:
            os.close(self.status)
            self.status = -1


class Started:
    """What the monitor reported for a start: ok, its info (pid, error, code), the attach ends."""

    def __init__(self, ok: bool, info: dict[str, Any], attach: Attach | None) -> None:
        self.ok, self.info, self.attach = ok, info, attach


class PendingMonitor:
    """A monitor started ahead of time: its interpreter starts while `imod` creates the container.

    It waits on the "go" pipe for the container's directory; `go` sends it,
    `cancel` closes the pipe (the monitor then exits without doing anything).
    *stage*: for a container not created yet (`run`): its id is chosen here
    (`cid`, for the create) so that the monitor can pre-stage its cgroups.
    *fork*: fork it from this process (`prespawn`) rather than start an interpreter.
    """

    def __init__(self, *, attach: bool = False, stdin: int | None = None, stage: bool = False,
                 fork: bool = False) -> None:
        self.used = False
        self.meanwhile: Callable[[], None] | None = None  # run by `go` while the monitor starts the container
        self.cid = os.urandom(32).hex() if stage else None  # as containers.store.new_id (not imported here)
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        go_r, self.go_w = os.pipe2(os.O_CLOEXEC)
        self.ready_r = ready_r
        self.mine: list[int] = []
        theirs: dict[str, int] = {"ready": ready_w, "go": go_r}
        if attach:
            for stream in ("stdout", "stderr"):
                r, w = os.pipe2(os.O_CLOEXEC)
                self.mine.append(r)
                theirs[stream] = w
            # Both ways: the monitor sends the exit code; our closing it says a
            # `--rm` container has been removed (see monitor.finish).
            ours, monitors = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
            self.mine.append(ours.detach())
            theirs["status"] = monitors.detach()
        if stdin is not None:
            theirs["stdin"] = os.dup(stdin)
        args = ["-"]
        for key, fd in theirs.items():
            args += [f"--{key}", str(fd)]
        if self.cid is not None:
            args += ["--id", self.cid]
        try:
            self.pid = _fork_monitor(args, self.cid) if fork else _spawn_monitor(args, list(theirs.values()))
        except OSError as err:
            self._close([*self.mine, self.ready_r, self.go_w])
            raise RuntimeFailure(f"could not start the container monitor ({err.strerror}); check {_python()}"
                                 ) from None
        finally:
            self._close(list(theirs.values()))

    def go(self, directory: Path) -> Started:
        self.used = True
        try:
            os.write(self.go_w, os.fsencode(directory) + b"\n")
        except OSError:
            pass  # it died; the ready pipe tells
        self._close([self.go_w])
        _reap(self.pid)  # the monitor's short-lived first half (the monitor proper is its child)
        if self.meanwhile is not None:
            self.meanwhile()
        try:
            info = _read_ready(self.ready_r, READY_TIMEOUT)
        except TimeoutError:
            self._abandon()
            raise RuntimeFailure(f"the container monitor did not report the start within {READY_TIMEOUT:.0f}s; "
                                 "it was stopped with the processes it had started. See "
                                 f"{directory / 'monitor.err'} and the kernel log (dmesg), remove the container "
                                 "(`imod rm -f`) and try again") from None
        finally:
            self._close([self.ready_r])
        handles = Attach(*self.mine) if self.mine else None
        if info is None:
            self._close(self.mine)
            try:
                last = (directory / "monitor.err").read_text(errors="replace").strip().splitlines()[-1]
            except (OSError, IndexError):
                last = "no message"
            raise RuntimeFailure(f"the container monitor exited before starting the container ({last}); "
                                 f"its full error is in {directory / 'monitor.err'}; please report it")
        return Started(bool(info.get("ok")), info, handles)

    def cancel(self) -> None:
        self.used = True
        self._close([self.go_w, self.ready_r, *self.mine])
        _reap(self.pid)

    def _abandon(self) -> None:
        """SIGKILL the monitor, its launcher and what they started in their process group (the first
        half led a new session; only the container's own processes leave it, with setsid)."""
        self._close(self.mine)
        try:
            os.killpg(self.pid, _signal.SIGKILL)
        except ProcessLookupError:
            pass  # all gone already

    @staticmethod
    def _close(fds: list[int]) -> None:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass


# -- started before the arguments are parsed ------------------------------------------------------

_early: tuple[bool, bool, PendingMonitor] | None = None


def prespawn(words: list[str], fork: bool = False) -> None:
    """`imod run`: start the monitor first of all, its mode guessed from the options before the image
    (-d, -i, also in clusters such as -dit); `take_prespawned` checks the guess against the parse.
    *fork*: fork it for an attached run (this process is `imod` and holds next to nothing yet), else spawn it."""
    global _early
    detach = interactive = False
    for word in words:
        if word == "--" or not word.startswith("-"):
            break  # the image (or an option's value: the guess may then be wrong, and is only slower)
        if word.startswith("--"):
            detach = detach or word == "--detach"
            interactive = interactive or word == "--interactive"
        else:
            detach = detach or "d" in word[1:]
            interactive = interactive or "i" in word[1:]
    stdin = not detach and interactive  # a detached container's input is not ours (as `run` decides)
    # Forked only for an attached run: it then lives beside this `imod`, whose own memory dwarfs what the
    # fork adds (~0.35 MB); a detached container's monitor is paid for as long as the container runs, and
    # a fresh `python -I -S` is the smaller one (~4 ms later at the start).
    fork = fork and not detach
    try:
        _early = (not detach, stdin, PendingMonitor(attach=not detach, stdin=0 if stdin else None, stage=True,
                                                                       fork=fork))
    except RuntimeFailure:
        _early = None  # said again when the start makes its own


def take_prespawned(attach: bool, stdin: int | None) -> PendingMonitor | None:
    """The monitor `prespawn` started, if it was started for this mode; else it is cancelled (None)."""
    global _early
    early, _early = _early, None
    if early is None:
        return None
    wanted_attach, wanted_stdin, monitor = early
    if (wanted_attach, wanted_stdin) == (attach, stdin == 0):
        return monitor
    monitor.cancel()
    return None


def _spawn_monitor(args: list[str], fds: list[int]) -> int:
    """The monitor in a fresh, small interpreter (``python -I -S``), its stdio /dev/null, in a new session."""
    argv = [_python(), "-I", "-S", "-c", MONITOR, *args]
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        for fd in fds:
            os.set_inheritable(fd, True)  # the monitor closes whatever else it inherits
        return os.posix_spawn(argv[0], argv, os.environ, setsid=True,
                              file_actions=[(os.POSIX_SPAWN_DUP2, null, target) for target in (0, 1, 2)],
                              setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ))  # as subprocess restores them
    finally:
        os.close(null)


def _fork_monitor(args: list[str], cid: str | None) -> int:
    """The monitor as a fork of this `imod` (PendingMonitor's *fork*), ~10 ms of CPU and of the start's
    critical path sooner than a new interpreter. Only while `imod` holds next to nothing (at the prespawn):
    the monitor keeps what it inherits for as long as its container runs (~0.35 MB more than a spawned one).
    It then is what the spawned one is: a new session, /dev/null for stdio, the collector at its default
    pace, its own name in ps."""
    pid = os.fork()
    if pid:
        return pid
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(null, target)
        os.close(null)
        import gc

        gc.set_threshold(700, 10, 10)  # CPython's default: `imod` collects rarely for its short life
        from intermodal.containers.monitor import main
        from intermodal.containers.monitor_sys import retitle

        retitle(cid)
        main(args)
    except BaseException:
        sys.excepthook(*sys.exc_info())  # to its stderr, as a spawned monitor's traceback
    finally:
        os._exit(0)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)  # retried on EINTR by Python itself (PEP 475)
    except ChildProcessError:
        pass  # reaped already (a second cancel)


def _read_ready(fd: int, timeout: float) -> dict[str, Any] | None:
    """The monitor's report (one JSON line, then EOF), None if it closed the pipe without one;
    TimeoutError if the pipe is still open *timeout* seconds from now."""
    import select
    import time

    data = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise TimeoutError
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    if not data.strip():
        return None
    from intermodal import cjson  # json's C half, without re and enum

    return cjson.loads(data.splitlines()[0])


def _python() -> str:
    return os.path.realpath(sys.executable)


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
    from intermodal import cjson

    return cjson.loads(data) if data.strip() else None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
