"""IP address management: which addresses of a network's subnet are taken, on disk, under a lock.

The pure part (`Pool`, `validate`, `next_free`, `pick_subnet`) decides; the
`Ipam` class persists the allocations of one network in ``ipam.json`` beside
its record and holds the network's lock for every read-modify-write, so
parallel `imod run` commands never get the same address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from intermodal.errors import Conflict, InvalidArgument
from intermodal.locking import locked
from intermodal.network.store import read_volatile, write_volatile

IPv4Net = ipaddress.IPv4Network
IPv4 = ipaddress.IPv4Address

# Docker's order: 172.17-31/16, then /20s of 192.168/16. The default bridge takes the first free one.
DEFAULT_POOLS = [f"172.{n}.0.0/16" for n in range(17, 32)] + [f"192.168.{n}.0/20" for n in range(0, 256, 16)]


@dataclass(frozen=True)
class Pool:
    subnet: IPv4Net
    gateway: IPv4
    ip_range: IPv4Net  # where dynamic addresses come from; the subnet unless --ip-range

    def usable(self, address: IPv4) -> bool:
        """In the subnet, and neither its network nor broadcast address nor the gateway."""
        return (address in self.subnet and address not in (self.subnet.network_address, self.subnet.broadcast_address)
                and address != self.gateway)


def _net(text: str, what: str) -> IPv4Net:
    try:
        loose = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid {what} {text!r}: give an IPv4 CIDR such as 172.20.0.0/16") from None
    if not isinstance(loose, IPv4Net):
        raise InvalidArgument(f"{what} {text}: only IPv4 subnets are supported for now; give an IPv4 CIDR")
    if "/" not in text or ipaddress.ip_interface(text.strip()).ip != loose.network_address:
        raise InvalidArgument(f"{what} {text} is not a network address with a prefix; did you mean {loose}?")
    return loose


def _addr(text: str, what: str) -> IPv4:
    try:
        return IPv4(text)
    except ValueError:
        raise InvalidArgument(f"invalid {what} {text!r}: give an IPv4 address such as 172.20.0.5") from None


def validate6(subnet: str, gateway: str | None = None) -> Pool:
    """An IPv6 subnet (dual stack, `--ipv6 --subnet fd..::/64`): /64 up to /120, the gateway its first host."""
    try:
        net = ipaddress.ip_network(subnet.strip(), strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid IPv6 subnet {subnet!r}: give a CIDR such as fd00:1::/64") from None
    if not isinstance(net, ipaddress.IPv6Network):
        raise InvalidArgument(f"{subnet} is not an IPv6 subnet; give one such as fd00:1::/64")
    if str(net) != subnet.strip() and ipaddress.ip_interface(subnet.strip()).ip != net.network_address:
        raise InvalidArgument(f"subnet {subnet} is not a network address with a prefix; did you mean {net}?")
    if net.prefixlen > 120:
        raise InvalidArgument(f"IPv6 subnet {net} is too small; give /120 or wider (/64 is usual)")
    try:
        gw = ipaddress.IPv6Address(gateway) if gateway else net.network_address + 1
    except ValueError:
        raise InvalidArgument(f"invalid IPv6 gateway {gateway!r}: give an address inside {net}") from None
    if gw not in net or gw == net.network_address:
        raise InvalidArgument(f"gateway {gw} is not a usable address of subnet {net}; pick one inside it")
    return Pool(net, gw, net)  # type: ignore[arg-type]  # Pool's checks are family-neutral


def random_ula() -> str:
    """A /64 of a random ULA /48 (RFC 4193), as Docker picks for `--ipv6` without a subnet."""
    import os

    raw = b"\xfd" + os.urandom(5) + b"\x00\x00" + b"\x00" * 8
    return str(ipaddress.IPv6Network((raw, 64)))


def validate(subnet: str, gateway: str | None = None, ip_range: str | None = None) -> Pool:
    """Check a network's addressing as `docker network create` does; the gateway defaults to the first host."""
    net = _net(subnet, "subnet")
    if net.prefixlen > 30:
        raise InvalidArgument(f"subnet {net} is too small: it needs room for a gateway and a container (/30 or wider)")
    gw = _addr(gateway, "gateway") if gateway else net.network_address + 1
    if gw not in net or gw in (net.network_address, net.broadcast_address):
        raise InvalidArgument(f"gateway {gw} is not a usable address of subnet {net}; pick one inside it")
    rng = _net(ip_range, "ip-range") if ip_range else net
    if not rng.subnet_of(net):
        raise InvalidArgument(f"ip-range {rng} is not inside subnet {net}; give a range within the subnet")
    return Pool(net, gw, rng)


