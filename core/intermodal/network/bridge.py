"""The Linux bridge behind a network: made on first use, idempotently, removed exactly."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from intermodal.errors import AlreadyExists, NetworkError
from intermodal.network import netlink

PROC_IPV4 = Path("/proc/sys/net/ipv4")
PROC_IPV6 = Path("/proc/sys/net/ipv6")
IFA_F_NODAD = 0x02


def ensure_bridge(name: str, gateway: str, prefixlen: int, *, mtu: int = 1500, gateway6: str | None = None,
                  prefixlen6: int = 0) -> int:
    """Make bridge *name* with the gateway address, up; nothing changes if it exists. Returns its index."""
    netlink.check_ifname(name)
    with netlink.iproute() as ipr:
        index = netlink.link_index(ipr, name)
        if index is not None:
            _check_is_bridge(ipr, name)
        if index is None:
            try:
                netlink.call(lambda: ipr.link("add", ifname=name, kind="bridge", mtu=mtu),
                             what="create bridge", device=name)
            except AlreadyExists:
                pass  # a parallel command made it between our look-up and add
            index = netlink.link_index(ipr, name)
            if index is None:
                raise NetworkError(f"bridge {name} vanished right after it was made; retry the command")
        if not _has_address(ipr, index, gateway):
            try:
                netlink.call(lambda: ipr.addr("add", index=index, address=gateway, prefixlen=prefixlen),
                             what=f"add address {gateway}/{prefixlen} to", device=name)
            except AlreadyExists:
                pass
        # 127.0.0.1:port published ports are DNATed in OUTPUT with source
        # 127.0.0.1; the kernel refuses to route a loopback source out of a
        # non-loopback device unless route_localnet is set on that device
        # (net/ipv4/route.c, ip_route_output_key_hash_rcu). Set it on our
        # bridge only, not host-wide; masquerade rewrites the source later.
        _sysctl(PROC_IPV4 / "conf" / name / "route_localnet", "1")
        if gateway6:
            _add_address6(ipr, index, name, gateway6, prefixlen6)
        netlink.call(lambda: ipr.link("set", index=index, state="up"), what="bring up", device=name)
    return index


def remove_bridge(name: str) -> bool:
    """Delete the bridge (its ports go with their veths); an absent one is already removed."""
    with netlink.iproute() as ipr:
        return netlink.delete(lambda: ipr.link("del", ifname=name), what="delete bridge", device=name)


def check_adoptable(name: str) -> None:
    """Refuse a bridge name that is some other interface, or a bridge with ports: we would take it over
    and delete it with the network (think `eth0`, or another engine's bridge)."""
    netlink.check_ifname(name)
    with netlink.iproute() as ipr:
        index = netlink.link_index(ipr, name)
        if index is None:
            return
        _check_is_bridge(ipr, name)
        ports = [link.get("ifname") for link in netlink.dump(lambda: ipr.link("dump"), what="list links")
                 if link.get("master") == index]
        if ports:
            raise AlreadyExists(f"bridge {name} exists and has ports ({', '.join(ports[:3])}); it belongs to "
                                "something else, pick another com.docker.network.bridge.name")


def _check_is_bridge(ipr, name: str) -> None:
    (link,) = netlink.call(lambda: ipr.link("get", ifname=name), what="look up", device=name)
    kind = link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
    if kind != "bridge":
        raise AlreadyExists(f"interface {name} exists and is not a bridge ({kind or 'a device'}); "
                            "pick another com.docker.network.bridge.name")


def bridge_exists(name: str) -> bool:
    """Asked on every container start, so without pyroute2 (see rtnl.py)."""
    from intermodal.network.rtnl import Rtnl, RtnlError

    with Rtnl() as rtnl:
        try:
            return rtnl.link_index(name) is not None
        except RtnlError as err:
            raise netlink._translate(err, "look up", name, None) from err


def enable_forwarding() -> None:
    """Containers' traffic is routed by the host: NAT out and published ports from other hosts need it."""
    path = PROC_IPV4 / "ip_forward"
    if path.read_text().strip() != "1":
        _sysctl(path, "1")


def host_routes(family: int = 2) -> list[ipaddress.IPv4Network]:
    """Destinations (IPv4, or IPv6 with family 10) the host routes now, except default, to keep new subnets
    clear of them."""
    with netlink.iproute() as ipr:
        routes = netlink.dump(lambda: ipr.route("dump", family=family), what="list routes")
    nets = []
    for route in routes:
        dst, plen = route.get("dst"), route.get("dst_len", 0)
        if dst and plen:
            nets.append(ipaddress.ip_network(f"{dst}/{plen}", strict=False))
    return nets


def _add_address6(ipr, index: int, name: str, gateway6: str, prefixlen6: int) -> None:
    """The IPv6 gateway on the bridge, without duplicate address detection (it would be tentative,
    unusable, for a second or two; the subnet is ours)."""
    _sysctl(PROC_IPV6 / "conf" / name / "disable_ipv6", "0")
    addrs = netlink.dump(lambda: ipr.addr("dump", index=index, family=10), what="list addresses")
    if any(a.get("address") == gateway6 for a in addrs):
        return
    try:
        netlink.call(lambda: ipr.addr("add", index=index, address=gateway6, prefixlen=prefixlen6, family=10,
                                      flags=IFA_F_NODAD), what=f"add address {gateway6}/{prefixlen6} to", device=name)
    except AlreadyExists:
        pass


def enable_forwarding6() -> None:
    """Routing for dual-stack networks. Host-wide, as Docker does with --ipv6: with forwarding on, the host
    ignores router advertisements on interfaces with accept_ra=1 (static routes are unaffected)."""
    path = PROC_IPV6 / "conf" / "all" / "forwarding"
    if path.read_text().strip() != "1":
        _sysctl(path, "1")


def _has_address(ipr, index: int, address: str) -> bool:
    addrs = netlink.dump(lambda: ipr.addr("dump", index=index, family=2), what="list addresses")
    return any(a.get("address") == address for a in addrs)


def _sysctl(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as err:
        raise NetworkError(f"cannot set {path} to {value}: {err.strerror}; networking needs root", err.errno) from err
