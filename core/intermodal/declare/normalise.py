"""Declared values to the engine's canonical typed form, by option type.

Containers reuse the engine's own normalisers (`ContainerSpec.build`, the
parse_* functions of `containers/spec.py`, `network/ports.py`): a value
declared here becomes exactly what the engine stores, so the two compare
equal. This module only bridges the front ends' names and shapes
(community.docker's) to those, and adds what the engine has no parser for
(log options, IPs and CIDRs, port matching).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from typing import Any

from intermodal.errors import InvalidArgument

# -- scalars --------------------------------------------------------------------------------------


def string_map(value: Mapping[str, Any] | Iterable[str] | None, what: str, *, strict_bools: bool = False
               ) -> dict[str, str]:
    """A dict (or KEY=VALUE list) with string values. YAML booleans are refused when *strict_bools*:
    `true` would silently become "True" where the user meant "true"."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        pairs = []
        for item in value:
            key, eq, val = str(item).partition("=")
            if not eq:
                raise InvalidArgument(f"{what}: {item!r} is not KEY=VALUE")
            pairs.append((key, val))
        value = dict(pairs)
    out = {}
    for key, val in value.items():
        if isinstance(val, bool) and strict_bools:
            raise InvalidArgument(f"{what}: the value of {key} is the boolean {val}; quote it "
                                  f"(\"{str(val).lower()}\") so the intended text is stored")
        out[str(key)] = "" if val is None else str(val)
    return out


def ip(value: str) -> str:
    """Canonical address text (IPv6 compressed, lower case)."""
    try:
        return str(ipaddress.ip_address(str(value).strip().strip("[]")))
    except ValueError:
        raise InvalidArgument(f"invalid IP address {value!r}: give an IPv4 or IPv6 address") from None


def cidr(value: str) -> str:
    """Canonical network text; host bits are dropped like the engine does (10.0.0.1/24 -> 10.0.0.0/24)."""
    try:
        return str(ipaddress.ip_network(str(value).strip(), strict=False))
    except ValueError:
        raise InvalidArgument(f"invalid subnet {value!r}: give a CIDR such as 172.28.0.0/16") from None


