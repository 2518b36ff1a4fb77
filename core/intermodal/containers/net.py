"""A container on a network (`--network bridge` or a named one): its namespace and its endpoint.

The network namespace is made at the first start, before the runtime runs,
as a file under the run root that a bind mount keeps alive (as `ip netns
add` does under /run/netns); the OCI config names
that file, so the runtime joins it instead of making a new one.
`engine.networks.attach` then plugs it into the network, publishes ports and
writes the container's hosts and resolv.conf (which the engine bind-mounts).
The namespace and its endpoint stay from the first start to `rm`, so a
restarted container keeps its address. `none` and `host` need none of this;
`container:X` joins X's namespace and shares X's name files (`joined`).
"""

from __future__ import annotations

import os
from pathlib import Path

from intermodal.errors import ContainerNotFound, InvalidArgument, RuntimeFailure

TYPE_CHECKING = False  # not `typing` (~4 ms of every `imod`)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from intermodal.containers.spec import ContainerSpec
    from intermodal.containers.store import ContainerStore
    from intermodal.engine import Engine
    from intermodal.network.manager import EndpointRequest, Pending
    from intermodal.network.ports import PortRequest

LOCAL_MODES = ("none", "host")


def uses_network(spec: ContainerSpec) -> bool:
    """Has an endpoint of its own (bridge or a named network), rather than none, host or another's."""
    return spec.network not in LOCAL_MODES and not spec.network.startswith("container:")


def joined(engine: Engine, store: ContainerStore, spec: ContainerSpec) -> tuple[str | None, str, Path] | None:
    """`--network container:X`: (the namespace to join, None for the host's; X's hostname; X's directory).

    X must be running (as in Docker): a namespace of a bridge or named network is X's namespace file,
    kept from its first start to its removal; X's own `none` namespace is joined through X's process,
    so the joining container must be started while X runs. /etc/hosts and resolv.conf are X's files.
    """
    if not spec.network.startswith("container:"):
        return None
    target = store.resolve(spec.network.partition(":")[2])  # raises ContainerNotFound
    record, state = store.read_record(target), store.read_state(target)
    if not state.get("Running"):
        raise RuntimeFailure(f"cannot join the network of container {record['Name']}: it is not running; "
                             "start it first")
    from intermodal.containers.spec import ContainerSpec as Spec

    mode = Spec.from_json(record["Spec"]).network
    if mode == "host":
        path = None
    elif mode.startswith("container:"):
        raise RuntimeFailure(f"container {record['Name']} shares another container's network itself; "
                             f"join that one instead ({mode})")
    elif mode == "none":
        path = f"/proc/{state['Pid']}/ns/net"
    else:
        path = str(netns_path(engine, target))
    return path, record["Hostname"], store.dir(target)


def network_options(values: Sequence[str], aliases: Sequence[str] = (), ip: str | None = None) -> dict[str, Any]:
    """`--network` flags (repeated; each a name or `name=NET,alias=A,ip=IP`) as ContainerSpec options.

    The first network is `network`, with `--network-alias` and `--ip` (as in Docker, they apply to it);
    the others are `extra_networks`. Nothing given: the default `bridge`.
    """
    from intermodal.containers.spec import NetworkAttachment

    attachments = [_parse_network_flag(v) for v in values] or [NetworkAttachment("bridge")]
    first, extra = attachments[0], attachments[1:]
    out: dict[str, Any] = {"network": first.name, "extra_networks": tuple(extra)}
    if first.aliases or aliases:
        out["network_aliases"] = (*first.aliases, *aliases)
    if first.ip or ip:
        if first.ip and ip and first.ip != ip:
            raise InvalidArgument(f"--ip {ip} and --network ip={first.ip} disagree; give the address once")
        out["ip"] = first.ip or ip
    return out


def _parse_network_flag(value: str):
    from intermodal.containers.spec import NetworkAttachment

    if "=" not in value:
        return NetworkAttachment(value.strip())
    fields: dict[str, list[str]] = {}
    for part in value.split(","):
        key, eq, val = part.partition("=")
        key = key.strip()
        if not eq or key not in ("name", "alias", "ip"):
            raise InvalidArgument(f"--network {value!r}: {part!r} is not name=, alias= or ip=; "
                                  "write e.g. --network name=app,alias=db,ip=172.20.0.5")
        fields.setdefault(key, []).append(val.strip())
    if len(fields.get("name", [])) != 1 or len(fields.get("ip", [])) > 1:
        raise InvalidArgument(f"--network {value!r} needs exactly one name= and at most one ip=")
    return NetworkAttachment(fields["name"][0], tuple(fields.get("alias", ())), (fields.get("ip") or [None])[0])


