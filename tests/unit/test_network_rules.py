"""nftables rule generation (pure), exact removal by comment, and netlink error translation."""

from __future__ import annotations

import errno

import pytest

from intermodal.errors import AlreadyExists, InvalidArgument, NetworkError, NotFound
from intermodal.network import netlink, nftables
from intermodal.network.endpoint import host_ifname, mac_for


def _rules(batch: list[dict]) -> list[dict]:
    return [c["add"]["rule"] for c in batch if "rule" in c.get("add", {})]


def test_base_objects_make_table_set_chains_and_jumps():
    batch = nftables.base_objects("t")
    chains = {c["add"]["chain"]["name"]: c["add"]["chain"] for c in batch if "chain" in c.get("add", {})}
    assert set(chains) == {"publish", "prerouting", "output", "postrouting", "forward"}
    assert chains["output"]["hook"] == "output" and chains["output"]["type"] == "nat"
    assert chains["forward"]["type"] == "filter" and "hook" not in chains["publish"]
    jumps = [r["chain"] for r in _rules(batch) if any("jump" in e for e in r["expr"])]
    assert sorted(jumps) == ["output", "prerouting"]


@pytest.mark.parametrize(("internal", "masquerade_out", "drops"), [(False, True, 1), (True, False, 2)])
def test_network_rules(internal, masquerade_out, drops):
    rules = _rules(nftables.network_rules("t", "n1", "br1", "10.0.0.0/24", internal))
    assert all(r["comment"] == "imod network n1" for r in rules)
    assert sum(1 for r in rules if {"drop": None} in r["expr"]) == drops
    outbound = [r for r in rules if {"masquerade": None} in r["expr"] and
                {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "br1"}} in r["expr"]]
    assert bool(outbound) is masquerade_out
    localhost = [r for r in rules if {"prefix": {"addr": "127.0.0.0", "len": 8}} in
                 [e.get("match", {}).get("right") for e in r["expr"]]]
    assert len(localhost) == 1  # 127.0.0.1 -> published port always works


def test_port_rules_dnat_with_and_without_host_address():
    rules = _rules(nftables.port_rules("t", "c1", [
        nftables.PortRule("", 8080, "tcp", "10.0.0.2", 80),
        nftables.PortRule("127.0.0.1", 5353, "udp", "10.0.0.2", 53)]))
    assert [r["chain"] for r in rules] == ["publish", "publish"]
    assert rules[0]["expr"][-1] == {"dnat": {"family": "ip", "addr": "10.0.0.2", "port": 80}}
    assert rules[0]["expr"][0]["match"]["right"] == "ipv4"
    assert rules[1]["expr"][0]["match"]["right"] == "127.0.0.1"
    assert rules[1]["expr"][1]["match"]["left"] == {"payload": {"protocol": "udp", "field": "dport"}}
    assert all(r["comment"] == "imod container c1" for r in rules)


def test_deletions_pick_exactly_the_tagged_rules():
    listing = [
        {"table": {"family": "inet", "name": "t"}},
        {"rule": {"family": "inet", "table": "t", "chain": "publish", "handle": 5, "comment": "imod container c1"}},
        {"rule": {"family": "inet", "table": "t", "chain": "publish", "handle": 6, "comment": "imod container c10"}},
        {"rule": {"family": "inet", "table": "t", "chain": "forward", "handle": 7}},
    ]
    got = nftables.deletions(listing, nftables.container_tag("c1"))
    assert got == [{"delete": {"rule": {"family": "inet", "table": "t", "chain": "publish", "handle": 5}}}]


class FakeNetlinkError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@pytest.mark.parametrize(("code", "cls", "hint"), [
    (errno.EEXIST, AlreadyExists, "exists already"),
    (errno.ENODEV, NotFound, "gone"),
    (errno.EPERM, NetworkError, "needs root"),
    (errno.EOPNOTSUPP, NetworkError, "kernel lacks"),
    (errno.EBUSY, NetworkError, "retry"),
])
def test_translate(code, cls, hint):
    err = netlink._translate(FakeNetlinkError(code), "create veth", "imv123", "/proc/1/ns/net")
    assert type(err) is cls
    assert "create veth imv123 in network namespace /proc/1/ns/net" in str(err) and hint in str(err)


@pytest.mark.parametrize("name", ["", "x" * 16, "a/b", " eth0"])
def test_interface_names_are_checked(name):
    with pytest.raises(InvalidArgument):
        netlink.check_ifname(name)


def test_host_ifname_is_stable_unique_and_short():
    a = host_ifname("imv", "c" * 64, "n1")
    assert a == host_ifname("imv", "c" * 64, "n1") and len(a) == 15 and a.startswith("imv")
    assert a != host_ifname("imv", "c" * 64, "n2")


def test_mac_follows_the_address():
    assert mac_for("172.17.0.2") == "02:42:ac:11:00:02"


def test_importing_the_engine_does_not_import_pyroute2():
    import subprocess
    import sys

    code = "import sys, intermodal.engine as e; e.Engine('/nonexistent').networks; print('pyroute2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_dump_retries_an_interrupted_dump_a_bounded_number_of_times():
    from pyroute2.netlink.exceptions import NetlinkDumpInterrupted

    calls = []

    def flaky(fail: int):
        def op():
            calls.append(1)
            if len(calls) <= fail:
                raise NetlinkDumpInterrupted()
            return iter(["ok"])
        return op

    assert netlink.dump(flaky(2), what="list links") == ["ok"] and len(calls) == 3
    calls.clear()
    with pytest.raises(NetworkError, match="kept changing"):
        netlink.dump(flaky(99), what="list links")
    assert len(calls) == netlink.DUMP_RETRIES


def test_delete_counts_gone_as_done_and_raises_the_rest():
    from pyroute2.netlink.exceptions import NetlinkError

    def failing(code: int):
        def op():
            raise NetlinkError(code)
        return op

    for code in netlink.GONE:
        assert netlink.delete(failing(code), what="delete veth", device="x") is False
    with pytest.raises(NetworkError, match="needs root"):
        netlink.delete(failing(errno.EPERM), what="delete veth", device="x")
    assert netlink.delete(lambda: None, what="delete veth", device="x") is True
