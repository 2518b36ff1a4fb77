"""A terminal through --console-socket: the runtime sends the pty master with SCM_RIGHTS."""

from __future__ import annotations

import os
import select
import socket
import threading
import time

import pytest

from intermodal.runtime.console import receive
from tests.support import bundle as _bundle

pytestmark = pytest.mark.requires("root", "busybox")
busybox_rootfs, busybox_bundle, created = _bundle.busybox_rootfs, _bundle.busybox_bundle, _bundle.created


class Receiver:
    """A small console-socket server (what conmon does): accepts one connection, keeps the master."""

    def __init__(self, path: str) -> None:
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        self.server.settimeout(10)
        self.master = -1
        self.name = ""
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            self.master, self.name = receive(conn)

    def read_all(self, timeout: float = 10) -> bytes:
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not select.select([self.master], [], [], 0.1)[0]:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: the slave side is closed
                break
            if not chunk:
                break
            data += chunk
        return data

    def close(self) -> None:
        self.server.close()
        if self.master >= 0:
            os.close(self.master)


def test_terminal_through_console_socket(busybox_bundle, created, tmp_path):
    busybox_bundle.mutate(lambda c: c["process"].update(
        terminal=True, consoleSize={"height": 33, "width": 101}))
    busybox_bundle.sh("tty; stty size; [ -t 0 ] && echo stdin-is-tty; ls -l /dev/console")
    receiver = Receiver(str(tmp_path / "console.sock"))
    try:
        ctr = created.create(busybox_bundle, console_socket=str(tmp_path / "console.sock"))
        receiver.thread.join(10)
        assert receiver.master >= 0 and receiver.name.startswith("/dev/pts/")
        ctr.start()
        output = receiver.read_all().decode(errors="replace").replace("\r", "")
        assert ctr.wait(10) == 0
        ctr.delete()
    finally:
        receiver.close()
    lines = output.splitlines()
    assert lines[0] == receiver.name and lines[1] == "33 101" and lines[2] == "stdin-is-tty"
    assert "/dev/console" in lines[3]


def test_terminal_without_console_socket_is_refused(busybox_bundle, created):
    busybox_bundle.mutate(lambda c: c["process"].update(terminal=True))
    with pytest.raises(Exception, match="console-socket"):
        created.create(busybox_bundle)