def netns_path(engine: Engine, cid: str) -> Path:
    return engine.paths.run_root / "netns" / cid


def names(record: dict[str, Any], spec: ContainerSpec) -> list[str]:
    """The names of the networks `requests` gives (or the mode: none, host, container:X), in its order."""
    saved = record.get("Networks")
    if saved is not None:
        return [n["Name"] for n in saved]
    return [spec.network, *(n.name for n in spec.extra_networks)]


def requests(record: dict[str, Any], spec: ContainerSpec) -> list[EndpointRequest]:
    """The networks the container is configured for, first (default route) first.

    `network connect/disconnect` rewrite ``record["Networks"]``; until the first of them the spec's
    `--network` flags (`network`, `ip`, `network_aliases`, then `extra_networks`) are the configuration.
    """
    from intermodal.network.manager import EndpointRequest

    saved = record.get("Networks")
    if saved is not None:
        return [EndpointRequest(n["Name"], n.get("IPv4Address") or None, tuple(n.get("Aliases") or ()))
                for n in saved]
    return [EndpointRequest(spec.network, spec.ip, tuple(spec.network_aliases)),
            *(EndpointRequest(n.name, n.ip, tuple(n.aliases)) for n in spec.extra_networks)]


def _saved(reqs: list[EndpointRequest]) -> list[dict[str, Any]]:
    return [{"Name": r.network, "Aliases": list(r.aliases), "IPv4Address": r.ip} for r in reqs]


def check_network(engine: Engine, spec: ContainerSpec) -> None:
    """At create: the networks must exist (the default `bridge` is made on first use)."""
    if not uses_network(spec):
        return
    for name in (spec.network, *(n.name for n in spec.extra_networks)):
        if name == "bridge":
            engine.networks.ensure_default()
        else:
            engine.networks.get(name)  # raises NetworkNotFound with its own advice


def published(engine: Engine, record: dict[str, Any], spec: ContainerSpec) -> list[str | PortRequest]:
    """`-p` items, plus with `-P` every EXPOSEd port (the image's and --expose) not published by a `-p`."""
    items: list[str | PortRequest] = list(spec.ports)
    if not spec.publish_all:
        return items
    from intermodal.network import ports as portlib

    explicit = {(r.container_port, r.proto) for item in spec.ports for r in portlib.parse(item)}
    image = engine.images.config(engine.images.get(record["Image"]))
    exposed = list((image.get("config") or {}).get("ExposedPorts") or {}) + list(spec.expose)
    for req in portlib.expose_all(exposed):
        if (req.container_port, req.proto) not in explicit:
            explicit.add((req.container_port, req.proto))
            items.append(req)
    return items


def connect(engine: Engine, cid: str, record: dict[str, Any], spec: ContainerSpec, directory: Path) -> None:
    """At start: the namespace and the endpoints, unless an earlier start left them in place.

    Networks connected or disconnected while the namespace was kept (a stopped container) were
    applied to it then; a configured network still missing (a crash in between) is joined here.
    """
    networks = engine.networks
    path = netns_path(engine, cid)
    wanted = requests(record, spec)
    have = networks.endpoints(cid)
    if (have or networks.store.container(cid) is not None) and _is_netns(path):
        _reconcile(engine, cid, record, wanted, [net.name for net, _ in have], path)
        return
    if have or networks.store.container(cid) is not None:
        networks.detach(cid)  # the namespace is gone (a reboot): plug a new one in
    _make_netns(path)
    try:
        if not wanted:  # disconnected from every network: loopback only, as Docker leaves it
            networks.setup_loopback(path)
        gateway = networks.get(wanted[0].network).gateway if wanted else None
        dns, search, options = resolv_settings(spec)
        networks.attach(cid, path, wanted, published(engine, record, spec), name=record["Name"],
                        hostname=record["Hostname"], hosts_path=directory / "hosts",
                        resolv_path=directory / "resolv.conf",
                        extra_hosts=[f"{n}={ip}" for n, ip in extra_hosts(spec, gateway)],
                        dns=dns or (), dns_search=search, dns_options=options)
    except BaseException:
        networks.detach(cid)
        _remove_netns(path)
        raise


