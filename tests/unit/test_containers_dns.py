"""--dns, --dns-search, --dns-option and --add-host: parsing, storage and the name files' settings."""

from __future__ import annotations

import pytest

from intermodal.containers import net
from intermodal.containers.spec import ContainerSpec, parse_add_host
from intermodal.declare import container as planner
from intermodal.errors import InvalidArgument


@pytest.mark.parametrize("text, item", [
    ("db:192.0.2.10", "db:192.0.2.10"),
    ("db=192.0.2.10", "db:192.0.2.10"),
    ("db.corp.example:192.0.2.10", "db.corp.example:192.0.2.10"),
    ("v6:2001:db8::1", "v6:2001:db8::1"),
    ("v6=2001:DB8:0::1", "v6:2001:db8::1"),
    ("v6:[2001:db8::1]", "v6:2001:db8::1"),
    ("gw:host-gateway", "gw:host-gateway"),
    ("gw=host-gateway", "gw:host-gateway"),
])
def test_parse_add_host(text, item):
    assert parse_add_host(text) == item


@pytest.mark.parametrize("text", ["db", "db:", ":192.0.2.10", "db:server", "db:192.0.2.300", "bad_name:192.0.2.1",
                                  "db=host_gateway", "-db:192.0.2.1"])
def test_parse_add_host_refuses_naming_the_forms(text):
    with pytest.raises(InvalidArgument, match=r"HOST:IP, HOST=IP or HOST:host-gateway"):
        parse_add_host(text)


def test_spec_normalises_stores_and_reads_back():
    spec = ContainerSpec.build("busybox", dns=["192.0.2.53", "2001:DB8::53", "192.0.2.53"],
                               dns_search="corp.example", dns_options=["ndots:2", "edns0"],
                               extra_hosts={"db": "192.0.2.10", "gw": "host-gateway"})
    assert spec.dns == ("192.0.2.53", "2001:db8::53")  # in order, once each
    assert spec.dns_search == ("corp.example",) and spec.dns_options == ("ndots:2", "edns0")
    assert spec.extra_hosts == ("db:192.0.2.10", "gw:host-gateway")
    assert spec.to_json()["extra_hosts"] == ["db:192.0.2.10", "gw:host-gateway"]
    assert ContainerSpec.from_json(spec.to_json()) == spec
    old = {k: v for k, v in spec.to_json().items() if k not in ("dns", "dns_search", "dns_options", "extra_hosts")}
    assert ContainerSpec.from_json(old) == ContainerSpec.build("busybox")  # records from before these fields


@pytest.mark.parametrize("options, message", [
    ({"dns": ["dns.example"]}, "not an IP address"),
    ({"dns_search": ["two words"]}, "one word"),
    ({"dns_options": [""]}, "one word"),
    ({"network": "container:web", "dns": ["192.0.2.53"]}, "cannot be combined with --network container:web"),
    ({"network": "container:web", "extra_hosts": ["db:192.0.2.1"]}, "cannot be combined"),
    ({"network": "none", "extra_hosts": ["gw:host-gateway"]}, "needs a network with a gateway"),
    ({"network": "host", "extra_hosts": ["gw=host-gateway"]}, "the host is 127.0.0.1"),
])
def test_spec_refuses(options, message):
    with pytest.raises(InvalidArgument, match=message):
        ContainerSpec.build("busybox", **options)


def test_resolv_settings_and_extra_hosts():
    spec = ContainerSpec.build("busybox")
    assert net.resolv_settings(spec) == (None, None, None)  # the host's
    spec = ContainerSpec.build("busybox", dns=["192.0.2.53"], dns_search=["."], dns_options=["ndots:1"])
    assert net.resolv_settings(spec) == (["192.0.2.53"], [], ["ndots:1"])  # ".": no search domain
    spec = ContainerSpec.build("busybox", extra_hosts=["db:192.0.2.10", "gw:host-gateway", "v6:2001:db8::1"])
    assert net.extra_hosts(spec, "10.231.0.1") == [("db", "192.0.2.10"), ("gw", "10.231.0.1"),
                                                     ("v6", "2001:db8::1")]
    assert net.extra_hosts(spec, None) == [("db", "192.0.2.10"), ("v6", "2001:db8::1")]  # no network, no gateway


# -- the planner: community.docker's dns_servers, dns_search_domains, dns_opts, etc_hosts --------------------

IMAGE_ID = "sha256:" + "a" * 64
BUSYBOX = {"config": {"Cmd": ["sh"]}}


def _plan(options: dict, **stored_fields):
    current = planner.Current("c" * 64, ContainerSpec.build("busybox", name="c1", **stored_fields), IMAGE_ID,
                              BUSYBOX, "running")
    declared = planner.declare({"name": "c1", "image": "busybox", **options})
    return planner.plan(declared, current, image_id=IMAGE_ID, image_config=BUSYBOX)


@pytest.mark.parametrize("options, stored", [
    ({"dns_servers": ["192.0.2.53", "2001:DB8::53"]}, {"dns": ["192.0.2.53", "2001:db8::53"]}),
    ({"dns_opts": ["edns0", "ndots:2"]}, {"dns_options": ["ndots:2", "edns0"]}),  # a set
    ({"etc_hosts": {"db": "192.0.2.10", "gw": "host-gateway"}}, {"extra_hosts": ["gw:host-gateway",
                                                                                   "db=192.0.2.10"]}),
    ({"dns_search_domains": ["corp.example"]}, {"dns_search": "corp.example"}),
    ({}, {}),
])
def test_planner_same(options, stored):
    assert _plan(options, **stored).actions == ()


@pytest.mark.parametrize("options, stored, field", [
    ({"dns_servers": ["192.0.2.54", "192.0.2.53"]}, {"dns": ["192.0.2.53", "192.0.2.54"]}, "dns"),  # in order
    ({"dns_servers": ["192.0.2.53"]}, {}, "dns"),
    ({}, {"dns": ["192.0.2.53"]}, "dns"),  # dropped: back to the host's
    ({"etc_hosts": {"db": "192.0.2.11"}}, {"extra_hosts": ["db:192.0.2.10"]}, "extra_hosts"),
    ({"dns_search_domains": ["b.example", "a.example"]}, {"dns_search": ["a.example", "b.example"]}, "dns_search"),
    ({"dns_opts": ["ndots:3"]}, {"dns_options": ["ndots:2"]}, "dns_options"),
])
def test_planner_recreates(options, stored, field):
    plan = _plan(options, **stored)
    assert "recreate" in plan.actions and [d.name for d in plan.differences] == [field]


def test_planner_allow_more_present_etc_hosts_and_bad_values():
    plan = _plan({"etc_hosts": {"db": "192.0.2.10"}, "comparisons": {"etc_hosts": "allow_more_present"}},
                 extra_hosts=["db:192.0.2.10", "cache:192.0.2.11"])
    assert plan.actions == ()
    with pytest.raises(InvalidArgument, match="HOST:IP, HOST=IP or HOST:host-gateway"):
        planner.declare({"name": "c1", "image": "busybox", "etc_hosts": {"db": "nowhere"}})
