"""--dns, --dns-search, --dns-option and --add-host: real containers' /etc/resolv.conf and /etc/hosts."""

from __future__ import annotations

import json

import pytest

from tests.support.containers import clean_containers  # noqa: F401 - the fixture below
from tests.support.netns import free_subnets, leak_check_fixture, net_engine_fixture, spaces_fixture  # noqa: F401

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox", "nft"),
              pytest.mark.usefixtures("clean_containers")]

DNS = ["--dns", "192.0.2.53", "--dns", "2001:db8::53", "--dns-search", "corp.example", "--dns-search",
       "lab.example", "--dns-option", "ndots:2"]


def _cat(imod, *args: str) -> str:
    return imod(*args).stdout.decode()


def test_named_network_gets_the_names_and_keeps_them_when_neighbours_come(net_engine, imod, busybox_image):
    (subnet,) = free_subnets(1)
    imod("network", "create", "--subnet", subnet, "dnsnet")
    gateway = net_engine.networks.get("dnsnet").gateway
    try:
        imod("run", "-d", "--name", "app", "--network", "dnsnet", *DNS, "--add-host", "db:192.0.2.10",
             "--add-host", "cache=2001:db8::7", "--add-host", "gw:host-gateway", busybox_image, "sleep", "1000")
        resolv = _cat(imod, "exec", "app", "cat", "/etc/resolv.conf")
        assert resolv == ("nameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch corp.example lab.example\n"
                          "options ndots:2\n")
        hosts = _cat(imod, "exec", "app", "cat", "/etc/hosts")
        assert "192.0.2.10\tdb\n" in hosts and "2001:db8::7\tcache\n" in hosts and f"{gateway}\tgw\n" in hosts
        # host-gateway is the gateway, by the container's own resolver (getent reads /etc/hosts)
        out = imod("exec", "app", "ping", "-c", "1", "-W", "5", "gw", check=False)
        assert out.returncode == 0 and gateway.encode() in out.stdout, out.stdout + out.stderr
        imod("run", "-d", "--name", "peer", "--network", "dnsnet", busybox_image, "sleep", "1000")
        hosts = _cat(imod, "exec", "app", "cat", "/etc/hosts")
        assert "\tpeer" in hosts  # the rewrite for the neighbour happened...
        assert "192.0.2.10\tdb\n" in hosts and f"{gateway}\tgw\n" in hosts  # ...and kept the extra hosts
        peer_hosts = _cat(imod, "exec", "peer", "cat", "/etc/hosts")
        assert "\tdb\n" not in peer_hosts  # another container's --add-host is its own
        imod("rm", "-f", "peer")
        hosts = _cat(imod, "exec", "app", "cat", "/etc/hosts")
        assert "\tpeer" not in hosts and "192.0.2.10\tdb\n" in hosts
        assert _cat(imod, "exec", "app", "cat", "/etc/resolv.conf") == resolv
        info = json.loads(imod("container", "inspect", "app").stdout)[0]["HostConfig"]
        assert info["Dns"] == ["192.0.2.53", "2001:db8::53"]
        assert info["DnsSearch"] == ["corp.example", "lab.example"] and info["DnsOptions"] == ["ndots:2"]
        assert info["ExtraHosts"] == ["db:192.0.2.10", "cache:2001:db8::7", "gw:host-gateway"]
        imod("restart", "-t", "1", "app")
        assert "192.0.2.10\tdb\n" in _cat(imod, "exec", "app", "cat", "/etc/hosts")
    finally:
        imod("rm", "-f", "app", "peer", check=False)
        imod("network", "rm", "dnsnet", check=False)


def test_none_and_host_networks_apply_the_options(net_engine, imod, busybox_image):
    resolv = _cat(imod, "run", "--rm", "--network", "none", "--dns", "192.0.2.1", "--dns-search", ".",
                  "--dns-option", "edns0", busybox_image, "cat", "/etc/resolv.conf")
    assert resolv == "nameserver 192.0.2.1\noptions edns0\n"
    hosts = _cat(imod, "run", "--rm", "--network", "none", "--add-host", "db:192.0.2.10", busybox_image,
                 "cat", "/etc/hosts")
    assert "192.0.2.10\tdb\n" in hosts and "localhost" in hosts
    with open("/etc/resolv.conf") as f:
        host_resolv = f.read()
    out = _cat(imod, "run", "--rm", "--network", "host", busybox_image, "cat", "/etc/resolv.conf")
    assert out.strip() == host_resolv.strip()  # as Docker: the host's network, the host's files...
    out = _cat(imod, "run", "--rm", "--network", "host", "--dns", "192.0.2.1", "--add-host", "db:192.0.2.10",
               busybox_image, "sh", "-c", "cat /etc/resolv.conf /etc/hosts")
    assert out.startswith("nameserver 192.0.2.1\n")  # ...unless options are given
    assert "192.0.2.10\tdb\n" in out and "localhost" in out


def test_refusals_name_the_accepted_forms(net_engine, imod, busybox_image):
    out = imod("create", "--add-host", "db", busybox_image, check=False)
    assert out.returncode != 0 and b"HOST:IP, HOST=IP or HOST:host-gateway" in out.stderr
    out = imod("create", "--dns", "dns.example", busybox_image, check=False)
    assert out.returncode != 0 and b"not an IP address" in out.stderr
    out = imod("create", "--network", "none", "--add-host", "gw:host-gateway", busybox_image, check=False)
    assert out.returncode != 0 and b"needs a network with a gateway" in out.stderr
    out = imod("create", "--network", "host", "--add-host", "gw:host-gateway", busybox_image, check=False)
    assert out.returncode != 0 and b"the host is 127.0.0.1" in out.stderr
    assert imod("ps", "-aq").stdout == b""
