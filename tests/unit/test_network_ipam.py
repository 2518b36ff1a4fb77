"""IPAM: validation and allocation tables, persistence, and 20 parallel allocations on one network."""

from __future__ import annotations

import ipaddress
import multiprocessing
from pathlib import Path

import pytest

from intermodal.errors import Conflict, InvalidArgument
from intermodal.network import ipam


@pytest.mark.parametrize(("subnet", "gateway", "ip_range", "want_gateway", "want_range"), [
    ("172.20.0.0/16", None, None, "172.20.0.1", "172.20.0.0/16"),
    ("172.20.0.0/16", "172.20.255.254", None, "172.20.255.254", "172.20.0.0/16"),
    ("10.1.0.0/24", None, "10.1.0.128/25", "10.1.0.1", "10.1.0.128/25"),
    ("10.1.0.0/30", None, None, "10.1.0.1", "10.1.0.0/30"),
])
def test_validate_accepts(subnet, gateway, ip_range, want_gateway, want_range):
    pool = ipam.validate(subnet, gateway, ip_range)
    assert str(pool.gateway) == want_gateway
    assert str(pool.ip_range) == want_range


@pytest.mark.parametrize(("subnet", "gateway", "ip_range", "message"), [
    ("nonsense", None, None, "invalid subnet"),
    ("172.20.0.5/16", None, None, "did you mean 172.20.0.0/16"),
    ("172.20.0.0", None, None, "not a network address with a prefix"),
    ("fd00::/64", None, None, "only IPv4"),
    ("10.0.0.0/31", None, None, "too small"),
    ("10.0.0.0/24", "10.0.1.1", None, "not a usable address"),
    ("10.0.0.0/24", "10.0.0.255", None, "not a usable address"),
    ("10.0.0.0/24", "10.0.0.0", None, "not a usable address"),
    ("10.0.0.0/24", "ten", None, "invalid gateway"),
    ("10.0.0.0/24", None, "10.0.1.0/25", "not inside subnet"),
])
def test_validate_refuses(subnet, gateway, ip_range, message):
    with pytest.raises(InvalidArgument, match=message):
        ipam.validate(subnet, gateway, ip_range)


@pytest.mark.parametrize(("subnet", "ip_range", "used", "after", "want"), [
    ("10.0.0.0/24", None, [], None, "10.0.0.2"),  # .0 network, .1 gateway
    ("10.0.0.0/24", None, ["10.0.0.2"], None, "10.0.0.3"),
    ("10.0.0.0/24", None, ["10.0.0.2"], "10.0.0.7", "10.0.0.8"),  # continue after the last one handed out
    ("10.0.0.0/24", None, [], "10.0.0.254", "10.0.0.2"),  # wrap, skipping broadcast, network, gateway
    ("10.0.0.0/24", "10.0.0.128/25", [], None, "10.0.0.128"),
    ("10.0.0.0/24", "10.0.0.128/25", [], "10.0.0.3", "10.0.0.128"),  # *after* outside the range: start over
    ("10.0.0.0/30", None, [], None, "10.0.0.2"),
    ("10.0.0.0/30", None, ["10.0.0.2"], None, None),  # full
])
def test_next_free(subnet, ip_range, used, after, want):
    pool = ipam.validate(subnet, None, ip_range)
    got = ipam.next_free(pool, used, after)
    assert (str(got) if got else None) == want


@pytest.mark.parametrize(("taken", "want"), [
    ([], "172.17.0.0/16"),
    (["172.17.0.0/16"], "172.18.0.0/16"),
    (["172.16.0.0/12"], "192.168.0.0/20"),
    (["172.16.0.0/12", "192.168.0.0/16"], None),
    (["172.17.5.0/24"], "172.18.0.0/16"),  # a host route inside a candidate rules it out
])
def test_pick_subnet(taken, want):
    got = ipam.pick_subnet(ipam.DEFAULT_POOLS, [ipaddress.ip_network(t) for t in taken])
    assert (str(got) if got else None) == want


def _ipam(tmp: Path, subnet: str = "10.9.0.0/24", ip_range: str | None = None) -> ipam.Ipam:
    return ipam.Ipam(tmp / "ipam.json", tmp / "lock", ipam.validate(subnet, None, ip_range), "testnet")


def test_allocate_release_and_persist(tmp_path):
    first = _ipam(tmp_path)
    a = first.allocate("c1")
    b = first.allocate("c2")
    assert a != b
    again = _ipam(tmp_path)  # a new process sees the same state on disk
    assert again.allocated() == {a: "c1", b: "c2"}
    assert again.release(a, "c1")
    assert not again.release(a, "c1")  # released once only
    assert not again.release(b, "someone-else")  # only the holder releases
    assert again.allocated() == {b: "c2"}


def test_static_address_honoured_or_refused(tmp_path):
    pool = _ipam(tmp_path)
    assert pool.allocate("c1", "10.9.0.50") == "10.9.0.50"
    with pytest.raises(Conflict, match="already in use"):
        pool.allocate("c2", "10.9.0.50")
    for bad in ("10.9.1.5", "10.9.0.1", "10.9.0.255", "10.9.0.0"):
        with pytest.raises(InvalidArgument, match="cannot be used"):
            pool.allocate("c2", bad)
    assert pool.allocate("c2") != "10.9.0.50"


def test_full_network_is_a_clear_conflict(tmp_path):
    pool = _ipam(tmp_path, "10.9.0.0/29")  # .2 to .6 usable
    got = {pool.allocate(f"c{i}") for i in range(5)}
    assert len(got) == 5
    with pytest.raises(Conflict, match="no free address"):
        pool.allocate("c9")


def _allocate_one(args: tuple[str, str]) -> str:
    folder, owner = args
    return _ipam(Path(folder), "10.9.0.0/26").allocate(owner)


def test_twenty_parallel_allocations_are_distinct(tmp_path):
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(20) as workers:
        got = workers.map(_allocate_one, [(str(tmp_path), f"c{i}") for i in range(20)])
    assert len(set(got)) == 20
    assert _ipam(tmp_path, "10.9.0.0/26").allocated() == dict(zip(got, [f"c{i}" for i in range(20)], strict=True))
