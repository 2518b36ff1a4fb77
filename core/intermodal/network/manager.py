"""`engine.networks`: networks (create, list, get, inspect, remove, prune) and containers' endpoints on them.

The container engine calls `attach` once the container's network namespace
exists and before its process starts, and `detach` when it stops or is
removed; `connect`/`disconnect` change a running container's networks. Every
step that creates something is recorded before it happens, so a failure
half-way is undone by the same `detach` that removes a healthy container.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from intermodal.errors import (
    AlreadyExists,
    Conflict,
    InUse,
    InvalidArgument,
    NetworkError,
    NetworkNotFound,
    NotFound,
)
from intermodal.fsutil import check_name
from intermodal.locking import locked
from intermodal.network import ipam
from intermodal.network.store import ContainerNet, EndpointRecord, NetworkRecord, NetworkStore

if TYPE_CHECKING:
    from intermodal.engine import Engine
    from intermodal.network.nftables import Firewall
    from intermodal.network.ports import Binding, PortRequest

PREDEFINED = ("bridge", "host", "none")
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
MTU_OPTION = "com.docker.network.driver.mtu"


@dataclass(frozen=True)
class EndpointRequest:
    """One network a container joins: `--network NAME --ip IP --network-alias A`."""

    network: str
    ip: str | None = None
    aliases: tuple[str, ...] = ()


class Pending:
    """Work running in a thread of its own; `wait()` joins it and raises what it raised."""

    def __init__(self, work: Callable[[], None]) -> None:
        import threading

        self.error: BaseException | None = None

        def run() -> None:
            try:
                work()
            except BaseException as err:  # re-raised by wait()
                self.error = err

        # Not a daemon: the interpreter waits for it at exit even if nobody calls wait().
        self.thread = threading.Thread(target=run, name="imod-detach")
        self.thread.start()

    def wait(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


class NetworkManager:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = NetworkStore(engine.paths)

    @cached_property
    def firewall(self) -> Firewall:
        from intermodal.network.nftables import Firewall

        return Firewall(self.store.config.table, self.store.nft_lock)

    # -- reading ------------------------------------------------------------------------------

    def list(self) -> list[NetworkRecord]:
        return self.store.networks()

    def get(self, name_or_id: str) -> NetworkRecord:
        """By name, full id or unique id prefix; the default `bridge` network is made on first use.

        Raises NetworkNotFound, Conflict (an ambiguous id prefix).
        """
        found = self._find(name_or_id)
        if found is None and name_or_id == self.store.config.default_name:
            return self.ensure_default()
        if found is None:
            raise NetworkNotFound(f"network {name_or_id!r} not found; see `imod network ls`, "
                                  "or create it with `imod network create`")
        return found

    def exists(self, name_or_id: str) -> bool:
        return self._find(name_or_id) is not None

    def inspect(self, name_or_id: str) -> dict[str, Any]:
        """The network as `docker network inspect` shows it."""
        net = self.get(name_or_id)
        config: dict[str, str] = {"Subnet": net.subnet, "Gateway": net.gateway}
        if net.ip_range:
            config["IPRange"] = net.ip_range
        configs = [config] + ([{"Subnet": net.subnet6, "Gateway": net.gateway6}] if net.subnet6 else [])
        containers = {
            ep.container_id: {"Name": ep.name, "EndpointID": ep.id, "MacAddress": ep.mac,
                              "IPv4Address": f"{ep.address}/{ep.prefixlen}",
                              "IPv6Address": f"{ep.address6}/{ep.prefixlen6}" if ep.address6 else ""}
            for ep in self.store.endpoints(net.id)
        }
        return {
            "Name": net.name, "Id": net.id, "Created": net.created, "Scope": "local", "Driver": net.driver,
            "EnableIPv6": bool(net.subnet6), "IPAM": {"Driver": "default", "Options": {}, "Config": configs},
            "Internal": net.internal, "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
            "ConfigOnly": False, "Containers": containers,
            "Options": {BRIDGE_NAME_OPTION: net.bridge, MTU_OPTION: str(net.mtu), **net.options},
            "Labels": dict(net.labels),
        }

    def endpoints(self, container_id: str) -> list[tuple[NetworkRecord, EndpointRecord]]:
        """The container's endpoints, one per network, in a stable order."""
        out = []
        for net in self.store.networks():
            ep = self.store.endpoint(net.id, container_id)
            if ep is not None:
                out.append((net, ep))
        return out

    def container_settings(self, container_id: str) -> dict[str, Any]:
        """`NetworkSettings` of `docker inspect` for the container: Networks and Ports."""
        networks = {}
        for net, ep in self.endpoints(container_id):
            networks[net.name] = {
                "Aliases": list(ep.aliases), "NetworkID": net.id, "EndpointID": ep.id, "Gateway": ep.gateway,
                "IPAddress": ep.address, "IPPrefixLen": ep.prefixlen, "MacAddress": ep.mac,
                "IPv6Gateway": ep.gateway6, "GlobalIPv6Address": ep.address6, "GlobalIPv6PrefixLen": ep.prefixlen6,
                "DNSNames": self._names(ep),
            }
        ports: dict[str, list[dict[str, str]]] = {}
        for b in self.published_ports(container_id):
            ports.setdefault(b.key(), []).append({"HostIp": b.host_ip or "0.0.0.0", "HostPort": str(b.host_port)})
        return {"Networks": networks, "Ports": ports}

    def published_ports(self, container_id: str) -> list[Binding]:
        record = self.store.container(container_id)
        if record is None or not record.ports:
            return []
        from intermodal.network.ports import Binding

        return [Binding.from_json(p) for p in record.ports]

    # -- networks ---------------------------------------------------------------------------

    def create(self, name: str, *, subnet: str | None = None, gateway: str | None = None,
               ip_range: str | None = None, internal: bool = False, labels: dict[str, str] | None = None,
               options: dict[str, str] | None = None, driver: str = "bridge", check_duplicate: bool = True,
               ipv6: bool = False, subnet6: str | None = None, gateway6: str | None = None) -> NetworkRecord:
        """Make a user-defined bridge network, its bridge and its firewall rules.

        With *ipv6* (or a *subnet6*) the network is dual stack: every container also gets an address of
        *subnet6* (default: a /64 of a random ULA prefix) and an IPv6 default route, with masquerade
        and published ports on IPv6 too.

        Raises AlreadyExists, InvalidArgument (bad addressing or name), Conflict (subnet overlaps),
        NetworkError (the kernel refused).
        """
        check_name(name, "network")
        if name in PREDEFINED:
            raise InvalidArgument(f"network name {name!r} is predefined; pick another name")
        if (subnet6 or gateway6) and not ipv6:
            raise InvalidArgument("an IPv6 subnet or gateway needs --ipv6; add it to make the network dual stack")
        if gateway6 and not subnet6:
            raise InvalidArgument("an IPv6 --gateway needs its IPv6 --subnet; give the subnet too")
        if ipv6:
            pool6 = ipam.validate6(subnet6 or ipam.random_ula(), gateway6)
            subnet6, gateway6 = str(pool6.subnet), str(pool6.gateway)
        return self._create(name, subnet=subnet, gateway=gateway, ip_range=ip_range, internal=internal,
                            labels=labels or {}, options=options or {}, driver=driver, default=False,
                            subnet6=subnet6, gateway6=gateway6)

    def ensure_default(self) -> NetworkRecord:
        """The predefined `bridge` network (no names between containers, like Docker's)."""
        cfg = self.store.config
        found = self._find(cfg.default_name)
        if found is not None:
            return found
        try:
            return self._create(cfg.default_name, subnet=cfg.default_subnet, gateway=None, ip_range=None,
                                internal=False, labels={}, options={BRIDGE_NAME_OPTION: cfg.default_bridge},
                                driver="bridge", default=True)
        except AlreadyExists:  # a parallel command made it first
            return self.get(cfg.default_name)

    def remove(self, name_or_id: str) -> str:
        """Remove a network without endpoints: rules, bridge, state. Returns its name.

        Raises NetworkNotFound, InUse (containers still attached), InvalidArgument (the default network).
        """
        with locked(self.store.lock):
            net = self._find(name_or_id)
            if net is None:
                raise NetworkNotFound(f"network {name_or_id!r} not found; see `imod network ls`")
            if net.default:
                raise InvalidArgument(f"{net.name} is a predefined network and cannot be removed")
            users = self.store.endpoints(net.id)
            if users:
                names = ", ".join(ep.name or ep.container_id[:12] for ep in users)
                raise InUse(f"network {net.name} has active endpoints ({names}); "
                            "disconnect or remove those containers first")
            self._teardown(net)
            return net.name

    def prune(self) -> list[str]:
        """Remove every user-defined network without endpoints; returns their names."""
        removed = []
        for net in self.store.networks():
            if net.default or self.store.endpoints(net.id):
                continue
            with contextlib.suppress(InUse, NetworkNotFound):
                removed.append(self.remove(net.id))
        return removed

    # -- containers ----------------------------------------------------------------------------

    def check_ports(self, container_id: str, ports: Sequence[str | PortRequest]) -> list[Binding]:
        """Resolve `-p` items now, without reserving them: a taken port fails before anything is made.

        Raises InvalidArgument (syntax), Conflict (taken by another container or a host program).
        """
        from intermodal.network import ports as portlib

        return portlib.resolve(self._requests(ports), self._taken(container_id))

    def attach(self, container_id: str, netns: str | os.PathLike, networks: Sequence[EndpointRequest] | None = None,
               ports: Sequence[str | PortRequest] = (), *, name: str = "", hostname: str | None = None,
               hosts_path: str | os.PathLike | None = None, resolv_path: str | os.PathLike | None = None,
               extra_hosts: Iterable[str] = (), dns: Sequence[str] = (), dns_search: Sequence[str] | None = None,
               dns_options: Sequence[str] | None = None) -> list[EndpointRecord]:
        """Join the container whose network namespace is *netns* to *networks* (default: `bridge`).

        Publishes *ports* on the first non-internal network and writes /etc/hosts and /etc/resolv.conf
        content to *hosts_path*/*resolv_path* (kept current later). Ports are checked first: a taken one
        raises Conflict before anything is created. On any failure everything made so far is removed.
        """
        from intermodal.network import endpoint
        from intermodal.network import hosts as hostlib

        # None: the default network; []: none at all (a container disconnected from all), name files only.
        requests = list(networks) if networks is not None else [EndpointRequest(self.store.config.default_name)]
        nets = [self.get(r.network) for r in requests]
        if len({n.id for n in nets}) != len(nets):
            raise InvalidArgument("a network is listed twice; give each network once")
        if self.store.container(container_id) is not None or self.endpoints(container_id):
            raise AlreadyExists(f"container {name or container_id[:12]} is already attached to networks; "
                                "use connect to add one, or detach first")
        extra = [list(hostlib.parse_add_host(h)) for h in extra_hosts]
        port_requests = self._requests(ports) if ports and nets else []  # no network: nothing to publish on
        if port_requests and all(n.internal for n in nets):
            raise InvalidArgument("ports cannot be published from internal networks only; "
                                  "add a non-internal network or drop -p")
        record = ContainerNet(container_id, name, hostname or container_id[:12], [],
                              os.fspath(hosts_path) if hosts_path else None,
                              os.fspath(resolv_path) if resolv_path else None, extra, list(dns),
                              list(dns_search) if dns_search is not None else None,
                              list(dns_options) if dns_options is not None else None)
        self._reserve(record, port_requests)
        try:
            with endpoint.Session(netns) as session:
                endpoints = [self._join(net, req, container_id, netns, name, session)
                             for net, req in zip(nets, requests, strict=True)]
            joined = list(zip(nets, endpoints, strict=True))
            self._publish(container_id, record, joined)
            self.write_name_files(container_id, record, joined)
            for net in nets:
                self._refresh_network(net, skip=container_id)
        except BaseException:
            self.detach(container_id)
            raise
        return endpoints

    def detach(self, container_id: str, *, wait: bool = True) -> Pending | None:
        """Remove all of the container's endpoints, addresses, rules and records; absent parts are fine.

        With ``wait=False`` this is done by a thread and the caller gets a `Pending` to `wait()` on
        (it raises what the removal raised): deleting a veth pair waits for the kernel (an RCU grace
        period, ~15 ms and more on a busy host) and published ports cost two `nft` runs, time a caller
        such as `rm` can spend unmounting the container's filesystem instead. The order stays: rules,
        then each veth, then its address back to the pool.
        """
        def leave_all() -> None:
            record = self.store.container(container_id)
            if record is not None and record.proxy:
                from intermodal.network import proxy

                proxy.stop(*record.proxy)
            if record is not None and record.ports:  # rules exist only for recorded ports: skip nft otherwise
                self.firewall.remove_ports(container_id)
            for net, ep in self.endpoints(container_id):
                self._leave(net, ep)
                self._refresh_network(net, skip=container_id)
            self.store.delete_container(container_id)

        if wait:
            leave_all()
            return None
        return Pending(leave_all)

    def connect(self, network: str, container_id: str, netns: str | os.PathLike, *, ip: str | None = None,
                aliases: Sequence[str] = (), name: str = "") -> EndpointRecord:
        """Join a running container to one more network (`imod network connect`).

        Raises AlreadyExists (already connected), NetworkNotFound, Conflict (address taken).
        """
        net = self.get(network)
        if self.store.endpoint(net.id, container_id) is not None:
            raise AlreadyExists(f"container {name or container_id[:12]} is already connected to network {net.name}")
        from intermodal.network import endpoint

        record = self.store.container(container_id)
        if record is None:
            self.store.save_container(ContainerNet(container_id, name, container_id[:12]))
        with endpoint.Session(netns) as session:
            ep = self._join(net, EndpointRequest(net.name, ip, tuple(aliases)), container_id, netns,
                            name or (record.name if record else ""), session)
        self._publish(container_id)
        self.write_name_files(container_id)
        self._refresh_network(net, skip=container_id)
        return ep

    def disconnect(self, network: str, container_id: str) -> None:
        """Take the container off one network. Raises NetworkNotFound, NotFound (not connected)."""
        net = self.get(network)
        ep = self.store.endpoint(net.id, container_id)
        if ep is None:
            raise NetworkNotFound(f"container {container_id[:12]} is not connected to network {net.name}")
        self._leave(net, ep)
        if not net.internal:
            self._reroute(container_id)
        self._publish(container_id)
        self.write_name_files(container_id)
        self._refresh_network(net, skip=container_id)

    def _reroute(self, container_id: str) -> None:
        """After leaving the network whose gateway was the default route, the next one's becomes it (Docker's
        gateway endpoint moves too); a route already there stays. A namespace already gone needs none."""
        from intermodal.network import endpoint

        for net, ep in self.endpoints(container_id):
            if not net.internal:
                with contextlib.suppress(FileNotFoundError, NotFound):
                    endpoint.set_default_route(ep.netns, ep.ifname, net.gateway)
                    if ep.address6 and ep.gateway6:
                        endpoint.set_default_route(ep.netns, ep.ifname, ep.gateway6)
                return

    def write_name_files(self, container_id: str, record: ContainerNet | None = None,
                         joined: Sequence[tuple[NetworkRecord, EndpointRecord]] | None = None, *,
                         create: bool = True) -> None:
        """Rewrite the container's hosts and resolv.conf files from the current state (if it gave paths).

        *record* and *joined* (its networks and endpoints), when the caller has them, spare re-reading them.
        Rendering and writing happen under one lock for all name files: a container that joins renders
        its file after every earlier neighbour's endpoint is saved, or that neighbour's refresh rewrites it
        afterwards; without the lock a late write of a stale rendering could drop a neighbour. *create*:
        False for neighbours' files (see hosts.write_in_place).
        """
        from intermodal.network import hosts as hostlib

        record = record or self.store.container(container_id)
        if record is None:
            return
        with locked(self.store.names_lock):
            if record.hosts_path:
                hostlib.write_in_place(record.hosts_path, self.render_hosts(container_id, record, joined),
                                       create=create)
            if record.resolv_path:
                text = hostlib.render_resolv(record.dns or None, record.dns_search, record.dns_options,
                                             hostlib.host_resolv_conf())
                hostlib.write_in_place(record.resolv_path, text, create=create)

    def render_hosts(self, container_id: str, record: ContainerNet | None = None,
                     joined: Sequence[tuple[NetworkRecord, EndpointRecord]] | None = None) -> str:
        """The /etc/hosts text for the container: itself, --add-host, and its neighbours by name."""
        from intermodal.network import hosts as hostlib

        record = record or self.store.container(container_id) or ContainerNet(container_id, "", container_id[:12])
        spec = hostlib.HostsSpec(record.hostname, extra=[(n, ip) for n, ip in record.extra_hosts])
        peers = []
        for net, ep in (joined if joined is not None else self.endpoints(container_id)):
            spec.own += [hostlib.Peer(a, ()) for a in (ep.address, ep.address6) if a]
            if net.default:
                continue  # like Docker's default bridge: no name resolution between containers
            for other in self.store.endpoints(net.id):
                if other.container_id != container_id:
                    peers += [hostlib.Peer(a, tuple(self._names(other))) for a in (other.address, other.address6) if a]
        return hostlib.render_hosts(spec, peers)

    @staticmethod
    def setup_loopback(netns: str | os.PathLike) -> None:
        """`--network none`: only `lo`, up."""
        from intermodal.network import endpoint

        endpoint.setup_loopback(netns)

    # -- internals ------------------------------------------------------------------------------

    def _find(self, name_or_id: str) -> NetworkRecord | None:
        nets = self.store.networks()
        for net in nets:
            if net.name == name_or_id or net.id == name_or_id:
                return net
        if len(name_or_id) >= 3 and all(c in "0123456789abcdef" for c in name_or_id):
            matches = [n for n in nets if n.id.startswith(name_or_id)]
            if len(matches) > 1:
                raise Conflict(f"network id prefix {name_or_id} matches {len(matches)} networks; give more of the id")
            if matches:
                return matches[0]
        return None

    def _create(self, name: str, *, subnet, gateway, ip_range, internal, labels, options, driver,
                default: bool, subnet6: str | None = None, gateway6: str | None = None) -> NetworkRecord:
        from intermodal.network import bridge

        if driver != "bridge":
            raise InvalidArgument(f"network driver {driver!r} is not supported; use bridge")
        cfg = self.store.config
        with locked(self.store.lock):
            if self._find(name) is not None:
                raise AlreadyExists(f"network with name {name} already exists; pick another name or remove it")
            others = self.store.networks()
            if subnet is None:
                if gateway or ip_range:
                    raise InvalidArgument("--gateway and --ip-range need --subnet; give the subnet too")
                taken = bridge.host_routes() + [ipaddress.ip_network(n.subnet) for n in others]
                picked = ipam.pick_subnet(cfg.default_address_pools or ipam.DEFAULT_POOLS, taken)
                if picked is None:
                    raise Conflict("no free subnet left in the default pools; give --subnet explicitly")
                subnet = str(picked)
            pool = ipam.validate(subnet, gateway, ip_range)
            for other in others:
                if pool.subnet.overlaps(ipaddress.ip_network(other.subnet)):
                    raise Conflict(f"subnet {pool.subnet} overlaps {other.subnet} of network {other.name}; "
                                   "pick a subnet that does not")
                if subnet6 and other.subnet6 and ipaddress.ip_network(subnet6).overlaps(
                        ipaddress.ip_network(other.subnet6)):
                    raise Conflict(f"IPv6 subnet {subnet6} overlaps {other.subnet6} of network {other.name}; "
                                   "pick one that does not")
            if subnet6:
                for route in bridge.host_routes(family=10):
                    if route.prefixlen and ipaddress.ip_network(subnet6).overlaps(route):
                        raise Conflict(f"IPv6 subnet {subnet6} overlaps the host's route to {route}; "
                                       "pick another (a ULA such as fdXX:XXXX:XXXX::/64)")
            net_id = os.urandom(32).hex()  # not `secrets`: its hmac/OpenSSL import is on every run's path
            bridge_name = options.get(BRIDGE_NAME_OPTION) or (cfg.bridge_prefix + net_id)[:15]
            if any(o.bridge == bridge_name for o in others):
                raise AlreadyExists(f"bridge {bridge_name} is used by another network; pick another name")
            bridge.check_adoptable(bridge_name)  # before the record: never take over someone's interface
            mtu = int(options.get(MTU_OPTION, 1500))
            extra = {k: v for k, v in options.items() if k not in (BRIDGE_NAME_OPTION, MTU_OPTION)}
            record = NetworkRecord(
                id=net_id, name=name, bridge=bridge_name, subnet=str(pool.subnet), gateway=str(pool.gateway),
                ip_range=str(pool.ip_range) if ip_range else None, internal=internal, driver=driver,
                labels=dict(labels), options=extra, created=_now(), mtu=mtu,
                default=default, subnet6=subnet6, gateway6=gateway6)
            self.store.save_network(record)  # recorded first: a failure below is undone by _teardown
            try:
                self._bring_up(record)
            except BaseException:
                self._teardown(record)
                raise
            return record

    def _bring_up(self, net: NetworkRecord) -> None:
        from intermodal.network import bridge

        bridge.ensure_bridge(net.bridge, net.gateway, net.prefixlen, mtu=net.mtu, gateway6=net.gateway6,
                             prefixlen6=net.prefixlen6)
        bridge.enable_forwarding()
        if net.subnet6:
            bridge.enable_forwarding6()
        self.firewall.add_network(net.id, net.bridge, net.subnet, net.internal, net.subnet6)

    def _teardown(self, net: NetworkRecord) -> None:
        from intermodal.network import bridge

        self.firewall.remove_network(net.id, net.bridge)
        bridge.remove_bridge(net.bridge)
        self.store.delete_network(net.id)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.store.network_lock(net.id))
        if not self.store.networks():  # like Docker, no rules of ours stay once no network needs them
            self.firewall.delete_table()

    def _ipam(self, net: NetworkRecord) -> ipam.Ipam:
        pool = ipam.validate(net.subnet, net.gateway, net.ip_range)
        return ipam.Ipam(self.store.ipam_state(net.id), self.store.network_lock(net.id), pool, net.name)

    def _ipam6(self, net: NetworkRecord) -> ipam.Ipam | None:
        if not net.subnet6:
            return None
        pool = ipam.validate6(net.subnet6, net.gateway6)
        return ipam.Ipam(self.store.ipam6_state(net.id), self.store.network_lock(net.id), pool, net.name)

    def _join(self, net: NetworkRecord, req: EndpointRequest, container_id: str, netns, name: str,
              session) -> EndpointRecord:
        from intermodal.network import endpoint

        if req.ip is not None and net.default:
            raise InvalidArgument("a static --ip needs a user-defined network (with --subnet), not the default one")
        for alias in req.aliases:
            check_name(alias, "network alias")
        bridge_index = session.bridge_index(net.bridge)
        if bridge_index is None:  # e.g. after a reboot: the record outlives the kernel state
            self._bring_up(net)
            bridge_index = session.bridge_index(net.bridge)
            if bridge_index is None:
                raise NetworkError(f"bridge {net.bridge} vanished right after it was made; retry the command")
        address = self._ipam(net).allocate(container_id, req.ip)
        ipam6 = self._ipam6(net)
        try:
            address6 = ipam6.allocate(container_id) if ipam6 else ""
        except BaseException:
            self._ipam(net).release(address, container_id)
            raise
        ep = EndpointRecord(
            container_id=container_id, network_id=net.id, name=name, aliases=list(req.aliases), address=address,
            prefixlen=net.prefixlen, gateway=net.gateway, mac=endpoint.mac_for(address),
            host_ifname=endpoint.host_ifname(self.store.config.veth_prefix, container_id, net.id),
            ifname=session.next_ifname(), netns=os.fspath(netns), id=os.urandom(32).hex(),
            address6=address6, prefixlen6=net.prefixlen6 if address6 else 0, gateway6=net.gateway6 or "")
        self.store.save_endpoint(ep)  # recorded before the veth exists, so detach finds it on failure
        link = endpoint.Link(ep.host_ifname, net.bridge, address, net.prefixlen,
                             None if net.internal else net.gateway, net.mtu, ep.mac, address6 or None,
                             ep.prefixlen6, None if net.internal or not address6 else net.gateway6)
        try:
            session.plug(link, ep.ifname, bridge_index)
        except BaseException:
            self._leave(net, ep, unplug=False)  # plug removed its half-made veth; return the address and record
            raise
        return ep

    def _leave(self, net: NetworkRecord, ep: EndpointRecord, *, unplug: bool = True) -> None:
        from intermodal.network import endpoint

        if unplug:
            endpoint.unplug(ep.host_ifname)
        self._ipam(net).release(ep.address, ep.container_id)
        ipam6 = self._ipam6(net)
        if ipam6 and ep.address6:
            ipam6.release(ep.address6, ep.container_id)
        self.store.delete_endpoint(net.id, ep.container_id)

    def _requests(self, ports: Sequence[str | PortRequest]) -> list[PortRequest]:
        from intermodal.network import ports as portlib

        out: list[PortRequest] = []
        for item in ports:
            out += portlib.parse(item) if isinstance(item, str) else [item]
        return out

    def _taken(self, container_id: str) -> list[tuple[Binding, str]]:
        from intermodal.network.ports import Binding

        return [(Binding.from_json(p), c.name or c.container_id[:12])
                for c in self.store.containers() if c.container_id != container_id for p in c.ports]

    def _reserve(self, record: ContainerNet, requests: list[PortRequest]) -> None:
        """Pick host ports and record them in one locked step: no port is handed out twice."""
        if not requests:
            self.store.save_container(record)
            return
        from intermodal.network import ports as portlib

        with locked(self.store.ports_lock):
            bindings = portlib.resolve(requests, self._taken(record.container_id))
            record.ports = [b.to_json() for b in bindings]
            self.store.save_container(record)

    def _publish(self, container_id: str, record: ContainerNet | None = None,
                 joined: Sequence[tuple[NetworkRecord, EndpointRecord]] | None = None) -> None:
        """(Re)write the container's DNAT rules to its first non-internal endpoint, or drop them.

        Without published ports nft is not run at all: the network's own rules exist since its creation.
        """
        if record is None:
            bindings = self.published_ports(container_id)
        elif record.ports:
            from intermodal.network.ports import Binding

            bindings = [Binding.from_json(p) for p in record.ports]
        else:
            bindings = []
        if not bindings:
            return
        from intermodal.network.nftables import PortRule

        joined = joined if joined is not None else self.endpoints(container_id)
        target = next((ep for net, ep in joined if not net.internal), None)
        self._proxy(container_id, record, bindings, target)
        if target is None:
            self.firewall.remove_ports(container_id)
            return
        self.firewall.add_ports(container_id, [PortRule(b.host_ip, b.host_port, b.proto, target.address,
                                                        b.container_port, target.address6) for b in bindings])

    def _proxy(self, container_id: str, record: ContainerNet | None, bindings: Sequence[Binding],
               target: EndpointRecord | None) -> None:
        """[::1] for wildcard TCP publications of a dual-stack endpoint: a userland proxy (see proxy.py),
        replaced when the target changes, ended when there is none."""
        from intermodal.network import proxy

        record = record or self.store.container(container_id)
        pairs = [(b.host_port, target.address6, b.container_port) for b in bindings
                 if target is not None and target.address6 and b.proto == "tcp" and b.host_ip in ("", "0.0.0.0")]
        if record is None or not (pairs or record.proxy):
            return  # the common case: IPv4 only, nothing to start or stop
        if record.proxy:
            proxy.stop(*record.proxy)
            record.proxy = None
        if pairs:
            started = proxy.start(pairs)
            record.proxy = list(started) if started else None
        self.store.save_container(record)

    def _refresh_network(self, net: NetworkRecord, *, skip: str) -> None:
        """Neighbours' hosts files follow a join or leave (user-defined networks only)."""
        if net.default:
            return
        for ep in self.store.endpoints(net.id):
            if ep.container_id != skip:
                with contextlib.suppress(FileNotFoundError):  # its directory or files are gone (rm)
                    self.write_name_files(ep.container_id, create=False)

    @staticmethod
    def _names(ep: EndpointRecord) -> list[str]:
        names = [ep.name] if ep.name else []
        return names + [a for a in ep.aliases if a not in names] + [ep.container_id[:12]]


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()
