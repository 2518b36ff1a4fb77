"""Firewall rules for networks and published ports, through the `nft` command in JSON mode.

Everything lives in one table of our own (``inet intermodal`` by default), so
we never touch other tools' rules, and every rule carries a comment naming
the network or container it belongs to, so removal deletes exactly those.

Chains (made once, with the table):

- ``prerouting`` / ``output`` (nat): packets to a local address jump to
  ``publish``, which holds one DNAT rule per published port. ``prerouting``
  serves other hosts and other namespaces, ``output`` the host itself
  (127.0.0.1:port and the host's own addresses).
- ``postrouting`` (nat): masquerade a network's subnet going out of any
  other interface (outbound NAT; not for --internal networks); masquerade
  127.0.0.0/8 sources leaving through a bridge (the host's 127.0.0.1
  connections to published ports: the container must answer an address it
  can route to; the bridge has route_localnet set so the kernel routes such
  packets at all, see bridge.py); and masquerade hairpin traffic (a
  container reaching a port published by a neighbour on its own bridge).
- ``forward`` (filter): DNATed connections are accepted (publishing a port
  is the user's permission); then each network drops what leaves its bridge
  for another of our bridges (isolation), and an --internal network drops
  everything leaving or entering its bridge from elsewhere (no route out).

Dual-stack networks get the same for IPv6 (masquerade of their IPv6 subnet;
a wildcard publication DNATs IPv6 to the container's IPv6 address), except
[::1]: IPv6 has no route_localnet, and the kernel drops the container's
answer once conntrack turns its destination back into ::1 on a
non-loopback device; as Docker, we serve [::1] with a userland proxy
(proxy.py), so the rule leaves ::1 alone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intermodal.errors import NetworkError
from intermodal.locking import locked

FAMILY = "inet"


@dataclass(frozen=True)
class PortRule:
    """One DNAT: traffic to host_ip:host_port/proto goes to container_ip:container_port."""

    host_ip: str  # "" or "0.0.0.0" for every local address
    host_port: int
    proto: str
    container_ip: str
    container_port: int
    container_ip6: str = ""  # dual stack: IPv6 traffic to the port goes here (none: IPv4 only)


def network_tag(network_id: str) -> str:
    return f"imod network {network_id}"


def container_tag(container_id: str) -> str:
    return f"imod container {container_id}"


# -- expression helpers (the JSON forms `nft -j list` prints) ---------------------------------------

def _match(left: Any, right: Any, op: str = "==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def _meta(key: str) -> dict:
    return {"meta": {"key": key}}


def _payload(proto: str, field: str) -> dict:
    return {"payload": {"protocol": proto, "field": field}}


def _prefix(cidr: str) -> dict:
    addr, _, plen = cidr.partition("/")
    return {"prefix": {"addr": addr, "len": int(plen)}}


def _local_daddr() -> dict:
    return _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")


# -- rule sets, pure -------------------------------------------------------------------------------

def base_objects(table: str) -> list[dict]:
    """The table, the bridges set, the chains and the untagged base rules."""
    t = {"family": FAMILY, "table": table}

    def chain(name: str, kind: str | None = None, hook: str | None = None, prio: int = 0) -> dict:
        c: dict[str, Any] = {"family": FAMILY, "table": table, "name": name}
        if kind:
            c.update(type=kind, hook=hook, prio=prio, policy="accept")
        return {"add": {"chain": c}}

    def rule(chain_name: str, *expr: dict) -> dict:
        return {"add": {"rule": {**t, "chain": chain_name, "expr": list(expr)}}}

    return [
        {"add": {"table": {"family": FAMILY, "name": table}}},
        {"add": {"set": {**t, "name": "bridges", "type": "ifname"}}},
        chain("publish"),
        chain("prerouting", "nat", "prerouting", -100),
        chain("output", "nat", "output", -100),
        chain("postrouting", "nat", "postrouting", 100),
        chain("forward", "filter", "forward", 0),
        rule("prerouting", _local_daddr(), {"jump": {"target": "publish"}}),
        rule("output", _local_daddr(), {"jump": {"target": "publish"}}),
        rule("forward", _match({"ct": {"key": "status"}}, "dnat", "in"), {"accept": None}),
    ]


def network_rules(table: str, network_id: str, bridge: str, subnet: str, internal: bool,
                  subnet6: str | None = None) -> list[dict]:
    tag = network_tag(network_id)

    def rule(chain_name: str, *expr: dict) -> dict:
        return {"add": {"rule": {"family": FAMILY, "table": table, "chain": chain_name, "expr": list(expr),
                                 "comment": tag}}}

    iif, oif = _meta("iifname"), _meta("oifname")
    saddr = _payload("ip", "saddr")
    rules = [{"add": {"element": {"family": FAMILY, "table": table, "name": "bridges", "elem": [bridge]}}}]
    if internal:
        rules += [rule("forward", _match(iif, bridge), _match(oif, bridge, "!="), {"drop": None}),
                  rule("forward", _match(oif, bridge), _match(iif, bridge, "!="), {"drop": None})]
    else:
        rules += [rule("forward", _match(iif, bridge), _match(oif, bridge, "!="), _match(oif, "@bridges"),
                       {"drop": None}),
                  rule("postrouting", _match(saddr, _prefix(subnet)), _match(oif, bridge, "!="),
                       {"masquerade": None})]
        if subnet6:
            rules.append(rule("postrouting", _match(_payload("ip6", "saddr"), _prefix(subnet6)),
                              _match(oif, bridge, "!="), {"masquerade": None}))
    rules += [rule("postrouting", _match(saddr, _prefix("127.0.0.0/8")), _match(oif, bridge), {"masquerade": None}),
              rule("postrouting", _match(iif, bridge), _match(oif, bridge),
                   _match({"ct": {"key": "status"}}, "dnat", "in"), {"masquerade": None})]
    return rules


def port_rules(table: str, container_id: str, ports: list[PortRule]) -> list[dict]:
    tag = container_tag(container_id)
    rules = []
    for p in ports:
        targets: list[tuple[list[dict], str, str]] = []
        if p.host_ip in ("", "0.0.0.0"):
            targets.append(([_match(_meta("nfproto"), "ipv4")], "ip", p.container_ip))
            if p.container_ip6:  # a wildcard publication answers on the host's IPv6 addresses too, as Docker's;
                # [::1] is left to the userland proxy (proxy.py): DNAT from ::1 cannot work
                targets.append(([_match(_meta("nfproto"), "ipv6"), _match(_payload("ip6", "daddr"), "::1", "!=")],
                                "ip6", p.container_ip6))
        elif ":" in p.host_ip:
            if p.container_ip6:
                targets.append(([_match(_payload("ip6", "daddr"), p.host_ip)], "ip6", p.container_ip6))
        else:
            targets.append(([_match(_payload("ip", "daddr"), p.host_ip)], "ip", p.container_ip))
        for where, family, address in targets:
            expr = [*where, _match(_payload(p.proto, "dport"), p.host_port),
                    {"dnat": {"family": family, "addr": address, "port": p.container_port}}]
            rules.append({"add": {"rule": {"family": FAMILY, "table": table, "chain": "publish", "expr": expr,
                                           "comment": tag}}})
    return rules


def deletions(listing: list[dict], tag: str) -> list[dict]:
    """Delete commands for every rule of the listing whose comment is *tag*."""
    out = []
    for item in listing:
        r = item.get("rule")
        if r and r.get("comment") == tag:
            out.append({"delete": {"rule": {"family": r["family"], "table": r["table"], "chain": r["chain"],
                                            "handle": r["handle"]}}})
    return out


# -- the nft command ------------------------------------------------------------------------------

class Firewall:
    """Our nftables table; every change runs under one file lock so base rules are never made twice."""

    def __init__(self, table: str, lock: Path) -> None:
        self.table, self.lock = table, lock

    def add_network(self, network_id: str, bridge: str, subnet: str, internal: bool,
                    subnet6: str | None = None) -> None:
        with locked(self.lock):
            listing = self._list()
            base = self._base_if_missing(listing)  # when made (again), it holds no old rules to delete
            old = [] if base else deletions(listing or [], network_tag(network_id))  # re-adding replaces
            self._run(base + old + network_rules(self.table, network_id, bridge, subnet, internal, subnet6))

    def remove_network(self, network_id: str, bridge: str) -> None:
        with locked(self.lock):
            listing = self._list()
            if listing is None:
                return
            batch = deletions(listing, network_tag(network_id))
            if bridge in self._bridges(listing):
                batch.append({"delete": {"element": {"family": FAMILY, "table": self.table, "name": "bridges",
                                                     "elem": [bridge]}}})
            if batch:
                self._run(batch)

    def add_ports(self, container_id: str, ports: list[PortRule]) -> None:
        """One listing and one batch (one `nft -f` transaction): base objects if missing, old rules out, new in."""
        if not ports:
            return
        with locked(self.lock):
            listing = self._list()
            base = self._base_if_missing(listing)
            old = [] if base else deletions(listing or [], container_tag(container_id))
            self._run(base + old + port_rules(self.table, container_id, ports))

    def remove_ports(self, container_id: str) -> None:
        with locked(self.lock):
            listing = self._list()
            batch = deletions(listing or [], container_tag(container_id))
            if batch:
                self._run(batch)

    def rules(self) -> list[dict]:
        """Our table's rules as `nft -j` lists them (empty if the table does not exist)."""
        return [item["rule"] for item in (self._list() or []) if "rule" in item]

    def delete_table(self) -> None:
        with locked(self.lock):
            if self._list() is not None:
                self._run([{"delete": {"table": {"family": FAMILY, "name": self.table}}}])

    # -- internals -----------------------------------------------------------------------------

    def _base_if_missing(self, listing: list[dict] | None) -> list[dict]:
        """Commands that make the table, set and chains, unless *listing* shows them made already."""
        if listing is not None and any(i.get("chain", {}).get("name") == "forward" for i in listing):
            return []
        restart = [{"delete": {"table": {"family": FAMILY, "name": self.table}}}] if listing is not None else []
        return restart + base_objects(self.table)  # a half-made table (someone deleted chains): start over

    def _bridges(self, listing: list[dict]) -> set[str]:
        for item in listing:
            s = item.get("set")
            if s and s.get("name") == "bridges":
                elem = s.get("elem", [])
                return {e for e in elem if isinstance(e, str)}
        return set()

    def _list(self) -> list[dict] | None:
        proc = _nft(["-j", "list", "table", FAMILY, self.table])
        if proc.returncode != 0:
            if "No such file or directory" in proc.stderr:
                return None
            raise NetworkError(f"nft list table {FAMILY} {self.table} failed: {proc.stderr.strip()}; "
                               "check `nft list ruleset`")
        return json.loads(proc.stdout).get("nftables", [])

    def _run(self, commands: list[dict]) -> None:
        proc = _nft(["-j", "-f", "-"], json.dumps({"nftables": commands}))
        if proc.returncode != 0:
            raise NetworkError(f"nft could not change table {FAMILY} {self.table}: {proc.stderr.strip()}; "
                               "check that nftables is installed and the kernel has nf_tables")


def _nft(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("nft") or "/usr/sbin/nft"
    try:
        return subprocess.run([exe, *args], input=stdin, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise NetworkError("the `nft` command is missing; install nftables (scripts/setup does)") from None
    except subprocess.TimeoutExpired:
        raise NetworkError(f"nft {' '.join(args)} did not finish in 60s; check for a hung nft process") from None