def resolv_settings(spec: ContainerSpec) -> tuple[list[str] | None, list[str] | None, list[str] | None]:
    """--dns, --dns-search, --dns-option for hosts.render_resolv: None where the host's apply;
    `--dns-search .` is no search domain at all (as Docker)."""
    search = [s for s in spec.dns_search if s != "."] if spec.dns_search else None
    return list(spec.dns) or None, search, list(spec.dns_options) or None


def extra_hosts(spec: ContainerSpec, gateway: str | None) -> list[tuple[str, str]]:
    """--add-host items as (name, ip); host-gateway is *gateway* (the first network's), and is left out
    where there is none (a container disconnected from every network)."""
    from intermodal.containers.spec import HOST_GATEWAY

    out = []
    for item in spec.extra_hosts:
        name, _, ip = item.partition(":")
        if ip == HOST_GATEWAY:
            if not gateway:
                continue
            ip = gateway
        out.append((name, ip))
    return out


def _reconcile(engine: Engine, cid: str, record: dict[str, Any], wanted: list[EndpointRequest],
               have: list[str], path: Path) -> None:
    """Join configured networks the namespace lacks. Endpoints beyond the configuration stay: they were
    made by `engine.networks.connect` directly (not through `change`), which a restart must not undo."""
    networks = engine.networks
    names = {networks.get(r.network).name: r for r in wanted}
    for name, req in names.items():
        if name not in have:
            networks.connect(name, cid, path, ip=req.ip, aliases=req.aliases, name=record["Name"])


def has_state(engine: Engine, cid: str) -> bool:
    """Anything of the network code to remove: its record of the container or a namespace file."""
    if os.path.lexists(netns_path(engine, cid)):
        return True
    # Asked at every `rm`: the network code is imported only when the record's file exists.
    if not os.path.lexists(engine.paths.networks / "containers" / f"{cid}.json"):
        return False
    return engine.networks.store.container(cid) is not None


def change(engine: Engine, store: ContainerStore, name: str, network: str, *, add: bool,
           aliases: Sequence[str] = (), ip: str | None = None, force: bool = False) -> None:
    """`network connect/disconnect` of a container in any state but removed.

    The configuration (``record["Networks"]``) changes under the container's lock, so the next start
    uses it; where the container's namespace exists (it lives from the first start to `rm`, running
    or stopped) the endpoint is plugged in or out at once, as Docker does for a running container.
    Raises ContainerNotFound, NetworkNotFound, InvalidArgument (a none/host/container:X container),
    AlreadyExists (already connected), NotFound (not connected, unless *force*).
    """
    from intermodal.containers.spec import ContainerSpec as Spec
    from intermodal.errors import AlreadyExists, NetworkNotFound
    from intermodal.network.manager import EndpointRequest

    cid = store.resolve(name)
    networks = engine.networks
    with store.locked_existing(cid):
        record = store.read_record(cid)
        spec = Spec.from_json(record["Spec"])
        if not uses_network(spec):
            raise InvalidArgument(f"container {record['Name']} has --network {spec.network}: it cannot be "
                                  f"{'connected to' if add else 'disconnected from'} networks; recreate it "
                                  "with --network bridge or a network's name")
        net = networks.get(network)  # raises NetworkNotFound; makes the default `bridge` if asked for it
        wanted = requests(record, spec)
        index = next((i for i, r in enumerate(wanted) if _same(networks, r.network, net)), None)
        path = netns_path(engine, cid)
        live = _is_netns(path)
        if add:
            if index is not None:
                raise AlreadyExists(f"container {record['Name']} is already connected to network {net.name}")
            req = EndpointRequest(net.name, ip, tuple(aliases))
            if live:
                networks.connect(net.name, cid, path, ip=ip, aliases=aliases, name=record["Name"])
            wanted.append(req)
        else:
            if index is None and networks.store.endpoint(net.id, cid) is None:
                if force:
                    return
                raise NetworkNotFound(f"container {record['Name']} is not connected to network {net.name}")
            if live and networks.store.endpoint(net.id, cid) is not None:
                networks.disconnect(net.name, cid)
            if index is not None:
                del wanted[index]
        record["Networks"] = _saved(wanted)
        store.write_record(cid, record)


