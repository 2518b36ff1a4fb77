"""rtnl.py's deadlines: a socketpair stands in for the kernel's netlink socket (the far end answers, or not)."""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading

import pytest

from intermodal.errors import NetworkError
from intermodal.network import rtnl


@pytest.fixture
def pair():
    """(an Rtnl speaking through one end with a short deadline, the far end playing the kernel)."""
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    client = rtnl.Rtnl(timeout=0.2, sock=ours)
    try:
        yield client, kernel
    finally:
        client.close()
        kernel.close()


def _answer(seq: int, mtype: int = rtnl.NLMSG_ERROR, payload: bytes = struct.pack("=i", 0)) -> bytes:
    return struct.pack("=IHHII", 16 + len(payload), mtype, 0, seq, 0) + payload


def test_an_answered_request_returns(pair):
    client, kernel = pair
    kernel.send(_answer(1))  # the kernel answers inside send(): the ACK is queued before we wait
    assert client.request(rtnl.RTM_NEWLINK, 0, b"", "bring up link 1") == []
    assert struct.unpack_from("=IHHII", kernel.recv(4096))[1] == rtnl.RTM_NEWLINK


def test_no_answer_is_an_error_that_says_what_was_being_done(pair):
    client, kernel = pair
    with pytest.raises(NetworkError, match=r"create veth imv0 \(peer eth0\): the kernel did not answer within "
                                           r"0\.2s.*retry") as info:
        client.request(rtnl.RTM_NEWLINK, 0, b"", "create veth imv0 (peer eth0)")
    assert info.value.errno == errno.ETIMEDOUT
    assert kernel.recv(4096)  # the request did go out


def test_stale_answers_do_not_extend_the_deadline(pair):
    """Answers to earlier requests are skipped, within the same deadline."""
    client, kernel = pair
    for _ in range(50):
        kernel.send(_answer(99))
    with pytest.raises(NetworkError, match="did not answer"):
        client.request(rtnl.RTM_GETLINK, rtnl.NLM_F_DUMP, b"")


def test_default_description_names_the_message(pair):
    client, _ = pair
    with pytest.raises(NetworkError, match=r"^add a route: the kernel did not answer"):
        client.request(rtnl.RTM_NEWROUTE, 0, b"")


def test_a_namespace_join_that_hangs_is_bounded(monkeypatch, tmp_path):
    from intermodal.runtime import syscalls

    release = threading.Event()
    monkeypatch.setattr(syscalls, "setns", lambda fd, kind, path: release.wait(10))
    netns = tmp_path / "ns"
    netns.write_text("")
    before = set(os.listdir("/proc/self/fd"))
    try:
        with pytest.raises(NetworkError, match=rf"entering network namespace {netns} took more than 0\.1s"):
            rtnl.Rtnl(netns, timeout=0.1)
    finally:
        release.set()
    # The abandoned thread closes what it opened once it is done: the namespace file and the late socket.
    thread = next(t for t in threading.enumerate() if t.name == "imod-netns")
    thread.join(10)
    assert not thread.is_alive()
    assert set(os.listdir("/proc/self/fd")) <= before
