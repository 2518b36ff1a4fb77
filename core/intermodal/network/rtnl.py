"""A minimal rtnetlink client (socket + struct) for the per-container hot path.

`imod run` with a bridge network makes one veth pair, addresses it, brings
it up and adds a default route: a handful of netlink messages. pyroute2
stays the tool for everything else (bridges, route dumps, adoption checks),
but importing it costs 110-160 ms on this machine kind (it pulls in
asyncio, multiprocessing, ssl and its whole message catalogue, even for a
single submodule), more than the whole rest of `imod run`. The messages
here are the ones `ip link/addr/route` send (see rtnetlink(7)); errors go
through `netlink._translate`, the one errno mapping.

A socket belongs to the network namespace it was created in, so `Rtnl(netns)`
creates its socket in a short-lived thread that has joined that namespace
(setns(CLONE_NEWNET) is per thread); the caller's own namespace never changes.

Every wait has a deadline (TIMEOUT): the answers of one request, and the thread
that joins a namespace. The kernel handles a request inside send() (rtnetlink
takes rtnl_lock in the sender's context), so the answer is normally queued
before we wait for it; the deadline catches an answer that never comes (a
request the kernel dropped, a namespace torn down under us) instead of hanging
`imod run` forever. send() itself waiting for rtnl_lock cannot be bounded from
user space.
"""

from __future__ import annotations

import _socket  # not `socket`: its Python layer imports selectors and more, unused here
import errno as E
import os
import struct
import threading
import time
from collections.abc import Iterator

from intermodal.errors import NetworkError, NotFound

NETLINK_ROUTE = 0
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 1, 2, 4
NLM_F_DUMP, NLM_F_EXCL, NLM_F_CREATE = 0x300, 0x200, 0x400
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_NEWROUTE = 20, 24
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 4, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_GATEWAY, RTA_OIF = 5, 4
NLA_F_NESTED = 0x8000
IFF_UP = 1
AF_UNSPEC, AF_INET, AF_INET6 = 0, 2, 10
IFA_F_NODAD = 0x02  # an address we hand out is unique by IPAM: no 1-2 s of duplicate detection first
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
CLONE_NEWNET = 0x40000000

# Seconds one request may wait for its answer, and a namespace join for its thread: generous, a busy host
# (many namespaces torn down at once hold rtnl_lock) answers late but answers.
TIMEOUT = 30.0

_HDR = struct.Struct("=IHHII")  # nlmsghdr
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg
_NLA = struct.Struct("=HH")


class RtnlError(OSError):
    """A kernel refusal; `.code` is the errno, as pyroute2's NetlinkError has it (for netlink._translate)."""

    @property
    def code(self) -> int:
        return self.errno or E.EIO


def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, value: bytes) -> bytes:
    raw = _NLA.pack(_NLA.size + len(value), kind) + value
    return raw + b"\0" * (_align(len(raw)) - len(raw))


def nested(kind: int, *parts: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(parts))


def _name(name: str) -> bytes:
    return name.encode() + b"\0"


def _u32(value: int) -> bytes:
    return struct.pack("=I", value)


def _mac(mac: str) -> bytes:
    return bytes(int(b, 16) for b in mac.split(":"))


def parse_attrs(data: bytes) -> dict[int, bytes]:
    """Top-level attributes of a message body (the last of a repeated kind wins)."""
    out, pos = {}, 0
    while pos + _NLA.size <= len(data):
        length, kind = _NLA.unpack_from(data, pos)
        if length < _NLA.size:
            break
        out[kind & ~NLA_F_NESTED] = data[pos + _NLA.size:pos + length]
        pos += _align(length)
    return out


