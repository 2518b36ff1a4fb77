"""Published ports: parse `-p`, pick ephemeral host ports, refuse taken ones before anything starts.

`parse` is pure. `resolve` turns parsed requests into concrete bindings:
it refuses a host port that another container of this engine publishes
(our DNAT rules hold no socket, so the store is the only record of them) or
that a host process has bound (checked by binding it ourselves), and picks
ephemeral ports by letting the kernel choose.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from intermodal.errors import Conflict, InvalidArgument

PROTOCOLS = ("tcp", "udp")
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


@dataclass(frozen=True)
class PortRequest:
    """One `-p` item after parsing; host_start == 0 means an ephemeral host port."""

    host_ip: str
    host_start: int
    host_end: int
    container_port: int
    proto: str


@dataclass(frozen=True)
class Binding:
    """A concrete published port: host_ip ("" = all addresses) host_port/proto -> container_port."""

    host_ip: str
    host_port: int
    container_port: int
    proto: str

    def to_json(self) -> dict:
        return {"HostIp": self.host_ip, "HostPort": str(self.host_port), "ContainerPort": self.container_port,
                "Protocol": self.proto}

    @classmethod
    def from_json(cls, d: dict) -> Binding:
        return cls(d["HostIp"], int(d["HostPort"]), int(d["ContainerPort"]), d["Protocol"])

    def key(self) -> str:
        return f"{self.container_port}/{self.proto}"

    def host_text(self) -> str:
        """0.0.0.0:8080, 127.0.0.1:8080 or [::1]:8080, as `docker port` prints it."""
        ip = self.host_ip or "0.0.0.0"
        return f"[{ip}]:{self.host_port}" if ":" in ip else f"{ip}:{self.host_port}"


def parse(spec: str) -> list[PortRequest]:
    """`[ip:][hostPort[-end]:]containerPort[-end][/proto]`, as `docker run -p` takes it."""
    text, _, proto = spec.strip().partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise InvalidArgument(f"port {spec!r}: protocol {proto!r} is not supported; use tcp or udp")
    host_ip, host_part, container_part = _split(text, spec)
    c_start, c_end = _range(container_part, spec, "container port")
    if c_start == 0:
        raise InvalidArgument(f"port {spec!r}: container port 0 is not a port; give 1-65535")
    if not host_part:
        return [PortRequest(host_ip, 0, 0, p, proto) for p in range(c_start, c_end + 1)]
    h_start, h_end = _range(host_part, spec, "host port")
    if c_start == c_end:  # one container port, a host range: any free port of it
        return [PortRequest(host_ip, h_start, h_end, c_start, proto)]
    if h_end - h_start != c_end - c_start:
        raise InvalidArgument(f"port {spec!r}: the host range and the container range differ in length; "
                              "give ranges of equal size or a single container port")
    return [PortRequest(host_ip, h_start + i, h_start + i, c_start + i, proto) for i in range(c_end - c_start + 1)]


def expose_all(exposed: Iterable[str]) -> list[PortRequest]:
    """`-P`: every EXPOSEd port ("80/tcp", "53/udp", "8080") on an ephemeral host port."""
    out: list[PortRequest] = []
    for item in exposed:
        out += parse(item)
    return out


def _split(text: str, spec: str) -> tuple[str, str, str]:
    if text.startswith("["):  # [::1]:8080:80
        raise InvalidArgument(f"port {spec!r}: IPv6 host addresses are not supported yet (a port published on "
                              "all addresses answers on the host's IPv6 addresses of dual-stack networks); "
                              "use an IPv4 address or none")
    parts = text.split(":")
    host_ip = parts.pop(0) if len(parts) == 3 else ""
    _check_ip(host_ip, spec)
    if len(parts) == 1:
        parts = ["", parts[0]]
    if len(parts) != 2 or not parts[1]:
        raise InvalidArgument(f"port {spec!r} is not [ip:][hostPort:]containerPort[/tcp|udp]")
    return host_ip, parts[0], parts[1]


def _check_ip(ip: str, spec: str) -> None:
    if not ip:
        return
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        raise InvalidArgument(f"port {spec!r}: {ip!r} is not an IP address") from None
    if addr.version != 4:
        raise InvalidArgument(f"port {spec!r}: IPv6 host addresses are not supported yet; use an IPv4 address")


def _range(text: str, spec: str, what: str) -> tuple[int, int]:
    m = _RANGE.match(text)
    if not m:
        raise InvalidArgument(f"port {spec!r}: {what} {text!r} is not a number or range such as 8000-8010")
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else start
    if not (0 <= start <= end <= 65535):
        raise InvalidArgument(f"port {spec!r}: {what} {text!r} is outside 1-65535 or runs backwards")
    return start, end


def overlaps(a: Binding, b: Binding) -> bool:
    """Two bindings collide: same port and protocol, and the same address or a wildcard on either side."""
    return (a.host_port == b.host_port and a.proto == b.proto
            and (a.host_ip in ("", "0.0.0.0") or b.host_ip in ("", "0.0.0.0") or a.host_ip == b.host_ip))


def resolve(requests: list[PortRequest], taken: Iterable[tuple[Binding, str]]) -> list[Binding]:
    """Concrete bindings for *requests*; *taken* is every (binding, owner) this engine publishes already.

    Raises Conflict naming the port and its holder, before anything is created.
    """
    held = list(taken)
    out: list[Binding] = []
    for req in requests:
        binding = _pick(req, held + [(b, "this container") for b in out])
        out.append(binding)
    return out


def _pick(req: PortRequest, held: list[tuple[Binding, str]]) -> Binding:
    if req.host_start == 0:
        for _ in range(64):  # the kernel's choice may collide with one of ours; bounded retries
            port = _free_port(req.host_ip, req.proto)
            candidate = Binding(req.host_ip, port, req.container_port, req.proto)
            if not _holder(candidate, held):
                return candidate
        raise Conflict("no free ephemeral host port found after 64 tries; free some ports and retry")
    last_error = ""
    for port in range(req.host_start, req.host_end + 1):
        candidate = Binding(req.host_ip, port, req.container_port, req.proto)
        holder = _holder(candidate, held)
        if holder:
            last_error = f"it is already published by {holder}"
            continue
        problem = bind_problem(req.host_ip, port, req.proto)
        if problem is None:
            return candidate
        last_error = problem
    where = f"{req.host_ip or '0.0.0.0'}:{req.host_start}"
    if req.host_end != req.host_start:
        where += f"-{req.host_end}"
    raise Conflict(f"cannot publish {where}/{req.proto}: {last_error}; choose another host port "
                   "or stop what uses it")


def _holder(candidate: Binding, held: list[tuple[Binding, str]]) -> str | None:
    for binding, owner in held:
        if overlaps(candidate, binding):
            return owner
    return None


def _family(host_ip: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host_ip else socket.AF_INET


def _socket(proto: str, host_ip: str = "") -> socket.socket:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(_family(host_ip), kind)
    # SO_REUSEADDR ignores TIME_WAIT leftovers but still fails on a live listener.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock


def bind_problem(host_ip: str, port: int, proto: str) -> str | None:
    """None if a host process could bind host_ip:port now, else why not."""
    with _socket(proto, host_ip) as sock:
        try:
            sock.bind((host_ip or "0.0.0.0", port))
        except OSError as err:
            return f"the host cannot bind it ({err.strerror}); another program listens there"
    return None


def _free_port(host_ip: str, proto: str) -> int:
    with _socket(proto, host_ip) as sock:
        try:
            sock.bind((host_ip or "0.0.0.0", 0))
        except OSError as err:
            raise Conflict(f"cannot get an ephemeral port on {host_ip or '0.0.0.0'}: {err.strerror}; "
                           "check the host address") from None
        return sock.getsockname()[1]


def hold(bindings: Iterable[Binding]) -> list[socket.socket]:
    """Bind every host port and keep the sockets, so no host program takes them while the container runs.

    Our DNAT rules hold no socket, and a program binding the port later would
    silently lose its local traffic to the container; podman's conmon holds
    the ports for the same reason. The container's monitor inherits these
    (``os.set_inheritable``) and keeps them open until the container stops.
    No SO_REUSEADDR here: without it nobody else can bind the port at all.
    Raises Conflict if one cannot be bound; the ones already bound are closed.
    """
    held: list[socket.socket] = []
    try:
        for b in bindings:
            kind = socket.SOCK_STREAM if b.proto == "tcp" else socket.SOCK_DGRAM
            sock = socket.socket(_family(b.host_ip), kind)
            held.append(sock)
            try:
                sock.bind((b.host_ip or "0.0.0.0", b.host_port))
            except OSError as err:
                raise Conflict(f"cannot hold {b.host_ip or '0.0.0.0'}:{b.host_port}/{b.proto}: {err.strerror}; "
                               "another program took it, choose another host port") from None
    except BaseException:
        for sock in held:
            sock.close()
        raise
    return held
