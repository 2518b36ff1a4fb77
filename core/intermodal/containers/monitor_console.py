"""The runtime's --console-socket, on the monitor's side: how a `--tty` container's terminal reaches us."""

import os
import sys

from intermodal.containers.monitor_sys import unlink


class Console:
    """The runtime's --console-socket: it sends us the master side of the container's terminal (SCM_RIGHTS)."""

    TIOCSWINSZ = 0x5414  # asm-generic/ioctls.h; spares importing termios

    def __init__(self, path):
        import _socket

        # "@name" is an abstract socket (as Go and runc spell it): no file,
        # used when a path would pass the 108-byte limit of sun_path.
        self.path = path
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        if path.startswith("@"):
            self.sock.bind("\0" + path[1:])
        else:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            unlink(path)
            self.sock.bind(path)
        self.sock.listen(1)

    def receive(self, size):
        import _socket

        self.sock.settimeout(10.0)  # the runtime has exited: what it sent is queued already
        fd, _addr = self.sock._accept()
        conn = _socket.socket(fileno=fd)
        try:
            _msg, ancillary, _flags, _addr = conn.recvmsg(4096, _socket.CMSG_SPACE(4))
        finally:
            conn.close()
        for level, kind, data in ancillary:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                master = int.from_bytes(data[:4], sys.byteorder)
                os.set_inheritable(master, False)
                if size:
                    resize(master, size)
                return master
        raise OSError("the runtime sent no terminal on the console socket")

    def close(self):
        self.sock.close()
        if not self.path.startswith("@"):
            unlink(self.path)


def resize(master, size):
    """Set the terminal's size (rows, columns); the container's foreground process gets SIGWINCH."""
    import fcntl

    fcntl.ioctl(master, Console.TIOCSWINSZ, bytes(winsize(size)))


def winsize(size):
    """struct winsize {rows, cols, xpixel, ypixel} as four native unsigned shorts."""
    rows, cols = size
    out = bytearray()
    for value in (rows, cols, 0, 0):
        out += int(value).to_bytes(2, sys.byteorder)
    return out