def next_free(pool: Pool, used: Iterable[str], after: str | None = None) -> IPv4 | None:
    """The first usable, unused address of the ip-range after *after* (wrapping), or None if it is full.

    Continuing after the last one handed out, rather than taking the lowest,
    keeps a just-released address out of use for a while, so stale ARP
    entries of a removed container do not catch the next one's traffic.
    """
    make = type(pool.subnet.network_address)  # IPv4Address or IPv6Address
    taken = {ipaddress.ip_address(u) for u in used}
    first, last = int(pool.ip_range.network_address), int(pool.ip_range.broadcast_address)
    start = int(make(after)) + 1 if after and ipaddress.ip_address(after) in pool.ip_range else first
    span = last - first + 1
    # Bounded by what is taken: at most len(taken) + 3 candidates fail (network, broadcast, gateway).
    for step in range(min(span, len(taken) + 4)):
        candidate = make(first + (start - first + step) % span)
        if pool.usable(candidate) and candidate not in taken:
            return candidate
    return None


def pick_subnet(candidates: Iterable[str], taken: Iterable[IPv4Net]) -> IPv4Net | None:
    """The first candidate overlapping neither a host route nor another network."""
    taken = list(taken)
    for text in candidates:
        net = ipaddress.ip_network(text)
        if not any(net.overlaps(t) for t in taken):
            return net
    return None


class Ipam:
    """The allocations of one network: ``{"allocated": {address: owner}, "last": address}``."""

    def __init__(self, state: Path, lock: Path, pool: Pool, network: str) -> None:
        self.state, self.lock, self.pool, self.network = state, lock, pool, network

    def allocate(self, owner: str, requested: str | None = None) -> str:
        """An address for *owner*: *requested* if given and free, else the next free one.

        Raises InvalidArgument (requested outside the subnet), Conflict (taken or the network is full).
        """
        with locked(self.lock):
            data = self._read()
            allocated: dict[str, str] = data["allocated"]
            if requested is not None:
                address = self._check_static(requested, allocated, owner)
            else:
                found = next_free(self.pool, allocated, data.get("last"))
                if found is None:
                    raise Conflict(f"network {self.network} has no free address left in {self.pool.ip_range}; "
                                   "remove containers or create a network with a larger subnet")
                address = str(found)
                data["last"] = address
            allocated[address] = owner
            write_volatile(self.state, data)
            return address

    def release(self, address: str, owner: str | None = None) -> bool:
        """Return *address* to the pool (only if *owner* holds it, when given). True if it was held."""
        with locked(self.lock):
            data = self._read()
            holder = data["allocated"].get(address)
            if holder is None or (owner is not None and holder != owner):
                return False
            del data["allocated"][address]
            write_volatile(self.state, data)
            return True

    def allocated(self) -> dict[str, str]:
        with locked(self.lock, shared=True):
            return dict(self._read()["allocated"])

    def _check_static(self, requested: str, allocated: dict[str, str], owner: str) -> str:
        if self.pool.subnet.version == 6:
            try:
                address = ipaddress.IPv6Address(requested)
            except ValueError:
                raise InvalidArgument(f"invalid IPv6 address {requested!r}") from None
        else:
            address = _addr(requested, "address")
        if not self.pool.usable(address):
            raise InvalidArgument(f"address {address} cannot be used on network {self.network}: it must be inside "
                                  f"{self.pool.subnet} and not its network, broadcast or gateway ({self.pool.gateway})")
        holder = allocated.get(str(address))
        if holder is not None and holder != owner:
            raise Conflict(f"address {address} on network {self.network} is already in use by {holder[:12]}; "
                           "pick another --ip or leave it out for a free one")
        return str(address)

    def _read(self) -> dict:
        data = read_volatile(self.state) or {}  # none yet, or lost with the runtime state
        data.setdefault("allocated", {})
        return data
