"""`ContainerSpec`: what the user asked for, normalised once.

Every value is normalised when the spec is built (sizes to bytes, signals to
numbers, commands to argv, env to an ordered mapping), so the stored record
compares equal to a re-declaration of the same container. Values the image
supplies stay ``None`` here ("the image's CMD"); `config.py` fills them in.
"""

from __future__ import annotations

import _signal  # not `signal`, an enum module (~1 ms): the numbers are the same
import os
from collections.abc import Mapping

from intermodal.containers.restart import RestartPolicy
from intermodal.containers.restart import parse as parse_restart_text
from intermodal.errors import InvalidArgument
from intermodal.records import Frozen, factory, replace

TYPE_CHECKING = False  # not `typing` (~4 ms of every `imod`)
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

NETWORK_MODES = ("none", "host")
HOST_GATEWAY = "host-gateway"  # --add-host NAME:host-gateway: the gateway of the container's first network
MOUNT_TYPES = ("bind", "volume", "tmpfs")


class Mount(Frozen):
    """One mount: a named or anonymous volume, a bind mount or a tmpfs."""

    type: str
    target: str
    source: str = ""  # volume name ("" = anonymous), host path, or "" for tmpfs
    readonly: bool = False
    options: tuple[str, ...] = ()  # bind propagation, tmpfs size=/mode=, volume nocopy

    def to_json(self) -> dict[str, Any]:
        return {"Type": self.type, "Source": self.source, "Target": self.target, "ReadOnly": self.readonly,
                "Options": list(self.options)}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Mount:
        return cls(value["Type"], value["Target"], value.get("Source", ""), bool(value.get("ReadOnly")),
                   tuple(value.get("Options", ())))


class Healthcheck(Frozen):
    """Docker's HEALTHCHECK; None in a field means "the image's value, else Docker's default"."""

    test: tuple[str, ...] | None = None  # ("CMD", ...), ("CMD-SHELL", "cmd"), ("NONE",)
    interval: int | None = None  # ns
    timeout: int | None = None  # ns
    start_period: int | None = None  # ns
    retries: int | None = None
    start_interval: int | None = None  # ns between checks during the start period (Docker 25); None: interval

    def to_json(self) -> dict[str, Any]:
        return {"Test": list(self.test) if self.test is not None else None, "Interval": self.interval,
                "Timeout": self.timeout, "StartPeriod": self.start_period, "Retries": self.retries,
                **({"StartInterval": self.start_interval} if self.start_interval is not None else {})}

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> Healthcheck | None:
        if value is None:
            return None
        test = value.get("Test")
        return cls(tuple(test) if test is not None else None, value.get("Interval"), value.get("Timeout"),
                   value.get("StartPeriod"), value.get("Retries"), value.get("StartInterval"))


class NetworkAttachment(Frozen):
    """A further network to join: `--network name=NET,alias=A,ip=IP` or `imod network connect`."""

    name: str
    aliases: tuple[str, ...] = ()
    ip: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"Name": self.name, "Aliases": list(self.aliases), "IPv4Address": self.ip}

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | str) -> NetworkAttachment:
        if isinstance(value, str):
            return cls(value)
        return cls(str(value["Name"]), tuple(str(a) for a in value.get("Aliases") or ()),
                   value.get("IPv4Address") or None)


