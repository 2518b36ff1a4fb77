"""Normalisers by option type: ports as sets of bindings, addresses, string maps, commands, mounts."""

from __future__ import annotations

import pytest

from intermodal.declare import normalise as norm
from intermodal.declare.compare import equal
from intermodal.errors import InvalidArgument


def bound(*items: tuple[str, int, int, str]):
    return norm.bound_ports({"HostIp": ip, "HostPort": str(hp), "ContainerPort": cp, "Protocol": proto}
                            for ip, hp, cp, proto in items)


PORTS = [
    # (case, declared, engine bindings, match)
    ("18 both families reported for one request", ["80:80"], [("0.0.0.0", 80, 80, "tcp"), ("::", 80, 80, "tcp")],
     True),
    ("19 explicit 0.0.0.0 vs empty", ["0.0.0.0:5555:80"], [("", 5555, 80, "tcp")], True),
    ("20 one port at two addresses", ["127.0.0.1:6001:80", "127.0.0.2:6001:80"],
     [("127.0.0.1", 6001, 80, "tcp"), ("127.0.0.2", 6001, 80, "tcp")], True),
    ("20b one of two addresses missing", ["127.0.0.1:6001:80", "127.0.0.2:6001:80"],
     [("127.0.0.1", 6001, 80, "tcp")], False),
    ("21 no host port: any", ["80"], [("0.0.0.0", 49153, 80, "tcp")], True),
    ("22 host range: any port of it", ["8080-8085:80"], [("0.0.0.0", 8083, 80, "tcp")], True),
    ("22b outside the range", ["8080-8085:80"], [("0.0.0.0", 8090, 80, "tcp")], False),
    ("a different host port", ["8080:80"], [("", 8081, 80, "tcp")], False),
    ("udp is not tcp", ["53:53/udp"], [("", 53, 53, "tcp")], False),
    ("an extra binding", ["80:80"], [("", 80, 80, "tcp"), ("", 443, 443, "tcp")], False),
    ("container range", ["8000-8001:9000-9001"], [("", 8000, 9000, "tcp"), ("", 8001, 9001, "tcp")], True),
]


@pytest.mark.parametrize(("case", "declared", "bindings", "match"), PORTS, ids=[p[0] for p in PORTS])
def test_ports_match_as_sets_of_bindings(case, declared, bindings, match):
    assert norm.ports_match(norm.ports(declared), bound(*bindings)) is match, case


def test_24_ipv6_host_addresses_are_refused_as_the_engine_does():
    # The engine's -p parser (reused here) publishes IPv4 only so far; the refusal says so.
    with pytest.raises(InvalidArgument, match="IPv6"):
        norm.ports(["[::1]:80:80"])


def test_ports_order_and_duplicates_do_not_matter():
    assert norm.ports(["80:80", "443:443"]) == norm.ports(["443:443", "80:80", "80:80"])
    assert norm.ports(None) is None


@pytest.mark.parametrize(("text", "canonical"), [
    ("fcb8:0b02:0:0:0:0:0:1", "fcb8:b02::1"),  # 42
    ("FCB8:B02::1", "fcb8:b02::1"),
    ("[::1]", "::1"),
    ("10.0.0.1", "10.0.0.1"),
])
def test_addresses_compare_in_canonical_form(text, canonical):
    assert norm.ip(text) == canonical


def test_cidrs_drop_host_bits():
    assert norm.cidr("172.28.5.7/24") == "172.28.5.0/24"
    assert norm.cidr("fd00:0::/64") == "fd00::/64"
    with pytest.raises(InvalidArgument, match="CIDR"):
        norm.cidr("not-a-net")


def test_string_maps():
    assert norm.string_map({"a": 1, "b": 1.5, "c": None}, "labels") == {"a": "1", "b": "1.5", "c": ""}
    assert norm.string_map(["a=1", "b=x=y"], "labels") == {"a": "1", "b": "x=y"}
    assert norm.string_map({"a": True}, "labels") == {"a": "True"}
    with pytest.raises(InvalidArgument, match="quote it"):
        norm.string_map({"a": True}, "env", strict_bools=True)
    with pytest.raises(InvalidArgument, match="KEY=VALUE"):
        norm.string_map(["novalue"], "labels")


@pytest.mark.parametrize(("value", "argv"), [
    ("sleep 1d", ("sleep", "1d")),
    (["sleep", 1], ("sleep", "1")),
    ("sh -c 'exit 3'", ("sh", "-c", "exit 3")),
    ([], None),
    (None, None),
])
def test_commands_become_argv(value, argv):
    assert norm.command(value) == argv


def test_an_empty_entrypoint_clears_the_image_one():
    assert norm.entrypoint([]) == ()
    assert norm.entrypoint("") == ()
    assert norm.entrypoint(None) is None


def test_log_options_are_text_then_typed():
    assert norm.log_options({"max-size": "1m", "max-file": 2}) == {"log_max_size": 1048576, "log_max_file": 2}
    with pytest.raises(InvalidArgument, match="whole number"):
        norm.log_options({"max-file": "two"})


def test_healthcheck_forms():
    assert norm.healthcheck({"test": "curl x"}).test == ("CMD-SHELL", "curl x")
    assert norm.healthcheck({"test": ["NONE", "ignored"]}).test == ("NONE",)
    assert norm.healthcheck({"test": ["curl", "x"]}).test == ("CMD", "curl", "x")
    assert norm.healthcheck({"test": ["CMD-SHELL", "curl x"], "interval": "1m30s"}).interval == 90_000_000_000
    with pytest.raises(InvalidArgument, match="unknown key"):
        norm.healthcheck({"tset": "x"})


def test_mounts_from_three_options():
    mounts = norm.mounts(["/srv//a/:/a:ro"], [{"type": "tmpfs", "target": "/t", "tmpfs_size": "1m"}], ["/run"])
    assert [(m.type, m.source, m.target, m.readonly) for m in mounts] == [
        ("bind", "/srv/a", "/a", True), ("tmpfs", "", "/t", False), ("tmpfs", "", "/run", False)]
    assert mounts[1].options == ("size=1048576",)
    assert norm.mounts(None, None, None) is None
    assert norm.mounts([], None, None) == ()


@pytest.mark.parametrize(("declared", "actual", "mode", "result"), [
    ({"a": "1"}, {"a": "1", "b": "2"}, "strict", False),
    ({"a": "1"}, {"a": "1", "b": "2"}, "allow_more_present", True),
    ({"a": "2"}, {"a": "1", "b": "2"}, "allow_more_present", False),
    (frozenset({1}), frozenset({1, 2}), "allow_more_present", True),
    (("a", "b"), ("a", "b", "c"), "allow_more_present", False),  # argv lists are whole values
    ("x", "y", "ignore", True),
])
def test_compare_modes(declared, actual, mode, result):
    assert equal(declared, actual, mode) is result