def command(value: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """argv; a string is split like a shell. `[]` means "the image's CMD", as unset does."""
    from intermodal.containers.spec import parse_command

    if value is None:
        return None
    argv = parse_command(value)
    return argv or None


def entrypoint(value: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """argv; a string is split like a shell (community.docker); "" or [] clears the image's ENTRYPOINT."""
    from intermodal.containers.spec import parse_command

    if value is None:
        return None
    return parse_command(value)


def log_options(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """max-size and max-file, values as text first (YAML `max-file: 1` is the engine's "1")."""
    from intermodal.containers.spec import parse_size

    opts = string_map(value, "log_options")
    unknown = sorted(set(opts) - {"max-size", "max-file"})
    if unknown:
        raise InvalidArgument(f"log_options: {', '.join(unknown)} not supported; the engine's log takes "
                              "max-size and max-file")
    out: dict[str, Any] = {}
    if "max-size" in opts:
        out["log_max_size"] = parse_size(opts["max-size"])
    if "max-file" in opts:
        try:
            out["log_max_file"] = int(opts["max-file"])
        except ValueError:
            raise InvalidArgument(f"log_options: max-file {opts['max-file']!r} is not a whole number") from None
    return out


def healthcheck(value: Mapping[str, Any] | None) -> Any:
    """community.docker's healthcheck dict to the engine's `Healthcheck` (durations in ns)."""
    from intermodal.containers.spec import Healthcheck, parse_duration

    if value is None:
        return None
    test = value.get("test")
    if test is None:
        argv = None
    elif isinstance(test, str):
        argv = ("CMD-SHELL", test)
    else:
        items = tuple(str(t) for t in test)
        if items[:1] == ("NONE",):
            argv = ("NONE",)
        elif items[:1] in (("CMD",), ("CMD-SHELL",)):
            argv = items
        else:
            argv = ("CMD", *items)
    durations = {k: parse_duration(value[k]) if value.get(k) is not None else None
                 for k in ("interval", "timeout", "start_period")}
    retries = int(value["retries"]) if value.get("retries") is not None else None
    unknown = sorted(set(value) - {"test", "interval", "timeout", "start_period", "retries"})
    if unknown:
        raise InvalidArgument(f"healthcheck: unknown key(s) {', '.join(unknown)}; use test, interval, timeout, "
                              "start_period, retries")
    return Healthcheck(argv, durations["interval"], durations["timeout"], durations["start_period"], retries)


def restart(policy: str | None, retries: int | None) -> Any:
    """restart_policy + restart_retries; the count matters only for on-failure."""
    from intermodal.containers.restart import RestartPolicy
    from intermodal.containers.spec import parse_restart

    if policy is None:
        return None
    base = parse_restart(policy)
    if base.name == "on-failure" and retries is not None:
        return RestartPolicy("on-failure", int(retries))
    return base


# -- mounts ------------------------------------------------------------------------------------------


def _clean_path(path: str) -> str:
    """`/srv//data/` -> `/srv/data`; relative host paths become absolute."""
    return os.path.normpath(os.path.abspath(path)) if path else path


def mounts(volumes: Iterable[str] | None, mount_dicts: Iterable[Mapping[str, Any]] | None,
           tmpfs: Iterable[str] | None) -> tuple[Any, ...] | None:
    """The three ways of declaring mounts, as the engine's `Mount` values; None when none was declared."""
    from intermodal.containers.spec import Mount, parse_tmpfs, parse_volume

    if volumes is None and mount_dicts is None and tmpfs is None:
        return None
    out = []
    for text in volumes or ():
        m = parse_volume(text)
        out.append(Mount(m.type, os.path.normpath(m.target),
                         _clean_path(m.source) if m.type == "bind" else m.source, m.readonly, m.options))
    for d in mount_dicts or ():
        out.append(_mount_dict(d))
    for text in tmpfs or ():
        m = parse_tmpfs(text)
        out.append(Mount(m.type, os.path.normpath(m.target), "", m.readonly, m.options))
    return tuple(out)


def _mount_dict(d: Mapping[str, Any]) -> Any:
    from intermodal.containers.spec import MOUNT_TYPES, Mount, parse_size

    kind = d.get("type") or "volume"
    target = d.get("target")
    if kind not in MOUNT_TYPES:
        raise InvalidArgument(f"mounts: unknown type {kind!r}; use {', '.join(MOUNT_TYPES)}")
    if not target or not str(target).startswith("/"):
        raise InvalidArgument(f"mounts: {dict(d)!r} needs an absolute target (the container path)")
    options: list[str] = []
    if d.get("propagation"):
        options.append(str(d["propagation"]))
    if d.get("tmpfs_size") is not None:
        options.append(f"size={parse_size(d['tmpfs_size'])}")
    if d.get("tmpfs_mode") is not None:
        options.append(f"mode={d['tmpfs_mode']}")
    if d.get("no_copy"):
        options.append("nocopy")
    source = str(d.get("source") or "")
    if kind == "bind":
        source = _clean_path(source)
    if kind == "bind" and not source:
        raise InvalidArgument(f"mounts: the bind mount at {target} has no source; give the host path")
    return Mount(kind, os.path.normpath(target), source, bool(d.get("read_only")), tuple(options))


def mount_set(value: Iterable[Any] | None) -> frozenset[Any]:
    """Mounts compare as a set: their order does not change what the container sees."""
    return frozenset(value or ())


# -- ports ----------------------------------------------------------------------------------------------


def ports(value: Iterable[str | int] | None) -> frozenset[tuple[str, int, int, int, str]] | None:
    """Published ports as a set of (host_ip, host_start, host_end, container_port, proto) requests.

    host_ip "" means every address ("0.0.0.0" and "::" are written to mean the same); host_start 0
    means "any host port" (the user gave none), which is not "host port 0". One container port may
    be published at several host addresses: each is its own element.
    """
    from intermodal.network.ports import parse

    if value is None:
        return None
    out = set()
    for item in value:
        for req in parse(str(item)):
            host_ip = "" if req.host_ip in ("", "0.0.0.0", "::") else ip(req.host_ip)
            out.add((host_ip, req.host_start, req.host_end, req.container_port, req.proto))
    return frozenset(out)


def exposed(value: Iterable[str | int]) -> list[str]:
    """Exposed ports as PORT/PROTO (tcp when left out), ranges as given; order and duplicates dropped."""
    out: dict[str, None] = {}
    for item in value:
        port, _, proto = str(item).strip().partition("/")
        if not port.replace("-", "").isdigit():
            raise InvalidArgument(f"exposed_ports: {item!r} is not PORT[/PROTO], e.g. 8080/tcp")
        out[f"{port}/{(proto or 'tcp').lower()}"] = None
    return sorted(out)


def bound_ports(bindings: Iterable[Any]) -> frozenset[tuple[str, int, int, str]]:
    """The engine's bindings (`network.ports.Binding` or its JSON) as (host_ip, host_port, container_port, proto)."""
    out = set()
    for b in bindings:
        if isinstance(b, Mapping):
            host_ip, host_port, cport, proto = b["HostIp"], int(b["HostPort"]), int(b["ContainerPort"]), b["Protocol"]
        else:
            host_ip, host_port, cport, proto = b.host_ip, b.host_port, b.container_port, b.proto
        host_ip = "" if host_ip in ("", "0.0.0.0", "::") else ip(host_ip)
        out.add((host_ip, host_port, cport, proto))
    return frozenset(out)


def ports_match(declared: frozenset[tuple[str, int, int, int, str]],
                bound: frozenset[tuple[str, int, int, str]]) -> bool:
    """Every request is met by a binding and every binding answers a request.

    A request without a host port accepts any; a host range accepts any port in it.
    """
    def meets(req: tuple[str, int, int, int, str], b: tuple[str, int, int, str]) -> bool:
        host_ip, start, end, cport, proto = req
        return (b[0] == host_ip and b[2] == cport and b[3] == proto
                and (start == 0 or start <= b[1] <= end))

    return (all(any(meets(r, b) for b in bound) for r in declared)
            and all(any(meets(r, b) for r in declared) for b in bound))