class ContainerSpec(Frozen):
    image: str
    name: str | None = None
    command: tuple[str, ...] | None = None  # None: the image's CMD
    entrypoint: tuple[str, ...] | None = None  # None: the image's; (): none at all
    env: tuple[tuple[str, str], ...] = ()
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    mounts: tuple[Mount, ...] = ()
    network: str = "bridge"  # bridge (the default network, as in Docker), none, host, container:X, or a network
    ports: tuple[str, ...] = ()  # `-p` items as given; the network code parses and resolves them
    network_aliases: tuple[str, ...] = ()
    ip: str | None = None
    restart: RestartPolicy = factory(RestartPolicy)
    stop_signal: int | None = None  # None: the image's STOPSIGNAL, else SIGTERM
    stop_timeout: int | None = None  # seconds; None: 10
    auto_remove: bool = False
    interactive: bool = False
    tty: bool = False
    read_only: bool = False
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    memory: int | None = None  # bytes
    cpus: float | None = None
    pids_limit: int | None = None
    log_max_size: int = 0  # bytes, 0: unlimited
    log_max_file: int = 1
    healthcheck: Healthcheck | None = None  # None: the image's
    init: bool = False  # a small init as pid 1 that reaps zombies and passes signals on
    devices: tuple[str, ...] = ()  # `--device`, each "HOST:CONTAINER:PERMS" (devices.parse_device)
    device_cgroup_rules: tuple[str, ...] = ()  # `--device-cgroup-rule`, each "TYPE MAJOR:MINOR PERMS"
    publish_all: bool = False  # -P: every EXPOSEd port (the image's and `expose`) on an ephemeral host port
    expose: tuple[str, ...] = ()  # --expose PORT[/PROTO]: exposed without publishing (unless -P)
    extra_networks: tuple[NetworkAttachment, ...] = ()  # 2nd and later --network (`network` is the first)
    dns: tuple[str, ...] = ()  # --dns: nameservers (IP addresses) instead of the host's
    dns_search: tuple[str, ...] = ()  # --dns-search; "." alone: no search domain at all
    dns_options: tuple[str, ...] = ()  # --dns-option: resolv.conf `options` words (ndots:2, edns0)
    extra_hosts: tuple[str, ...] = ()  # --add-host, each "HOST:IP" or "HOST:host-gateway" (Docker's ExtraHosts)

    @classmethod
    def build(cls, image: str, **options: Any) -> ContainerSpec:
        """The normalising constructor: accepts what a user or a front end has (strings, lists, dicts)."""
        unknown = set(options) - set(cls._fields)
        if unknown:
            raise InvalidArgument(f"unknown container option(s) {', '.join(sorted(unknown))}")
        norm: dict[str, Any] = {}
        for key, value in options.items():
            fix = _NORMALISE.get(key)
            norm[key] = fix(value) if fix and value is not None else value
        spec = cls(image=image, **norm)
        spec.check()
        return spec

    def check(self) -> None:
        if not self.image:
            raise InvalidArgument("no image given: name the image to run, e.g. `imod run busybox`")
        if self.network not in NETWORK_MODES and not self.network.startswith("container:"):
            from intermodal.fsutil import check_name

            check_name(self.network, "network")
        elif self.network.startswith("container:") and not self.network.partition(":")[2]:
            raise InvalidArgument("--network container: needs a container's name or id, e.g. container:web")
        elif self.ports or self.ip or self.network_aliases or self.publish_all or self.extra_networks:
            raise InvalidArgument(f"--publish, --publish-all, --ip, --network-alias and further --network need a "
                                  f"network of the container's own; with --network "
                                  f"{self.network} there is none to publish on: use --network bridge")
        for item in self.ports:
            from intermodal.network.ports import parse

            parse(item)  # refuse a bad -p now; ports are resolved (and checked as free) at start
        for item in self.expose:
            from intermodal.network.ports import parse

            parse(item)
        names = [self.network, *(n.name for n in self.extra_networks)]
        if len(set(names)) != len(names):
            raise InvalidArgument(f"--network lists a network twice ({', '.join(names)}); give each once")
        for extra in self.extra_networks:
            if extra.name in NETWORK_MODES or extra.name.startswith("container:"):
                raise InvalidArgument(f"--network {extra.name} cannot be combined with other networks; give it alone")
            from intermodal.fsutil import check_name

            check_name(extra.name, "network")
        if self.name is not None:
            from intermodal.fsutil import check_name

            check_name(self.name, "container")
        if self.stop_timeout is not None and self.stop_timeout < -1:
            raise InvalidArgument("--stop-timeout must be -1 (wait forever) or a number of seconds")
        targets = [m.target for m in self.mounts]
        dupes = sorted({t for t in targets if targets.count(t) > 1})
        if dupes:
            raise InvalidArgument(f"duplicate mount point {dupes[0]}: mount each container path once")
        self._check_names()
        if self.auto_remove and self.restart.name != "no":
            raise InvalidArgument("--rm and --restart cannot be combined: a container removed on exit cannot restart")

    def _check_names(self) -> None:
        """--dns/--add-host need name files of the container's own: X's are shared (Docker refuses too)."""
        if self.network.startswith("container:") and (self.dns or self.dns_search or self.dns_options
                                                       or self.extra_hosts):
            raise InvalidArgument(f"--dns, --dns-search, --dns-option and --add-host cannot be combined with "
                                  f"--network {self.network}: the container uses that container's /etc/hosts and "
                                  f"/etc/resolv.conf; set them there")
        if self.network in NETWORK_MODES and any(h.endswith(":" + HOST_GATEWAY) for h in self.extra_hosts):
            raise InvalidArgument(f"--add-host HOST:{HOST_GATEWAY} needs a network with a gateway; with --network "
                                  f"{self.network} there is none: give an IP address instead"
                                  + (" (on the host's network the host is 127.0.0.1)" if self.network == "host"
                                     else ""))

    def with_name(self, name: str) -> ContainerSpec:
        return replace(self, name=name)

    # -- storage -----------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {}
        for name in self._fields:
            v = getattr(self, name)
            if name == "restart" or (name == "healthcheck" and v is not None):
                v = v.to_json()
            elif name in ("mounts", "extra_networks"):
                v = [m.to_json() for m in v]
            elif name in ("env", "labels"):
                v = dict(v)
            elif isinstance(v, tuple):
                v = list(v)
            value[name] = v
        return value

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> ContainerSpec:
        known = set(cls._fields)
        data = {k: v for k, v in value.items() if k in known}
        data["restart"] = RestartPolicy.from_json(data.get("restart"))
        data["healthcheck"] = Healthcheck.from_json(data.get("healthcheck"))
        data["mounts"] = tuple(Mount.from_json(m) for m in data.get("mounts", ()))
        data["extra_networks"] = tuple(NetworkAttachment.from_json(n) for n in data.get("extra_networks", ()))
        for key in ("env", "labels"):
            data[key] = tuple((data.get(key) or {}).items())
        for key in ("command", "entrypoint"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        for key in ("cap_add", "cap_drop", "ports", "network_aliases", "expose", "devices", "device_cgroup_rules",
                    "dns", "dns_search", "dns_options", "extra_hosts"):
            data[key] = tuple(data.get(key, ()))
        return cls(**data)


# -- normalisers (each takes what a user typed and returns the stored form) ------


def parse_command(value: str | Iterable[str]) -> tuple[str, ...]:
    """A list stays argv; a string is split like a shell would (`"sh -c 'exit 3'"`)."""
    if isinstance(value, str):
        import shlex

        return tuple(shlex.split(value))
    return tuple(str(v) for v in value)


def parse_entrypoint(value: str | Iterable[str]) -> tuple[str, ...]:
    """`--entrypoint ""` resets the image's ENTRYPOINT, as in Docker."""
    if isinstance(value, str):
        return (value,) if value else ()
    return tuple(str(v) for v in value if str(v) != "") if list(value) != [""] else ()


def parse_env(value: Mapping[str, Any] | Iterable[str]) -> tuple[tuple[str, str], ...]:
    """`["A=1", "B"]` (B taken from our environment, dropped if unset) or a mapping."""
    items: dict[str, str] = {}
    pairs = value.items() if isinstance(value, Mapping) else (_env_item(v) for v in value)
    for key, val in pairs:
        if not key or "=" in key:
            raise InvalidArgument(f"invalid environment variable name {key!r}: use NAME=VALUE")
        if val is None:
            continue
        items[key] = str(val)
    return tuple(items.items())


def _env_item(text: str) -> tuple[str, str | None]:
    key, eq, val = text.partition("=")
    return (key, val) if eq else (key, os.environ.get(key))


def read_env_file(path: str) -> list[str]:
    """Docker's --env-file: NAME=VALUE lines; `#` comments and blank lines skipped."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as err:
        raise InvalidArgument(f"cannot read env file {path}: {err.strerror}; check the path") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def parse_labels(value: Mapping[str, Any] | Iterable[str]) -> tuple[tuple[str, str], ...]:
    if isinstance(value, Mapping):
        return tuple((str(k), str(v)) for k, v in value.items())
    out: dict[str, str] = {}
    for text in value:
        key, _, val = text.partition("=")
        if not key:
            raise InvalidArgument(f"invalid label {text!r}: use KEY=VALUE")
        out[key] = val
    return tuple(out.items())


def parse_signal(value: str | int) -> int:
    """`SIGTERM`, `TERM`, `term` or `15` -> 15."""
    if isinstance(value, int):
        number = value
    elif value.strip().isdigit():
        number = int(value)
    else:
        name = value.strip().upper()
        name = name if name.startswith("SIG") else "SIG" + name
        number = getattr(_signal, name, None)
        if not isinstance(number, int) or name.startswith("SIG_"):
            raise InvalidArgument(f"invalid signal {value!r}: use a name such as SIGTERM or a number such as 15")
    if not 0 < int(number) < 65:
        raise InvalidArgument(f"invalid signal {value!r}: signal numbers go from 1 to 64")
    return int(number)


def signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def parse_size(value: str | int) -> int:
    """`10m` -> 10485760 (Docker's RAMInBytes: binary units, case-insensitive, optional `b`)."""
    if isinstance(value, int):
        return value
    units = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
    text = value.strip().lower()
    if len(text) > 1 and text.endswith("b") and text[-2] in "kmgt":
        text = text[:-1]
    number = text.rstrip("bkmgt")
    unit = text[len(number):]
    try:
        if unit not in units or not number:
            raise ValueError
        result = int(float(number) * units[unit])
    except ValueError:
        raise InvalidArgument(f"invalid size {value!r}: use a number with an optional unit b, k, m or g, e.g. 64m"
                              ) from None
    if result < 0:
        raise InvalidArgument(f"invalid size {value!r}: sizes cannot be negative")
    return result


def parse_duration(value: str | int | float) -> int:
    """`30s`, `1m30s`, `500ms`, `1h` (Go's time.ParseDuration, as Docker's flags) or seconds -> ns."""
    if isinstance(value, (int, float)):
        return int(value * 1_000_000_000)
    units = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
             "h": 3_600_000_000_000}
    text = value.strip()
    total, number = 0.0, ""
    i = 0
    try:
        if text.replace(".", "", 1).isdigit():
            return int(float(text) * 1_000_000_000)
        while i < len(text):
            if text[i].isdigit() or text[i] == ".":
                number += text[i]
                i += 1
                continue
            unit = next(u for u in ("ns", "us", "µs", "ms", "s", "m", "h") if text.startswith(u, i))
            total += float(number) * units[unit]
            number, i = "", i + len(unit)
        if number or not text:
            raise ValueError
    except (StopIteration, ValueError):
        raise InvalidArgument(f"invalid duration {value!r}: use a number with a unit, e.g. 30s, 1m30s or 500ms"
                              ) from None
    return int(total)


def parse_healthcheck(value: Healthcheck | Mapping[str, Any]) -> Healthcheck:
    """From a mapping of Docker's flags: cmd (a shell command, or a list for CMD), interval, timeout,
    start_period, retries, disable."""
    if isinstance(value, Healthcheck):
        return value
    if value.get("disable"):
        return Healthcheck(("NONE",))
    cmd = value.get("cmd")
    test = None if cmd is None else (("CMD-SHELL", cmd) if isinstance(cmd, str) else ("CMD", *cmd))
    durations = {k: parse_duration(value[k]) if value.get(k) is not None else None
                 for k in ("interval", "timeout", "start_period", "start_interval")}
    retries = int(value["retries"]) if value.get("retries") is not None else None
    if retries is not None and retries < 0:
        raise InvalidArgument("--health-retries cannot be negative")
    if durations["start_interval"] is not None and 0 < durations["start_interval"] < 1_000_000:
        raise InvalidArgument("--health-start-interval must be at least 1ms (or 0: the interval)")
    return Healthcheck(test, durations["interval"], durations["timeout"], durations["start_period"], retries,
                       durations["start_interval"] or None)


def parse_restart(value: str | RestartPolicy) -> RestartPolicy:
    if isinstance(value, RestartPolicy):
        return value
    try:
        return parse_restart_text(value)
    except ValueError as err:
        raise InvalidArgument(str(err)) from None


def parse_volume(text: str) -> Mount:
    """`-v` as Docker reads it: `/ctr`, `name:/ctr[:ro]`, `/host:/ctr[:ro,rprivate]`."""
    parts = text.split(":")
    if len(parts) == 1:
        return _check_mount(Mount("volume", parts[0]))
    if len(parts) > 3:
        raise InvalidArgument(f"invalid volume {text!r}: use [SOURCE:]TARGET[:OPTIONS]")
    source, target = parts[0], parts[1]
    opts = [o for o in (parts[2].split(",") if len(parts) == 3 else []) if o]
    readonly = "ro" in opts
    extra = tuple(o for o in opts if o not in ("ro", "rw"))
    kind = "bind" if source.startswith(("/", ".")) else "volume"
    if kind == "bind":
        source = os.path.abspath(source)
    return _check_mount(Mount(kind, target, source, readonly, extra))


def parse_mount(text: str) -> Mount:
    """`--mount type=volume,source=data,target=/data,readonly` (Docker's CSV form)."""
    kv: dict[str, str] = {}
    flags: set[str] = set()
    for item in text.split(","):
        key, eq, val = item.partition("=")
        key = key.strip().lower()
        if eq:
            kv[key] = val
        else:
            flags.add(key)
    kind = kv.pop("type", "volume")
    source = kv.pop("source", kv.pop("src", ""))
    target = kv.pop("target", kv.pop("destination", kv.pop("dst", "")))
    readonly = bool(flags & {"readonly", "ro"}) or kv.pop("readonly", kv.pop("ro", "false")) in ("true", "1")
    options = []
    if "bind-propagation" in kv:
        options.append(kv.pop("bind-propagation"))
    if "tmpfs-size" in kv:
        options.append(f"size={parse_size(kv.pop('tmpfs-size'))}")
    if "tmpfs-mode" in kv:
        options.append(f"mode={kv.pop('tmpfs-mode')}")
    if kv.pop("volume-nocopy", "false") in ("true", "1") or "volume-nocopy" in flags:
        options.append("nocopy")
    if kv:
        raise InvalidArgument(f"invalid --mount {text!r}: unknown key(s) {', '.join(sorted(kv))}")
    if kind == "bind" and source:
        source = os.path.abspath(source)
    return _check_mount(Mount(kind, target, source, readonly, tuple(options)))


def parse_tmpfs(text: str) -> Mount:
    """`--tmpfs /run[:size=64m,mode=1777]`."""
    target, _, opts = text.partition(":")
    options = []
    for opt in (o for o in opts.split(",") if o):
        if opt.startswith("size="):
            opt = f"size={parse_size(opt[5:])}"
        options.append(opt)
    return _check_mount(Mount("tmpfs", target, "", "ro" in options, tuple(o for o in options if o != "ro")))


def _check_mount(m: Mount) -> Mount:
    if m.type not in MOUNT_TYPES:
        raise InvalidArgument(f"unknown mount type {m.type!r}: use bind, volume or tmpfs")
    if not m.target.startswith("/"):
        raise InvalidArgument(f"invalid mount target {m.target!r}: container paths must be absolute")
    if m.target == "/":
        raise InvalidArgument("cannot mount over the container's root directory: choose another target")
    if m.type == "bind" and not m.source:
        raise InvalidArgument(f"bind mount to {m.target} has no source: give the host path")
    if m.type == "volume" and m.source:
        from intermodal.fsutil import check_name

        check_name(m.source, "volume")
    return m


def _mounts(value: Iterable[Mount | str]) -> tuple[Mount, ...]:
    return tuple(v if isinstance(v, Mount) else parse_volume(v) for v in value)


def _devices(value: str | Iterable[str]) -> tuple[str, ...]:
    from intermodal.containers.devices import parse_device

    return tuple(parse_device(str(d)) for d in ([value] if isinstance(value, str) else value))


def parse_cgroup_rules(value: str | Iterable[str]) -> tuple[str, ...]:
    """--device-cgroup-rule items normalised ("c 01:3 wr" -> "c 1:3 rw"), each once, in the order given."""
    from intermodal.containers.devices import parse_cgroup_rule

    return tuple(dict.fromkeys(parse_cgroup_rule(str(r)) for r in ([value] if isinstance(value, str) else value)))


def _caps(value: Iterable[str]) -> tuple[str, ...]:
    out = []
    for cap in value:
        name = cap.strip().upper()
        if name != "ALL" and not name.startswith("CAP_"):
            name = "CAP_" + name
        out.append(name)
    return tuple(dict.fromkeys(out))


def _strings(value: str | Iterable[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in ([value] if isinstance(value, str) else value))


def parse_dns(value: str | Iterable[str]) -> tuple[str, ...]:
    """--dns: IP addresses (IPv6 too), in the order given (resolvers are tried in order)."""
    items = _strings(value)
    if not items:
        return ()  # the usual case: no ipaddress import (~1 ms of `imod run`)
    import ipaddress

    out = []
    for item in items:
        try:
            out.append(str(ipaddress.ip_address(item.strip())))
        except ValueError:
            raise InvalidArgument(f"--dns {item!r} is not an IP address; give a nameserver's address, "
                                  "e.g. --dns 192.0.2.53") from None
    return tuple(dict.fromkeys(out))


def _dns_words(flag: str) -> Any:
    """--dns-search and --dns-option: single words (resolv.conf separates them by blanks)."""
    def parse(value: str | Iterable[str]) -> tuple[str, ...]:
        out = [item.strip() for item in _strings(value)]
        for item in out:
            if not item or any(c.isspace() for c in item) or "#" in item:
                raise InvalidArgument(f"{flag} {item!r}: give one word without blanks, e.g. "
                                      f"{'example.com' if flag == '--dns-search' else 'ndots:2'}")
        return tuple(dict.fromkeys(out))
    return parse


def parse_add_host(item: str) -> str:
    """`--add-host` HOST:IP, HOST=IP or HOST:host-gateway (the IP may be IPv6, also in brackets) as
    Docker's ExtraHosts item "HOST:IP"."""
    import ipaddress

    from intermodal.network.hosts import valid_hostname

    text = str(item).strip()
    sep = "=" if "=" in text else ":"
    name, _, ip = text.partition(sep)
    ip = ip.strip().removeprefix("[").removesuffix("]")
    forms = f"use HOST:IP, HOST=IP or HOST:{HOST_GATEWAY}, e.g. --add-host db:192.0.2.10"
    if not valid_hostname(name):
        raise InvalidArgument(f"--add-host {item!r}: {name!r} is not a valid host name; {forms}")
    if ip == HOST_GATEWAY:
        return f"{name}:{ip}"  # the gateway's address is known when the container joins its network
    try:
        return f"{name}:{ipaddress.ip_address(ip)}"
    except ValueError:
        raise InvalidArgument(f"--add-host {item!r}: {ip!r} is not an IP address; {forms}") from None


def _extra_hosts(value: str | Mapping[str, Any] | Iterable[str]) -> tuple[str, ...]:
    """A list of --add-host items, or a mapping HOST -> IP (community.docker's etc_hosts)."""
    items = [f"{k}={v}" for k, v in value.items()] if isinstance(value, Mapping) else list(_strings(value))
    return tuple(dict.fromkeys(parse_add_host(i) for i in items))


def _cpus(value: float | str) -> float:
    try:
        cpus = float(value)
    except ValueError:
        raise InvalidArgument(f"invalid --cpus {value!r}: use a number such as 1.5") from None
    if cpus <= 0:
        raise InvalidArgument(f"invalid --cpus {value!r}: it must be more than 0")
    return cpus


_NORMALISE = {
    "command": parse_command,
    "entrypoint": parse_entrypoint,
    "env": parse_env,
    "labels": parse_labels,
    "mounts": _mounts,
    "restart": parse_restart,
    "stop_signal": parse_signal,
    "stop_timeout": int,
    "cap_add": _caps,
    "cap_drop": _caps,
    "memory": parse_size,
    "cpus": _cpus,
    "pids_limit": int,
    "log_max_size": parse_size,
    "log_max_file": int,
    "healthcheck": parse_healthcheck,
    "devices": _devices,
    "device_cgroup_rules": parse_cgroup_rules,
    "ports": lambda v: tuple(str(p) for p in ([v] if isinstance(v, str) else v)),
    "network_aliases": lambda v: tuple(str(a) for a in ([v] if isinstance(v, str) else v)),
    "expose": lambda v: tuple(str(p) for p in ([v] if isinstance(v, str) else v)),
    "dns": parse_dns,
    "dns_search": _dns_words("--dns-search"),
    "dns_options": _dns_words("--dns-option"),
    "extra_hosts": _extra_hosts,
    "extra_networks": lambda v: tuple(n if isinstance(n, NetworkAttachment) else NetworkAttachment.from_json(n)
                                      for n in ([v] if isinstance(v, str) else v)),
}
