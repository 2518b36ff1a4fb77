"""Network state on disk, under the engine root.

    networks/config.json                   host-level settings (table, default bridge, name prefixes)
    networks/<id>/network.json             a network's record
    networks/<id>/ipam.json                its address allocations (ipam.py)
    networks/<id>/ipam6.json               its IPv6 allocations (dual-stack networks)
    networks/<id>/endpoints/<cid>.json     one container's endpoint on it
    networks/containers/<cid>.json         a container's ports and name files
    locks/networks.lock                    create/remove of networks (names stay unique)
    locks/network-<id>.lock                a network's IPAM and endpoints
    locks/ports.lock                       published host ports (no port handed twice)
    locks/nftables.lock                    our nftables table
    locks/network-names.lock               rendering and writing containers' hosts files

Network records are written durably (fsync). Endpoint, per-container and
IPAM records describe runtime state (veths, namespaces under the run root)
that a power loss or kernel crash takes away anyway, so they are replaced
atomically but not fsynced (each fsync costs milliseconds on every `imod
run`); a record such a crash left empty or torn reads as absent.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

from intermodal.fsutil import atomic_write_json, read_json, remove_tree
from intermodal.paths import EnginePaths


@dataclass(frozen=True)
class NetworkConfig:
    """Host-level settings; tests and extra engine roots on one host set their own in config.json."""

    table: str = "intermodal"
    default_name: str = "bridge"
    default_bridge: str = "imod0"
    default_subnet: str | None = None  # None: the first of default_address_pools clear of host routes
    # Subnets that the default network and networks made without --subnet are taken from, in order
    # (Docker's default-address-pools); None: ipam.DEFAULT_POOLS.
    default_address_pools: tuple[str, ...] | None = None
    bridge_prefix: str = "imbr-"
    veth_prefix: str = "imv"

    @classmethod
    def load(cls, path: Path) -> NetworkConfig:
        data = read_json(path, {}) or {}
        known = {f.name for f in fields(cls)}
        config = {k: v for k, v in data.items() if k in known}
        if config.get("default_address_pools") is not None:
            config["default_address_pools"] = tuple(config["default_address_pools"])
        return cls(**config)


@dataclass
class NetworkRecord:
    id: str
    name: str
    bridge: str
    subnet: str
    gateway: str
    ip_range: str | None = None
    internal: bool = False
    driver: str = "bridge"
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    created: str = ""
    mtu: int = 1500
    default: bool = False  # the predefined `bridge` network: no names, cannot be removed
    subnet6: str | None = None  # dual stack (`--ipv6`): the IPv6 subnet beside the IPv4 one
    gateway6: str | None = None

    @property
    def prefixlen6(self) -> int:
        return int(self.subnet6.split("/")[1]) if self.subnet6 else 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NetworkRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def prefixlen(self) -> int:
        return int(self.subnet.split("/")[1])


@dataclass
class EndpointRecord:
    container_id: str
    network_id: str
    name: str  # the container's name
    aliases: list[str]
    address: str
    prefixlen: int
    gateway: str
    mac: str
    host_ifname: str
    ifname: str
    netns: str
    id: str = ""
    address6: str = ""  # on a dual-stack network
    prefixlen6: int = 0
    gateway6: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EndpointRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ContainerNet:
    """Per container: its published ports and the name files the engine asked us to keep current."""

    container_id: str
    name: str
    hostname: str
    ports: list[dict] = field(default_factory=list)  # ports.Binding.to_json()
    hosts_path: str | None = None
    resolv_path: str | None = None
    extra_hosts: list[list[str]] = field(default_factory=list)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] | None = None
    dns_options: list[str] | None = None
    proxy: list[int] | None = None  # [pid, start time] of its [::1] proxy (proxy.py), if it has one

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContainerNet:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def write_volatile(path: Path, value: Any) -> None:
    """Replace *path* atomically (readers see the old or the new record), without fsync (see above)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(value, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_volatile(path: Path) -> Any:
    """A record written by `write_volatile`; missing, empty or torn (after a crash): None."""
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def _records(folder: Path) -> list[str]:
    """The JSON records of a folder, without atomic_write's temporary files (".name.XXXX.tmp")."""
    return sorted(e for e in os.listdir(folder) if e.endswith(".json") and not e.startswith("."))


class NetworkStore:
    def __init__(self, paths: EnginePaths) -> None:
        self.paths = paths
        self.root = paths.networks

    @cached_property
    def config(self) -> NetworkConfig:
        return NetworkConfig.load(self.root / "config.json")

    # -- locks ---------------------------------------------------------------------------------

    @property
    def lock(self) -> Path:
        return self.paths.locks / "networks.lock"

    def network_lock(self, network_id: str) -> Path:
        return self.paths.locks / f"network-{network_id}.lock"

    @property
    def ports_lock(self) -> Path:
        return self.paths.locks / "ports.lock"

    @property
    def names_lock(self) -> Path:
        return self.paths.locks / "network-names.lock"

    @property
    def nft_lock(self) -> Path:
        return self.paths.locks / "nftables.lock"

    # -- networks ------------------------------------------------------------------------------

    def network_dir(self, network_id: str) -> Path:
        return self.root / network_id

    def ipam_state(self, network_id: str) -> Path:
        return self.network_dir(network_id) / "ipam.json"

    def ipam6_state(self, network_id: str) -> Path:
        return self.network_dir(network_id) / "ipam6.json"

    def networks(self) -> list[NetworkRecord]:
        out = []
        with contextlib.suppress(FileNotFoundError):
            for entry in sorted(os.listdir(self.root)):
                if entry == "containers" or not (self.root / entry).is_dir():
                    continue
                data = read_json(self.root / entry / "network.json")
                if data:
                    out.append(NetworkRecord.from_json(data))
        return out

    def save_network(self, record: NetworkRecord) -> None:
        atomic_write_json(self.network_dir(record.id) / "network.json", record.to_json())

    def delete_network(self, network_id: str) -> None:
        remove_tree(self.network_dir(network_id))

    # -- endpoints -----------------------------------------------------------------------------

    def endpoints(self, network_id: str) -> list[EndpointRecord]:
        folder = self.network_dir(network_id) / "endpoints"
        out = []
        with contextlib.suppress(FileNotFoundError):
            for entry in _records(folder):
                data = read_volatile(folder / entry)
                if data:
                    out.append(EndpointRecord.from_json(data))
        return out

    def endpoint(self, network_id: str, container_id: str) -> EndpointRecord | None:
        data = read_volatile(self.network_dir(network_id) / "endpoints" / f"{container_id}.json")
        return EndpointRecord.from_json(data) if data else None

    def save_endpoint(self, ep: EndpointRecord) -> None:
        write_volatile(self.network_dir(ep.network_id) / "endpoints" / f"{ep.container_id}.json", ep.to_json())

    def delete_endpoint(self, network_id: str, container_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.network_dir(network_id) / "endpoints" / f"{container_id}.json")

    # -- containers ----------------------------------------------------------------------------

    def container(self, container_id: str) -> ContainerNet | None:
        data = read_volatile(self.root / "containers" / f"{container_id}.json")
        return ContainerNet.from_json(data) if data else None

    def containers(self) -> list[ContainerNet]:
        folder = self.root / "containers"
        out = []
        with contextlib.suppress(FileNotFoundError):
            for entry in _records(folder):
                data = read_volatile(folder / entry)
                if data:
                    out.append(ContainerNet.from_json(data))
        return out

    def save_container(self, record: ContainerNet) -> None:
        write_volatile(self.root / "containers" / f"{record.container_id}.json", record.to_json())

    def delete_container(self, container_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.root / "containers" / f"{container_id}.json")
