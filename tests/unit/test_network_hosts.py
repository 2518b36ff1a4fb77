"""/etc/hosts and /etc/resolv.conf rendering, --add-host parsing, in-place rewrites."""

from __future__ import annotations

import os

import pytest

from intermodal.errors import InvalidArgument
from intermodal.network.hosts import (
    FALLBACK_DNS,
    HostsSpec,
    Peer,
    parse_add_host,
    render_hosts,
    render_resolv,
    write_in_place,
)


def test_hosts_has_self_neighbours_and_extra_hosts():
    spec = HostsSpec("web", own=[Peer("10.0.0.2", ())], extra=[("db.example", "192.0.2.9")])
    text = render_hosts(spec, [Peer("10.0.0.10", ("cache", "redis", "cache")), Peer("10.0.0.3", ("api",))])
    lines = text.splitlines()
    assert lines[0] == "127.0.0.1\tlocalhost"
    assert "192.0.2.9\tdb.example" in lines
    assert "10.0.0.2\tweb" in lines
    assert lines.index("10.0.0.3\tapi") < lines.index("10.0.0.10\tcache redis")  # numeric order, no duplicates


def test_hosts_without_networks_names_itself_on_loopback():
    assert "127.0.1.1\tlonely" in render_hosts(HostsSpec("lonely"), []).splitlines()


@pytest.mark.parametrize(("item", "want"), [
    ("db:192.0.2.1", ("db", "192.0.2.1")),
    ("db=192.0.2.1", ("db", "192.0.2.1")),
    ("v6.example:fd00::1", ("v6.example", "fd00::1")),
    ("v6=[fd00::1]", ("v6", "fd00::1")),
])
def test_parse_add_host(item, want):
    assert parse_add_host(item) == want


@pytest.mark.parametrize("item", ["db", "db:notanip", "-bad:192.0.2.1", "a b:192.0.2.1"])
def test_parse_add_host_refuses(item):
    with pytest.raises(InvalidArgument):
        parse_add_host(item)


HOST = "# generated\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch corp.example\noptions edns0 trust-ad\n"


@pytest.mark.parametrize(("kw", "want"), [
    ({}, "nameserver 192.0.2.53\nsearch corp.example\noptions edns0 trust-ad\n"),
    ({"dns": ["9.9.9.9"]}, "nameserver 9.9.9.9\nsearch corp.example\noptions edns0 trust-ad\n"),
    ({"dns": ["9.9.9.9"], "search": [], "options": ["ndots:2"]}, "nameserver 9.9.9.9\noptions ndots:2\n"),
])
def test_resolv(kw, want):
    assert render_resolv(host_resolv=HOST, **kw) == want


def test_resolv_falls_back_when_the_host_has_only_loopback_resolvers():
    text = render_resolv(host_resolv="nameserver 127.0.0.53\n")
    assert text == "".join(f"nameserver {s}\n" for s in FALLBACK_DNS)


def test_resolv_refuses_a_name_as_dns_server():
    with pytest.raises(InvalidArgument, match="not an IP"):
        render_resolv(dns=["dns.example"])


def test_write_in_place_keeps_the_inode(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("a much longer original content\n" * 4)
    inode = os.stat(path).st_ino
    write_in_place(path, "short\n")
    assert path.read_text() == "short\n"
    assert os.stat(path).st_ino == inode
