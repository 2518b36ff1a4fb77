"""`-p` parsing tables, conflict detection between bindings, and the bind check against a real socket."""

from __future__ import annotations

import socket

import pytest

from intermodal.errors import Conflict, InvalidArgument
from intermodal.network.ports import Binding, PortRequest, expose_all, overlaps, parse, resolve


@pytest.mark.parametrize(("spec", "want"), [
    ("80", [PortRequest("", 0, 0, 80, "tcp")]),
    ("80/udp", [PortRequest("", 0, 0, 80, "udp")]),
    ("8080:80", [PortRequest("", 8080, 8080, 80, "tcp")]),
    ("127.0.0.1:8080:80", [PortRequest("127.0.0.1", 8080, 8080, 80, "tcp")]),
    ("127.0.0.1::80", [PortRequest("127.0.0.1", 0, 0, 80, "tcp")]),
    ("8000-8001:80-81/udp", [PortRequest("", 8000, 8000, 80, "udp"), PortRequest("", 8001, 8001, 81, "udp")]),
    ("8000-8010:80", [PortRequest("", 8000, 8010, 80, "tcp")]),
    ("80-81", [PortRequest("", 0, 0, 80, "tcp"), PortRequest("", 0, 0, 81, "tcp")]),
    (" 53:53/UDP ", [PortRequest("", 53, 53, 53, "udp")]),
])
def test_parse(spec, want):
    assert parse(spec) == want


@pytest.mark.parametrize(("spec", "message"), [
    ("80/sctp", "not supported"),
    ("", "not .ip:..hostPort:.containerPort"),
    ("a:b", "is not a number"),
    ("8080:0", "container port 0"),
    ("70000:80", "outside 1-65535"),
    ("90-80:80", "runs backwards"),
    ("8000-8002:80-81", "differ in length"),
    ("host:8080:80", "not an IP address"),
    ("1:2:3:4", "not .ip:"),
    ("[::1]:8080:80", "IPv6 host addresses are not supported"),
])
def test_parse_refuses(spec, message):
    with pytest.raises(InvalidArgument, match=message):
        parse(spec)


def test_expose_all_gives_ephemeral_ports():
    assert expose_all(["80/tcp", "53/udp"]) == [PortRequest("", 0, 0, 80, "tcp"), PortRequest("", 0, 0, 53, "udp")]


@pytest.mark.parametrize(("a", "b", "want"), [
    (Binding("", 80, 1, "tcp"), Binding("", 80, 2, "tcp"), True),
    (Binding("", 80, 1, "tcp"), Binding("", 80, 1, "udp"), False),
    (Binding("127.0.0.1", 80, 1, "tcp"), Binding("0.0.0.0", 80, 1, "tcp"), True),
    (Binding("127.0.0.1", 80, 1, "tcp"), Binding("127.0.0.2", 80, 1, "tcp"), False),
    (Binding("127.0.0.1", 80, 1, "tcp"), Binding("127.0.0.1", 81, 1, "tcp"), False),
])
def test_overlaps(a, b, want):
    assert overlaps(a, b) is want and overlaps(b, a) is want


def test_resolve_refuses_a_port_another_container_publishes():
    taken = [(Binding("", 18080, 80, "tcp"), "web")]
    with pytest.raises(Conflict, match="18080/tcp: it is already published by web"):
        resolve(parse("18080:80"), taken)


def test_resolve_refuses_the_same_port_twice_in_one_request():
    with pytest.raises(Conflict, match="already published by this container"):
        resolve(parse("127.0.0.1:18081:80") + parse("18081:81"), [])


def test_resolve_takes_the_next_port_of_a_range():
    taken = [(Binding("", 18090, 80, "tcp"), "web")]
    (got,) = resolve(parse("18090-18095:80"), taken)
    assert 18091 <= got.host_port <= 18095


def test_resolve_refuses_a_port_a_host_program_listens_on():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(Conflict, match="cannot bind"):
            resolve(parse(f"127.0.0.1:{port}:80"), [])


def test_resolve_picks_distinct_ephemeral_ports():
    got = resolve(parse("80") + parse("81") + parse("82/udp"), [])
    assert all(b.host_port > 0 for b in got)
    assert len({(b.host_port, b.proto) for b in got}) == 3


def test_binding_json_round_trip():
    b = Binding("127.0.0.1", 8080, 80, "udp")
    assert Binding.from_json(b.to_json()) == b
    assert b.key() == "80/udp"


def test_hold_keeps_others_off_the_port():
    from intermodal.network.ports import bind_problem, hold

    (b,) = resolve(parse("127.0.0.1::80"), [])
    sockets = hold([b])
    try:
        assert bind_problem("127.0.0.1", b.host_port, "tcp") is not None
        with pytest.raises(Conflict, match="cannot hold"):
            hold([b])
    finally:
        for s in sockets:
            s.close()
    assert bind_problem("127.0.0.1", b.host_port, "tcp") is None
