"""A userland TCP proxy for published ports on [::1], where DNAT cannot work.

IPv6 has no route_localnet: once conntrack turns the answer's destination
back into ::1 on the bridge, the kernel drops it (see nftables.py). Docker
serves [::1] with its docker-proxy for the same reason. `start` binds the
listening sockets in the caller (a taken port is an error there, and the
port answers as soon as `start` returns) and hands them to a small detached
process that copies bytes both ways; `stop` ends it by PID, checked against
its start time. It lives as the port rules do: from the start that publishes
to the container's removal (or the next change of its networks).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from intermodal.errors import Conflict

LOOPBACK6 = "::1"
CHUNK = 1 << 16


def start(pairs: Iterable[tuple[int, str, int]]) -> tuple[int, int] | None:
    """Serve [::1]:host_port -> [address]:port for each (host_port, address, port); returns (pid, start
    time) of the proxy, None if there is nothing to serve. Raises Conflict if [::1]:port is taken."""
    pairs = list(pairs)
    if not pairs:
        return None
    sockets: list[socket.socket] = []
    try:
        for host_port, _, _ in pairs:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((LOOPBACK6, host_port))
            except OSError as err:
                raise Conflict(f"cannot publish [::1]:{host_port}/tcp: {err.strerror}; another program "
                               "listens there, choose another host port") from None
            sock.listen(128)
        args = [f"{s.fileno()}={address}={port}" for s, (_, address, port) in zip(sockets, pairs, strict=True)]
        core = str(Path(__file__).resolve().parents[2])
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, {core!r}); "
             "from intermodal.network.proxy import main; main(sys.argv[1:])", *args],
            pass_fds=[s.fileno() for s in sockets], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        return proc.pid, _start_time(proc.pid)
    finally:
        for sock in sockets:
            sock.close()  # the proxy has its own copies


def stop(pid: int, started: int) -> None:
    """End the proxy *pid* if it is still the process started at *started* (a PID may be reused)."""
    import signal

    if _start_time(pid) != started:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)  # our child when the same command started it; else init reaps it
    except ChildProcessError:
        pass


def _start_time(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat.rpartition(")")[2].split()[19])


# -- the proxy process ------------------------------------------------------------------------------------

def main(argv: list[str]) -> None:
    for item in argv:
        fd, address, port = item.split("=")
        listener = socket.socket(fileno=int(fd))
        threading.Thread(target=_accept, args=(listener, address, int(port)), daemon=True).start()
    threading.Event().wait()  # until killed


def _accept(listener: socket.socket, address: str, port: int) -> None:
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_serve, args=(client, address, port), daemon=True).start()


def _serve(client: socket.socket, address: str, port: int) -> None:
    try:
        upstream = socket.create_connection((address, port), timeout=10)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
    back.start()
    _pipe(client, upstream)
    back.join()
    client.close()
    upstream.close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    """Copy until EOF, then half-close: each direction ends on its own, as TCP does."""
    try:
        while data := src.recv(CHUNK):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        try:
            src.shutdown(socket.SHUT_RD)
        except OSError:
            pass
