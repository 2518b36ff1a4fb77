"""Networks: a declaration against the network's record.

The engine picks a subnet when none is given, so for networks an option left
out is not managed (it is never compared); a declared option that differs
recreates the network, which the engine refuses while containers use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from intermodal.declare import normalise as norm
from intermodal.declare.compare import equal
from intermodal.declare.options import comparison_modes
from intermodal.declare.plan import Difference, Plan
from intermodal.errors import InvalidArgument

if TYPE_CHECKING:
    from intermodal.engine import Engine
    from intermodal.network.store import NetworkRecord

BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
MTU_OPTION = "com.docker.network.driver.mtu"


@dataclass(frozen=True)
class Declared:
    name: str
    state: str = "present"
    values: Mapping[str, Any] = field(default_factory=dict)  # only what the user gave, normalised
    force: bool = False
    modes: Mapping[str, str] = field(default_factory=dict)
    connected: tuple[str, ...] | None = None  # None: attachments are not managed
    appends: bool = False


def declare(options: Mapping[str, Any]) -> Declared:
    o = {k: v for k, v in options.items() if v is not None}
    if not o.get("name"):
        raise InvalidArgument("name is required: give the network's name")
    values: dict[str, Any] = {}
    if "enable_ipv6" in o:
        if o["enable_ipv6"] and not _dual_stack():
            raise InvalidArgument("enable_ipv6: IPv6 networks are not supported by the engine yet; leave it out")
        values["ipv6"] = bool(o["enable_ipv6"])
    if "driver" in o:
        if o["driver"] != "bridge":
            raise InvalidArgument(f"driver {o['driver']!r} is not supported; use bridge")
        values["driver"] = "bridge"
    if "driver_options" in o:
        values["options"] = norm.string_map(o["driver_options"], "driver_options")
    if "internal" in o:
        values["internal"] = bool(o["internal"])
    if "labels" in o:
        values["labels"] = norm.string_map(o["labels"], "labels")
    pools = [_pool(p) for p in o.get("ipam_config") or []]
    v4 = [p for p in pools if ":" not in p.get("subnet", "")]
    v6 = [p for p in pools if ":" in p.get("subnet", "")]
    if len(v4) > 1 or len(v6) > 1:
        raise InvalidArgument("ipam_config: the engine takes one IPv4 and one IPv6 pool per network; give one of each")
    if v4:
        values["ipam"] = v4[0]
    if v6:
        if not values.get("ipv6"):
            raise InvalidArgument("ipam_config: an IPv6 subnet needs enable_ipv6: true (as docker_network)")
        if v6[0].get("iprange"):
            raise InvalidArgument("ipam_config: an IPv6 pool takes subnet and gateway only; leave iprange out")
        values["ipam6"] = v6[0]
    connected = tuple(dict.fromkeys(str(c) for c in o["connected"])) if "connected" in o else None
    return Declared(o["name"], o.get("state", "present"), values, bool(o.get("force")),
                    comparison_modes("network", o.get("comparisons")), connected, bool(o.get("appends")))


def _dual_stack() -> bool:
    """The engine's networks take an IPv6 pool beside the IPv4 one."""
    from intermodal.network.store import NetworkRecord

    return "subnet6" in NetworkRecord.__dataclass_fields__


def _pool(pool: Mapping[str, Any]) -> dict[str, str]:
    unknown = sorted(k for k, v in pool.items() if v is not None and k not in ("subnet", "gateway", "iprange"))
    if unknown:
        raise InvalidArgument(f"ipam_config: {', '.join(unknown)} not supported; give subnet, gateway, iprange")
    out = {}
    if pool.get("subnet"):
        out["subnet"] = norm.cidr(pool["subnet"])
    if pool.get("gateway"):
        out["gateway"] = norm.ip(pool["gateway"])
    if pool.get("iprange"):
        out["iprange"] = norm.cidr(pool["iprange"])
    if not out.get("subnet") and out:
        raise InvalidArgument("ipam_config: gateway and iprange need a subnet; give the subnet too")
    return out


def expected(declared: Declared) -> dict[str, Any]:
    """Only what the user gave: the engine's own choices (subnet, gateway, bridge name) are not managed."""
    return dict(declared.values)


def actual(record: NetworkRecord) -> dict[str, Any]:
    """The record in the declaration's terms; the bridge name and MTU are driver options, as in Docker."""
    pool = {"subnet": norm.cidr(record.subnet), "gateway": norm.ip(record.gateway)}
    if record.ip_range:
        pool["iprange"] = norm.cidr(record.ip_range)
    subnet6 = getattr(record, "subnet6", None)
    pool6 = {"subnet": norm.cidr(subnet6), "gateway": norm.ip(record.gateway6)} if subnet6 else {}
    return {"driver": record.driver, "internal": record.internal, "labels": dict(record.labels),
            "ipv6": bool(subnet6), "ipam6": pool6,
            "options": {BRIDGE_NAME_OPTION: record.bridge, MTU_OPTION: str(record.mtu), **record.options},
            "ipam": pool}


