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

from intermodal.errors import NetworkError
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


def host_ifname(prefix: str, container_id: str, network_id: str) -> str:
    digest = hashlib.sha256(f"{container_id}/{network_id}".encode()).hexdigest()
    return netlink.check_ifname(prefix + digest[: netlink.IFNAMSIZ - len(prefix)])


def mac_for(address: str) -> str:
    """Docker's scheme: 02:42 then the four address bytes; unique while the address is."""
    raw = ipaddress.IPv4Address(address).packed
    return "02:42:" + ":".join(f"{b:02x}" for b in raw)


def plug(netns: str | os.PathLike, link: Link) -> str:
    """Make the veth pair, the container end inside *netns*; returns the container's interface name.

    On any failure the pair is removed again: nothing half-made stays behind.
    """
    with netlink.iproute() as host, netlink.iproute(netns) as inside:
        bridge_index = netlink.link_index(host, link.bridge)
        if bridge_index is None:
            raise NetworkError(f"bridge {link.bridge} is missing; run `imod network inspect` to recreate it")
        inner = _next_ifname(inside, netns)
        fd = _open_netns(netns)
        try:
            peer = {"ifname": inner, "net_ns_fd": fd, "mtu": link.mtu, "address": link.mac or mac_for(link.address)}
            netlink.call(lambda: host.link("add", ifname=link.host_ifname, kind="veth", mtu=link.mtu, peer=peer),
                         what="create veth", device=link.host_ifname, netns=None)
        finally:
            os.close(fd)
        try:
            index = netlink.link_index(host, link.host_ifname)
            netlink.call(lambda: host.link("set", index=index, master=bridge_index, state="up"),
                         what=f"attach to bridge {link.bridge}", device=link.host_ifname)
            _configure_inside(inside, netns, inner, link)
        except BaseException:
            netlink.delete(lambda: host.link("del", ifname=link.host_ifname), what="delete veth",
                           device=link.host_ifname)
            raise
    return inner


def unplug(host_name: str) -> bool:
    """Delete the host end (the kernel removes its peer); an absent one is already removed."""
    with netlink.iproute() as host:
        return netlink.delete(lambda: host.link("del", ifname=host_name), what="delete veth", device=host_name)


def _configure_inside(ipr, netns, inner: str, link: Link) -> None:
    index = netlink.link_index(ipr, inner, netns=netns)
    lo = netlink.link_index(ipr, "lo", netns=netns)
    netlink.call(lambda: ipr.addr("add", index=index, address=link.address, prefixlen=link.prefixlen),
                 what=f"add address {link.address}/{link.prefixlen} to", device=inner, netns=netns)
    netlink.call(lambda: ipr.link("set", index=index, state="up"), what="bring up", device=inner, netns=netns)
    if lo is not None:
        netlink.call(lambda: ipr.link("set", index=lo, state="up"), what="bring up", device="lo", netns=netns)
    if link.gateway and not _has_default_route(ipr, netns):
        netlink.call(lambda: ipr.route("add", dst="default", gateway=link.gateway, oif=index),
                     what=f"add default route via {link.gateway} on", device=inner, netns=netns)


def _has_default_route(ipr, netns) -> bool:
    routes = netlink.dump(lambda: ipr.route("dump", family=2, table=254), what="list routes", netns=netns)
    return any(not r.get("dst") and r.get("dst_len", 0) == 0 for r in routes)


def _next_ifname(ipr, netns) -> str:
    names = set(netlink.link_names(ipr, netns=netns))
    for n in range(64):
        if f"eth{n}" not in names:
            return f"eth{n}"
    raise NetworkError(f"network namespace {os.fspath(netns)} has eth0..eth63 already; disconnect a network first")


def _open_netns(netns) -> int:
    try:
        return os.open(os.fspath(netns), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise NetworkError(f"cannot open network namespace {os.fspath(netns)}: {err.strerror}; "
                           "is the container still running?", err.errno) from err