def _same(networks: Any, ref: str, net: Any) -> bool:
    """Does the configured network *ref* (a name or id) name *net*? A removed network names nothing."""
    from intermodal.errors import NetworkNotFound

    if ref in (net.name, net.id):
        return True
    try:
        return networks.get(ref).id == net.id
    except NetworkNotFound:
        return False


def disconnect(engine: Engine, cid: str, *, wait: bool = True) -> Pending | None:
    """At rm: the endpoint, its ports and addresses, then the namespace.

    The veths are deleted explicitly, not left to the namespace's end: a
    copy of the namespace file's mount in any mount namespace made while it
    existed (/ is a private mount here) keeps the namespace, and with it
    the veth and its address, alive after our unmount. With ``wait=False``
    the endpoints go in a thread (see `NetworkManager.detach`); the caller
    must `wait()` on what is returned before it reports the removal done.
    """
    pending = engine.networks.detach(cid, wait=wait)
    try:
        _remove_netns(netns_path(engine, cid))
    except BaseException:
        if pending is not None:
            pending.wait()
        raise
    return pending


def settings(engine: Engine, cid: str) -> dict[str, Any]:
    """`NetworkSettings`: the joined networks, and (empty, as Docker shows them) those configured but not
    joined yet (a container never started, or connected while it had no namespace)."""
    from intermodal.containers.spec import ContainerSpec as Spec
    from intermodal.containers.store import ContainerStore

    out = engine.networks.container_settings(cid)
    try:
        record = ContainerStore(engine.paths).read_record(cid)
    except ContainerNotFound:  # removed meanwhile: what the network code knows is all there is
        return out
    for req in requests(record, Spec.from_json(record["Spec"])):
        name = engine.networks.get(req.network).name if engine.networks.exists(req.network) else req.network
        if name not in out["Networks"]:
            out["Networks"][name] = {
                "IPAMConfig": {"IPv4Address": req.ip} if req.ip else None, "Aliases": list(req.aliases),
                "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                "MacAddress": "", "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                "DNSNames": None}
    return out


def ports_text(engine: Engine, cid: str) -> str:
    """`ps`'s PORTS column: 0.0.0.0:8080->80/tcp, ..."""
    return ", ".join(f"{b.host_text()}->{b.key()}" for b in engine.networks.published_ports(cid))


def _is_netns(path: Path) -> bool:
    """A live namespace file is a bind mount of nsfs: another device than its directory's."""
    try:
        return os.stat(path).st_dev != os.stat(path.parent).st_dev
    except FileNotFoundError:
        return False


def _make_netns(path: Path) -> None:
    """A new network namespace kept alive by a bind mount on *path*, as `ip netns add` makes one.

    A short-lived thread unshares its own network namespace (CLONE_NEWNET is
    per thread) and bind-mounts /proc/thread-self/ns/net on the file; the
    caller's namespace never changes, and no unshare(1) process is spawned.
    """
    if _is_netns(path):
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600)
    errors: list[BaseException] = []
    import threading  # here: `imod run --network none` never needs it

    def work() -> None:
        from intermodal.runtime import syscalls

        try:
            syscalls.unshare(syscalls.CLONE_NEWNET)
            syscalls.mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", str(path), None, syscalls.MS_BIND)
        except BaseException as err:  # handed to the caller
            errors.append(err)

    thread = threading.Thread(target=work, name="imod-netns")
    thread.start()
    thread.join()
    if errors:
        path.unlink(missing_ok=True)
        raise RuntimeFailure(f"could not make a network namespace at {path}: {errors[0]}; "
                             "networking needs root (CAP_SYS_ADMIN)")


def _remove_netns(path: Path) -> None:
    if _is_netns(path):
        from intermodal.errors import KernelError
        from intermodal.runtime import syscalls

        try:
            syscalls.umount2(str(path), syscalls.MNT_DETACH)
        except KernelError as err:
            if _is_netns(path):
                raise RuntimeFailure(f"could not unmount the network namespace {path}: {err}") from err
    path.unlink(missing_ok=True)