class Rtnl:
    """One NETLINK_ROUTE socket in the host namespace or in the namespace file *netns*; use with `with`."""

    def __init__(self, netns: str | os.PathLike | None = None, *, timeout: float = TIMEOUT,
                 sock: _socket.socket | None = None) -> None:
        """*sock*: an open socket to speak through instead of a new one (tests)."""
        self.netns = netns
        self.timeout = timeout
        if sock is None:
            sock = _socket_in(netns, timeout) if netns is not None else _new_socket()
        self.sock = sock
        self.seq = 0

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    # -- requests -------------------------------------------------------------------------------

    def request(self, kind: int, flags: int, body: bytes, what: str = "") -> list[tuple[int, bytes]]:
        """Send one message and collect the answer: (type, body) of each reply until ACK or DONE.

        *what* says what the request does, for the error if no answer comes within ``timeout`` seconds.
        """
        self.seq += 1
        msg = _HDR.pack(_HDR.size + len(body), kind, flags | NLM_F_REQUEST | NLM_F_ACK, self.seq, 0) + body
        self.sock.send(msg)
        until = time.monotonic() + self.timeout
        out: list[tuple[int, bytes]] = []
        while True:
            data = self._recv(until, what or _NAMES.get(kind, f"netlink message {kind}"))
            pos = 0
            while pos + _HDR.size <= len(data):
                length, mtype, _, seq, _ = _HDR.unpack_from(data, pos)
                if length < _HDR.size:
                    raise NetworkError("the kernel sent a malformed netlink message; retry the command")
                payload = data[pos + _HDR.size:pos + length]
                pos += _align(length)
                if seq != self.seq:
                    continue  # a late answer to an earlier request
                if mtype == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", payload)
                    if code:
                        raise RtnlError(-code, os.strerror(-code))
                    return out
                if mtype == NLMSG_DONE:
                    return out
                out.append((mtype, payload))  # a get's answer is followed by its ACK, a dump's by DONE

    def _recv(self, until: float, what: str) -> bytes:
        """One datagram of the answer, waiting until *until* at most (a deadline for the whole answer,
        however many datagrams or stale answers to earlier requests come first)."""
        left = until - time.monotonic()
        if left > 0:
            self.sock.settimeout(left)
            try:
                return self.sock.recv(65536)
            except TimeoutError:
                pass
            except OSError as err:  # ENOBUFS: the kernel dropped answers, our receive buffer was full
                raise NetworkError(f"{what}{self._where()}: reading the kernel's answer failed: {err.strerror}; "
                                   "retry the command", err.errno) from None
        raise NetworkError(f"{what}{self._where()}: the kernel did not answer within {self.timeout:g}s; the host "
                           "may be overloaded or the namespace going away: retry, and check `dmesg` if it persists",
                           E.ETIMEDOUT)

    def _where(self) -> str:
        return f" in network namespace {os.fspath(self.netns)}" if self.netns is not None else ""

    def link_index(self, name: str) -> int | None:
        body = _IFINFO.pack(AF_UNSPEC, 0, 0, 0, 0) + attr(IFLA_IFNAME, _name(name))
        try:
            replies = self.request(RTM_GETLINK, 0, body, f"look up link {name}")
        except RtnlError as err:
            if err.code in (E.ENODEV, E.ENOENT):
                return None
            raise
        for _, payload in replies:
            return _IFINFO.unpack_from(payload)[2]
        return None

    def link_names(self) -> Iterator[str]:
        for _, payload in self.request(RTM_GETLINK, NLM_F_DUMP, _IFINFO.pack(AF_UNSPEC, 0, 0, 0, 0), "list links"):
            name = parse_attrs(payload[_IFINFO.size:]).get(IFLA_IFNAME)
            if name:
                yield name.rstrip(b"\0").decode()

    def add_veth(self, name: str, peer: str, peer_netns_fd: int, *, mtu: int, peer_mac: str | None,
                 master: int | None) -> None:
        """Both ends in one message: *name* here, up, in bridge *master*; *peer* in the namespace fd, down
        (veth cannot open the peer before the pair is linked: ENOTCONN, drivers/net/veth.c veth_open)."""
        peer_body = _IFINFO.pack(AF_UNSPEC, 0, 0, 0, 0) + attr(IFLA_IFNAME, _name(peer)) \
            + attr(IFLA_MTU, _u32(mtu)) + attr(IFLA_NET_NS_FD, _u32(peer_netns_fd))
        if peer_mac:
            peer_body += attr(IFLA_ADDRESS, _mac(peer_mac))
        info = nested(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"veth"),
                      nested(IFLA_INFO_DATA, nested(VETH_INFO_PEER, peer_body)))
        body = _IFINFO.pack(AF_UNSPEC, 0, 0, IFF_UP, IFF_UP) + attr(IFLA_IFNAME, _name(name)) \
            + attr(IFLA_MTU, _u32(mtu)) + info
        if master is not None:
            body += attr(IFLA_MASTER, _u32(master))
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body, f"create veth {name} (peer {peer})")

    def set_up(self, index: int) -> None:
        self.request(RTM_NEWLINK, 0, _IFINFO.pack(AF_UNSPEC, 0, index, IFF_UP, IFF_UP), f"bring up link {index}")

    def delete_link(self, name: str) -> None:
        self.request(RTM_DELLINK, 0, _IFINFO.pack(AF_UNSPEC, 0, 0, 0, 0) + attr(IFLA_IFNAME, _name(name)),
                     f"delete link {name}")

    def add_address(self, index: int, address: str, prefixlen: int) -> None:
        family, raw = _family(address)
        if family == AF_INET6:  # IFA_LOCAL is IPv4's; an IPv6 address is IFA_ADDRESS alone
            body = _IFADDR.pack(AF_INET6, prefixlen, IFA_F_NODAD, RT_SCOPE_UNIVERSE, index) + attr(IFA_ADDRESS, raw)
        else:
            body = _IFADDR.pack(AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index) + attr(IFA_LOCAL, raw) \
                + attr(IFA_ADDRESS, raw)
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, f"add address {address}/{prefixlen} to link {index}")

    def add_default_route(self, gateway: str, index: int) -> None:
        family, raw = _family(gateway)
        body = _RTMSG.pack(family, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0) \
            + attr(RTA_GATEWAY, raw) + attr(RTA_OIF, _u32(index))
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body, f"add default route via {gateway}")


