"""A terminal for the container, handed to the caller through `--console-socket`.

The protocol is runc's (and what conmon expects): the runtime connects to
the caller's AF_UNIX socket, creates the pty *inside* the container (its
own devpts instance), and sends the master with SCM_RIGHTS; the message
text is the slave's path. The slave becomes the container's controlling
terminal and its stdin/stdout/stderr.

Only containers with a terminal need the pty's modules (termios, _socket,
_struct): :func:`connect` imports them in the parent, before the fork,
so the child finds them loaded after pivot_root, when the host's files are
out of its reach; no other container start pays for them. `_socket`, not
`socket`: that one imports selectors and enum.
"""

from __future__ import annotations

import os

from intermodal.errors import KernelError
from intermodal.runtime import syscalls as S

TYPE_CHECKING = False  # not `typing`: the monitor's launcher imports this for every start
if TYPE_CHECKING:
    import socket


def connect(path: str) -> int:
    """In the parent: connect to the caller's socket; the returned fd is inherited by the child.

    Also loads what :func:`create` and :func:`attach` use in the child."""
    import _socket
    import _struct  # noqa: F401  (for the child)
    import fcntl  # noqa: F401  (for the child)
    import termios  # noqa: F401  (for the child)

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    # "@name" is an abstract socket (unix(7)), as runc accepts: callers use one when a path would
    # exceed sun_path's 108 bytes.
    address = "\0" + path[1:] if path.startswith("@") else path
    try:
        sock.connect(address)
    except OSError as exc:
        sock.close()
        raise KernelError.from_oserror("connect console socket", exc, "the caller must listen on it") from None
    fd = sock.detach()
    os.set_inheritable(fd, True)
    return fd


def create(sock_fd: int, size: tuple[int, int] | None, *, bind_console: bool = True) -> int:
    """In the container (after pivot_root): open a pty, send the master, return the slave.

    *bind_console*: also make it /dev/console (for the container's init, not for `exec`,
    which must not change the container's mounts)."""
    try:
        master, slave = os.openpty()  # /dev/ptmx -> pts/ptmx: the container's devpts instance
    except OSError as exc:
        raise KernelError.from_oserror("open /dev/ptmx", exc, "mount a devpts with newinstance at /dev/pts") from None
    try:
        if size and size[0] and size[1]:
            import _struct
            import fcntl
            import termios

            fcntl.ioctl(master, termios.TIOCSWINSZ, _struct.pack("HHHH", size[0], size[1], 0, 0))
        name = os.ttyname(slave)
        send_fd(sock_fd, master, name.encode())
    finally:
        os.close(master)
        os.close(sock_fd)
    if bind_console and os.path.exists("/dev/console"):
        S.mount(name, "/dev/console", None, S.MS_BIND)
    return slave


def send_fd(sock_fd: int, fd: int, message: bytes) -> None:
    import _socket

    sock = _socket.socket(fileno=os.dup(sock_fd))
    try:
        sock.sendmsg([message], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, S.pack_fds([fd]))])
    finally:
        sock.close()


def attach(slave: int) -> None:
    """Make *slave* the controlling terminal (the caller already called setsid) and fds 0-2."""
    import fcntl
    import termios

    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    if slave > 2:
        os.close(slave)


def receive(sock: socket.socket) -> tuple[int, str]:
    """The receiving side (tests, the engine): (master fd, slave path) from one connection."""
    import _socket
    import _struct

    msg, ancdata, _flags, _addr = sock.recvmsg(4096, _socket.CMSG_SPACE(_struct.calcsize("i")))
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            return _struct.unpack("i", data[: _struct.calcsize("i")])[0], msg.decode()
    raise KernelError("recvmsg console socket", None, 71, "the runtime sent no file descriptor")
