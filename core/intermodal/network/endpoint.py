"""A container's endpoint on a bridge: a veth pair, its address, its default route.

The host end is named from a hash of (container, network), so it is unique,
fits IFNAMSIZ and can be found again for removal without any other state;
the container end is made directly inside the namespace as ethN.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from dataclasses import dataclass

from intermodal.errors import AlreadyExists, NetworkError
from intermodal.network import netlink


@dataclass(frozen=True)
class Link:
    """What `plug` needs to know about one endpoint."""

    host_ifname: str
    bridge: str
    address: str  # the container's IPv4 address
    prefixlen: int
    gateway: str | None  # default route via this address; None for no route out
    mtu: int = 1500
    mac: str | None = None
    address6: str | None = None  # dual stack: the IPv6 address, prefix and default route
    prefixlen6: int = 0
    gateway6: str | None = None


def host_ifname(prefix: str, container_id: str, network_id: str) -> str:
    digest = hashlib.sha256(f"{container_id}/{network_id}".encode()).hexdigest()
    return netlink.check_ifname(prefix + digest[: netlink.IFNAMSIZ - len(prefix)])


def mac_for(address: str) -> str:
    """Docker's scheme: 02:42 then the four address bytes; unique while the address is."""
    raw = ipaddress.IPv4Address(address).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in raw)


class Session:
    """The host's netlink socket and one namespace's, open for one attach or connect (use with `with`).

    Sockets are made once per command, not per operation; see rtnl.py for why
    this path speaks rtnetlink itself.
    """

    def __init__(self, netns: str | os.PathLike) -> None:
        from intermodal.network.rtnl import Rtnl

        self.netns = netns
        self.host = Rtnl()
        try:
            self.inside = Rtnl(netns)
        except BaseException:
            self.host.close()
            raise

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.host.close()
        self.inside.close()

    def bridge_index(self, bridge: str) -> int | None:
        return _call(lambda: self.host.link_index(bridge), "look up", bridge, None)

    def next_ifname(self) -> str:
        """The first free ethN inside the namespace."""
        names = set(_call(lambda: list(self.inside.link_names()), "list links", None, self.netns))
        for n in range(64):
            if f"eth{n}" not in names:
                return f"eth{n}"
        raise NetworkError(f"network namespace {os.fspath(self.netns)} has eth0..eth63 already; "
                           "disconnect a network first")

    def plug(self, link: Link, inner: str, bridge_index: int) -> None:
        """Make the veth pair with the container end *inner* inside the namespace, and configure it.

        One message makes the pair: the host end up and already in its
        bridge, the container end already named, sized and given its MAC
        inside the namespace (IFLA_NET_NS_FD), so it never appears in the
        host namespace. On any failure the pair is removed again.
        """
        from intermodal.network.rtnl import RtnlError

        fd = _open_netns(self.netns)
        try:
            _call(lambda: self.host.add_veth(link.host_ifname, inner, fd, mtu=link.mtu,
                                             peer_mac=link.mac or mac_for(link.address), master=bridge_index),
                  "create veth", link.host_ifname, None)
        finally:
            os.close(fd)
        try:
            _configure_inside(self.inside, self.netns, inner, link)
        except BaseException:
            try:
                self.host.delete_link(link.host_ifname)
            except RtnlError as err:
                if err.code not in netlink.GONE:
                    raise
            raise


def unplug(host_name: str) -> bool:
    """Delete the host end (the kernel removes its peer); an absent one is already removed."""
    from intermodal.network.rtnl import Rtnl, RtnlError

    with Rtnl() as host:
        try:
            host.delete_link(host_name)
        except RtnlError as err:
            if err.code in netlink.GONE:
                return False
            raise netlink._translate(err, "delete veth", host_name, None) from err
    return True


def setup_loopback(netns: str | os.PathLike) -> None:
    """`lo` up in *netns* (index 1 in every network namespace: loopback is registered first)."""
    from intermodal.network.rtnl import Rtnl

    with Rtnl(netns) as inside:
        _call(lambda: inside.set_up(1), "bring up", "lo", netns)


def set_default_route(netns: str | os.PathLike, ifname: str, gateway: str) -> None:
    """A default route via *gateway* on *ifname* inside *netns*, unless one exists already."""
    from intermodal.network.rtnl import Rtnl

    with Rtnl(netns) as inside:
        index = _call(lambda: inside.link_index(ifname), "look up", ifname, netns)
        if index is None:
            return
        try:
            _call(lambda: inside.add_default_route(gateway, index), f"add default route via {gateway} on",
                  ifname, netns)
        except AlreadyExists:
            pass


def _call(op, what: str, device: str | None, netns):
    from intermodal.network.rtnl import RtnlError

    try:
        return op()
    except RtnlError as err:
        raise netlink._translate(err, what, device, netns) from err


def _configure_inside(rtnl, netns, inner: str, link: Link) -> None:
    index = _call(lambda: rtnl.link_index(inner), "look up", inner, netns)
    if index is None:
        raise NetworkError(f"{inner} vanished from network namespace {os.fspath(netns)} right after it was made; "
                           "is something else managing it?")
    _call(lambda: rtnl.add_address(index, link.address, link.prefixlen),
          f"add address {link.address}/{link.prefixlen} to", inner, netns)
    if link.address6:
        _call(lambda: rtnl.add_address(index, link.address6, link.prefixlen6),
              f"add address {link.address6}/{link.prefixlen6} to", inner, netns)
    _call(lambda: rtnl.set_up(index), "bring up", inner, netns)
    _call(lambda: rtnl.set_up(1), "bring up", "lo", netns)
    if link.gateway:
        try:
            _call(lambda: rtnl.add_default_route(link.gateway, index),
                  f"add default route via {link.gateway} on", inner, netns)
        except AlreadyExists:
            pass  # the first network's route stays the default (Docker's order)
    if link.gateway6:
        try:
            _call(lambda: rtnl.add_default_route(link.gateway6, index),
                  f"add default route via {link.gateway6} on", inner, netns)
        except AlreadyExists:
            pass


def _open_netns(netns) -> int:
    try:
        return os.open(os.fspath(netns), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise NetworkError(f"cannot open network namespace {os.fspath(netns)}: {err.strerror}; "
                           "is the container still running?", err.errno) from err


