"""/etc/hosts and /etc/resolv.conf for containers, rendered from the network state.

Names resolve through /etc/hosts (no embedded DNS server: daemonless), so
the engine rewrites the hosts file of every container on a network when a
container joins or leaves it. Files are rewritten in place, not replaced by
rename: a bind-mounted file keeps its inode, and a rename would leave the
container looking at the old one.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from intermodal.errors import InvalidArgument

FALLBACK_DNS = ["8.8.8.8", "8.8.4.4"]  # Docker's choice when the host has only loopback resolvers
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


@dataclass(frozen=True)
class Peer:
    """An address and the names it answers to on one network."""

    address: str
    names: tuple[str, ...]


@dataclass
class HostsSpec:
    """What a container's /etc/hosts holds besides its neighbours."""

    hostname: str
    own: list[Peer] = field(default_factory=list)  # its own addresses and names on each network
    extra: list[tuple[str, str]] = field(default_factory=list)  # --add-host name:ip


def parse_add_host(item: str) -> tuple[str, str]:
    """`--add-host name:ip` (also `name=ip`, Docker 25+); the IP may be IPv6."""
    sep = "=" if "=" in item else ":"
    name, _, ip = item.partition(sep)
    ip = ip.strip("[]")
    if not _HOSTNAME.match(name):
        raise InvalidArgument(f"--add-host {item!r}: {name!r} is not a valid host name")
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise InvalidArgument(f"--add-host {item!r}: {ip!r} is not an IP address; use NAME:IP") from None
    return name, ip


def valid_hostname(name: str) -> bool:
    return bool(_HOSTNAME.match(name))


def render_hosts(spec: HostsSpec, peers: Iterable[Peer]) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters"]
    lines += [f"{ip}\t{name}" for name, ip in spec.extra]
    for own in spec.own:
        names = _unique([spec.hostname, *own.names])
        lines.append(f"{own.address}\t{' '.join(names)}")
    if not spec.own:
        lines.append(f"127.0.1.1\t{spec.hostname}")
    for peer in sorted(peers, key=lambda p: (ipaddress.ip_address(p.address).version, ipaddress.ip_address(p.address))):
        if peer.names:
            lines.append(f"{peer.address}\t{' '.join(_unique(peer.names))}")
    return "\n".join(lines) + "\n"


def render_resolv(dns: list[str] | None = None, search: list[str] | None = None, options: list[str] | None = None,
                  host_resolv: str = "") -> str:
    """Explicit --dns/--dns-search/--dns-option win; otherwise the host's, minus loopback resolvers
    (127.0.0.53 and friends are unreachable from the container's own namespace)."""
    host_ns, host_search, host_opts = _parse_resolv(host_resolv)
    servers = list(dns) if dns else [s for s in host_ns if not _loopback(s)] or FALLBACK_DNS
    for s in servers:
        try:
            ipaddress.ip_address(s)
        except ValueError:
            raise InvalidArgument(f"--dns {s!r} is not an IP address") from None
    lines = [f"nameserver {s}" for s in servers]
    search = search if search is not None else host_search
    if search:
        lines.append("search " + " ".join(search))
    options = options if options is not None else host_opts
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def write_in_place(path: str | os.PathLike, text: str, *, create: bool = True) -> None:
    """Overwrite the file's contents, keeping its inode (see the module note).

    The directory must exist: a container whose directory is gone needs no file. With
    ``create=False`` a missing file is FileNotFoundError: a neighbour's file is only ever rewritten,
    never made, or a container being removed could get a new file in the directory `rm` empties.
    """
    flags = os.O_WRONLY | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    fd = os.open(path, flags, 0o644)
    try:
        data = text.encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)


def host_resolv_conf() -> str:
    try:
        return Path("/etc/resolv.conf").read_text()
    except OSError:
        return ""


def nameservers(resolv: str) -> list[str]:
    """The `nameserver` addresses of a resolv.conf text, in order."""
    return _parse_resolv(resolv)[0]


def _parse_resolv(text: str) -> tuple[list[str], list[str], list[str]]:
    ns: list[str] = []
    search: list[str] = []
    opts: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) > 1:
            ns.append(words[1])
        elif words[0] in ("search", "domain"):
            search = words[1:]
        elif words[0] == "options":
            opts += words[1:]
    return ns, search, opts


def _loopback(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return True


def _unique(names: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for n in names:
        if n and n not in seen:
            seen.append(n)
    return seen
