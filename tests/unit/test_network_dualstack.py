"""Pure parts of dual stack and multi-network: IPv6 pools, IPv6 rules, `--network` flags, -P."""

from __future__ import annotations

import ipaddress

import pytest

from intermodal.containers.net import network_options
from intermodal.containers.spec import ContainerSpec, NetworkAttachment
from intermodal.errors import InvalidArgument
from intermodal.network import ipam
from intermodal.network.nftables import PortRule, network_rules, port_rules


def test_validate6_defaults_the_gateway_and_refuses_bad_subnets():
    pool = ipam.validate6("fd12:3456:789a::/64")
    assert str(pool.gateway) == "fd12:3456:789a::1"
    for bad, message in (("10.0.0.0/24", "not an IPv6"), ("fd00::5/64", "network address"),
                         ("fd00::/124", "too small"), ("nonsense", "invalid IPv6")):
        with pytest.raises(InvalidArgument, match=message):
            ipam.validate6(bad)
    with pytest.raises(InvalidArgument, match="not a usable address"):
        ipam.validate6("fd00::/64", "fd01::1")


def test_random_ula_is_a_unique_local_64():
    nets = {ipam.random_ula() for _ in range(20)}
    assert len(nets) == 20
    for text in nets:
        net = ipaddress.IPv6Network(text)
        assert net.prefixlen == 64 and net.subnet_of(ipaddress.IPv6Network("fc00::/7"))


def test_next_free_in_an_ipv6_pool_skips_gateway_and_taken():
    pool = ipam.validate6("fd00:1::/64")
    assert str(ipam.next_free(pool, [])) == "fd00:1::2"
    assert str(ipam.next_free(pool, ["fd00:1::2", "fd00:1::3"])) == "fd00:1::4"
    assert str(ipam.next_free(pool, [], after="fd00:1::9")) == "fd00:1::a"


def test_dual_stack_rules_masquerade_and_publish_ipv6():
    rules = network_rules("t", "n1", "br0", "10.1.0.0/24", False, "fd00:1::/64")
    text = repr(rules)
    assert "'protocol': 'ip6', 'field': 'saddr'" in text and "'addr': 'fd00:1::'" in text
    internal = repr(network_rules("t", "n1", "br0", "10.1.0.0/24", True, "fd00:1::/64"))
    assert "masquerade" in internal and "fd00:1::" not in internal  # no way out for an internal network
    both = port_rules("t", "c1", [PortRule("", 8080, "tcp", "10.1.0.2", 80, "fd00:1::2")])
    assert [r["add"]["rule"]["expr"][-1]["dnat"]["family"] for r in both] == ["ip", "ip6"]
    v4only = port_rules("t", "c1", [PortRule("127.0.0.1", 8080, "tcp", "10.1.0.2", 80, "fd00:1::2")])
    assert len(v4only) == 1


def test_network_flags_first_is_the_network_the_rest_extra():
    assert network_options([]) == {"network": "bridge", "extra_networks": ()}
    out = network_options(["a", "name=b,alias=x,alias=y,ip=10.0.0.5"], aliases=["web"], ip="10.1.0.9")
    assert out["network"] == "a" and out["network_aliases"] == ("web",) and out["ip"] == "10.1.0.9"
    assert out["extra_networks"] == (NetworkAttachment("b", ("x", "y"), "10.0.0.5"),)
    assert network_options(["name=a,alias=z"])["network_aliases"] == ("z",)
    for bad in (["name=a,color=red"], ["alias=x"], ["name=a,ip=1.1.1.1,ip=2.2.2.2"]):
        with pytest.raises(InvalidArgument):
            network_options(bad)
    with pytest.raises(InvalidArgument, match="disagree"):
        network_options(["name=a,ip=10.0.0.1"], ip="10.0.0.2")


def test_spec_round_trips_and_checks_extra_networks_and_publish_all():
    spec = ContainerSpec.build("busybox", network="a", extra_networks=[{"Name": "b", "Aliases": ["x"]}, "c"],
                               publish_all=True, expose=["9000/udp"])
    assert ContainerSpec.from_json(spec.to_json()) == spec
    assert spec.extra_networks == (NetworkAttachment("b", ("x",)), NetworkAttachment("c"))
    for options, message in (({"network": "none", "publish_all": True}, "need a network"),
                             ({"network": "a", "extra_networks": ["a"]}, "twice"),
                             ({"network": "a", "extra_networks": ["host"]}, "alone"),
                             ({"expose": ["99999"]}, "outside")):
        with pytest.raises(InvalidArgument, match=message):
            ContainerSpec.build("busybox", **options)