_NAMES = {RTM_NEWLINK: "create or change a link", RTM_DELLINK: "delete a link", RTM_GETLINK: "look up links",
          RTM_NEWADDR: "add an address", RTM_NEWROUTE: "add a route"}


def _family(address: str) -> tuple[int, bytes]:
    if ":" in address:
        return AF_INET6, _socket.inet_pton(_socket.AF_INET6, address)
    return AF_INET, _socket.inet_aton(address)


def _new_socket() -> _socket.socket:
    sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    try:
        sock.bind((0, 0))
    except BaseException:
        sock.close()
        raise
    return sock


def _socket_in(netns: str | os.PathLike, timeout: float = TIMEOUT) -> _socket.socket:
    """A netlink socket of namespace *netns*, made by a thread that joined it (ours stays where it is);
    the thread has *timeout* seconds."""
    path = os.fspath(netns)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"network namespace {path} does not exist; is the container still running?") from None
    except OSError as err:
        raise NetworkError(f"cannot open network namespace {path}: {err.strerror}", err.errno) from err
    result: list[_socket.socket | BaseException] = []
    lock = threading.Lock()
    abandoned: list[bool] = []  # set when the caller stopped waiting: the thread then cleans up alone

    def work() -> None:
        from intermodal.runtime import syscalls

        outcome: _socket.socket | BaseException
        try:
            syscalls.setns(fd, CLONE_NEWNET, path)
            outcome = _new_socket()
        except BaseException as err:  # handed to the caller
            outcome = err
        with lock:
            if not abandoned:
                result.append(outcome)
                return
        # Closed only now: while setns may still use it, the number must not go to another file.
        os.close(fd)
        if isinstance(outcome, _socket.socket):
            outcome.close()

    # Daemon: a thread stuck in the kernel must not keep the process alive.
    thread = threading.Thread(target=work, name="imod-netns", daemon=True)
    try:
        thread.start()
    except BaseException:
        os.close(fd)
        raise
    thread.join(timeout)
    with lock:
        if not result:
            abandoned.append(True)
            raise NetworkError(f"entering network namespace {path} took more than {timeout:g}s; the host may be "
                               "overloaded or the namespace going away: retry, and check `dmesg` if it persists",
                               E.ETIMEDOUT)
    os.close(fd)
    if isinstance(result[0], BaseException):
        raise NetworkError(f"cannot enter network namespace {path}: {result[0]}; is it a network namespace?")
    return result[0]
