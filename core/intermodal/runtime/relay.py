"""The terminal of a foreground `imod-runtime run` without `--console-socket`, as runc gives it.

`runc spec` writes ``"terminal": true`` and the runc docs run that bundle with
a plain ``runc run ID``: runc then takes the pty master itself and copies
between it and its own stdin/stdout (stdin in raw mode when it is a
terminal, the window size passed on). :class:`Relay` does the same: a
private console socket in a 0700 directory (the runtime's usual protocol,
console.py), then one bounded copy loop until the container's process exits.
Only this path imports socket, select, termios and tty.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from intermodal.errors import RuntimeFailure

ACCEPT_TIMEOUT = 10.0  # the master is sent during create, before this is asked for
DRAIN_TIMEOUT = 0.2  # after the exit: output still in the pty's buffer


class Relay:
    def __init__(self) -> None:
        import socket

        self.directory = tempfile.mkdtemp(prefix="imod-runtime-tty-")
        self.path = os.path.join(self.directory, "console.sock")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(1)
        self.master = -1

    def receive(self) -> None:
        """Take the pty master the container's process sent during create (queued in the backlog)."""
        from intermodal.runtime.console import receive

        self.server.settimeout(ACCEPT_TIMEOUT)
        try:
            conn, _ = self.server.accept()
        except TimeoutError:
            raise RuntimeFailure(f"the container sent no terminal within {ACCEPT_TIMEOUT:.0f}s; "
                                 "set process.terminal to false or pass --console-socket") from None
        with conn:
            self.master, _name = receive(conn)
        self._remove_directory()  # no longer needed: nothing is left behind even if we are SIGKILLed later
        self.resize()

    def resize(self, *_args: object) -> None:
        """Give the container's terminal our terminal's size (also the SIGWINCH handler)."""
        import fcntl
        import termios

        try:
            size = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)
        except OSError:
            pass  # stdin is no terminal: the pty keeps its size (consoleSize or 0x0)

    def copy(self, pid: int) -> None:
        """Copy stdin to the terminal and the terminal to stdout until *pid* exits, then drain the output."""
        import select
        import signal

        signal.signal(signal.SIGWINCH, self.resize)
        pidfd = os.pidfd_open(pid)
        saved = _raw(0)
        try:
            inputs = [0, self.master, pidfd]
            while pidfd in inputs:
                for fd in select.select(inputs, [], [])[0]:
                    if fd == pidfd:
                        inputs.remove(pidfd)
                    elif fd == 0 and not self._input():
                        inputs.remove(0)
                    elif fd == self.master and not self._output():
                        inputs.remove(self.master)
            while select.select([self.master], [], [], DRAIN_TIMEOUT)[0] and self._output():
                pass
        finally:
            os.close(pidfd)
            _restore(0, saved)
            signal.signal(signal.SIGWINCH, signal.SIG_DFL)

    def _input(self) -> bool:
        """False at the end of our input: copying stops, the terminal stays open (as with runc and docker;
        a VEOF sent then would race the shell's own switch of the terminal to raw mode)."""
        try:
            data = os.read(0, 65536)
            if data:
                _write_all(self.master, data)
        except OSError:
            return False
        return bool(data)

    def _output(self) -> bool:
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: no process holds the terminal any more
            return False
        if data:
            _write_all(1, data)
        return bool(data)

    def close(self) -> None:
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
        self.server.close()
        self._remove_directory()

    def _remove_directory(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _raw(fd: int) -> list | None:
    """Put a terminal *fd* in raw mode (keys go to the container's terminal as typed); its old mode."""
    if not os.isatty(fd):
        return None
    import termios
    import tty

    saved = termios.tcgetattr(fd)
    tty.setraw(fd, termios.TCSANOW)  # not TCSAFLUSH: keys typed ahead reach the container
    return saved


def _restore(fd: int, saved: list | None) -> None:
    if saved is not None:
        import termios

        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