def compare(values: Mapping[str, Any], current: Mapping[str, Any], modes: Mapping[str, str]) -> list[Difference]:
    out = []
    for name, want in values.items():
        have = current.get(name)
        mode = modes.get(name, "strict")
        if name in ("ipam", "ipam6", "options"):
            have = {k: v for k, v in (have or {}).items() if k in want or _user_choice(name, k, mode)}
        if not equal(want, have, mode):
            out.append(Difference(name, want, have))
    return out


def _user_choice(name: str, key: str, mode: str) -> bool:
    """Pool keys and the bridge name and MTU left out are the engine's choice; other options the user's."""
    return mode == "strict" and name == "options" and key not in (BRIDGE_NAME_OPTION, MTU_OPTION)


def plan(declared: Declared, current: NetworkRecord | None, attached: Set[str] = frozenset()) -> Plan:
    """*attached*: names of the containers connected now (`read_attached`). As community.docker's
    docker_network, a network that goes (absent, or recreated) has its containers disconnected
    first; a recreated one then connects those of `connected` again."""
    leave = tuple(f"disconnect:{c}" for c in sorted(attached))
    was = frozenset(attached)
    if declared.state == "absent":
        return Plan((*leave, "remove"), (Difference("state", "absent", "present"),)) if current else Plan()
    if current is None:
        base = Plan(("create",), (Difference("state", "present", "absent"),))
        attached = frozenset()
    else:
        differences = compare(expected(declared), actual(current), declared.modes)
        base = Plan((*leave, "recreate") if differences or declared.force else (), tuple(differences))
        if base.changed:
            attached = frozenset()  # a recreated network starts empty
    return _attachments(declared, base, attached, was)


def _attachments(declared: Declared, base: Plan, attached: Set[str], was: Set[str] = frozenset()) -> Plan:
    """connect:<name> for each declared container not attached; disconnect:<name> for the others (not appends).
    *was*: those attached before a recreate (which disconnects them all), for the difference."""
    if declared.connected is None:
        return base
    want = set(declared.connected)
    connect = [c for c in declared.connected if c not in attached]
    disconnect = [] if declared.appends else sorted(set(attached) - want)
    if not connect and not disconnect:
        return base
    have = frozenset(was if base.has("recreate") else attached)
    declared_set = frozenset(want | have) if declared.appends else frozenset(want)
    differences = base.differences
    if declared_set != have:
        differences = (*differences, Difference("connected", declared_set, have))
    return Plan(base.actions + tuple(f"disconnect:{c}" for c in disconnect) + tuple(f"connect:{c}" for c in connect),
                differences, base.warnings)


def read(engine: Engine, name: str) -> NetworkRecord | None:
    networks = engine.networks
    return networks.get(name) if networks.exists(name) else None


def read_attached(engine: Engine, declared: Declared) -> dict[str, frozenset[str]]:
    """`plan`'s keyword arguments for the attachments: the names of the connected containers."""
    if not engine.networks.exists(declared.name):
        return {}
    containers = engine.networks.inspect(declared.name)["Containers"].values()
    return {"attached": frozenset(c["Name"] for c in containers)}


def create_args(declared: Declared) -> dict[str, Any]:
    v = declared.values
    pool = v.get("ipam") or {}
    args = {"subnet": pool.get("subnet"), "gateway": pool.get("gateway"), "ip_range": pool.get("iprange"),
            "internal": bool(v.get("internal")), "labels": dict(v.get("labels") or {}),
            "options": dict(v.get("options") or {}), "driver": v.get("driver", "bridge")}
    if v.get("ipv6"):
        pool6 = v.get("ipam6") or {}
        args.update(ipv6=True, subnet6=pool6.get("subnet"), gateway6=pool6.get("gateway"))
    return args


def apply(engine: Engine, declared: Declared, the_plan: Plan) -> None:
    networks = engine.networks
    for action in the_plan.actions:
        kind, _, container = action.partition(":")
        if kind in ("remove", "recreate"):
            networks.remove(declared.name)
        if kind in ("create", "recreate"):
            networks.create(declared.name, **create_args(declared))
        elif kind == "connect":
            _connect(engine, declared.name, container)
        elif kind == "disconnect":
            _disconnect(engine, declared.name, container)


def _disconnect(engine: Engine, network: str, name: str) -> None:
    """Off the network, and out of the container's configuration where the engine keeps one."""
    containers = engine.containers
    if hasattr(containers, "disconnect"):
        containers.disconnect(name, network, force=True)
    else:
        engine.networks.disconnect(network, containers.get(name).id)


def _connect(engine: Engine, network: str, name: str) -> None:
    from intermodal.errors import IncorrectState

    if hasattr(engine.containers, "connect"):  # recorded for its next start too, running or not
        engine.containers.connect(name, network)
        return
    c = engine.containers.get(name)
    if c.spec.network in ("none", "host"):
        raise InvalidArgument(f"container {name} has network_mode {c.spec.network}: it cannot join networks; "
                              "give it a bridge network (network_mode or networks)")
    pid = int((c.state or {}).get("Pid") or 0)
    if c.status != "running" or not pid:
        raise IncorrectState(f"container {name}", c.status, "running (start it before connecting it to a network)")
    engine.networks.connect(network, c.id, f"/proc/{pid}/ns/net", name=c.name)
