"""Dual-stack networks (`imod network create --ipv6`): IPv6 addresses, default route, masquerade, ports."""

from __future__ import annotations

import ipaddress
import json
import os
import time

import pytest

from intermodal.errors import InvalidArgument
from tests.support.containers import clean_containers  # noqa: F401 - the fixture below
from tests.support.http import fetch
from tests.support.netns import free_subnets, leak_check_fixture, net_engine_fixture, spaces_fixture  # noqa: F401

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox", "nft"),
              pytest.mark.usefixtures("clean_containers")]


def _ula() -> str:
    """A /64 of a random ULA /48: parallel test runs do not collide."""
    return str(ipaddress.IPv6Network((b"\xfd" + os.urandom(5) + bytes(10), 64)))


def test_dual_stack_network_gives_ipv6_addresses_routes_names_and_ports(net_engine, imod, busybox_image):
    (subnet,) = free_subnets(1)
    subnet6 = _ula()
    imod("network", "create", "--ipv6", "--subnet", subnet, "--subnet", subnet6, "dual")
    doc = json.loads(imod("network", "inspect", "dual").stdout)[0]
    gateway6 = str(ipaddress.IPv6Network(subnet6).network_address + 1)
    assert doc["EnableIPv6"] is True
    assert doc["IPAM"]["Config"][1] == {"Subnet": subnet6, "Gateway": gateway6}
    assert "true" in imod("network", "ls", "--format", "{{.Name}} {{.IPv6}}").stdout.decode()

    imod("run", "-d", "--name", "web", "--network", "dual", "-p", "80", busybox_image, "httpd", "-f", "-p", "80",
         "-h", "/var/www")
    settings = json.loads(imod("container", "inspect", "web").stdout)[0]["NetworkSettings"]
    ep = settings["Networks"]["dual"]
    assert ipaddress.IPv6Address(ep["GlobalIPv6Address"]) in ipaddress.IPv6Network(subnet6)
    assert ep["IPv6Gateway"] == gateway6 and ep["GlobalIPv6PrefixLen"] == 64
    inside = imod("exec", "web", "sh", "-c", "ip -o -6 addr show eth0; ip -6 route show default").stdout.decode()
    assert f"inet6 {ep['GlobalIPv6Address']}/64" in inside and f"default via {gateway6}" in inside
    assert "tentative" not in inside.split("scope link")[0]  # usable at once: no duplicate detection wait

    # A neighbour: the gateway and the server over IPv6, by address and by name.
    out = imod("run", "--rm", "--network", "dual", busybox_image, "sh", "-c",
               f"ping -6 -c 1 -W 3 {gateway6} && ping -6 -c 1 -W 3 {ep['GlobalIPv6Address']} && "
               f"grep -w web /etc/hosts && wget -q -O - http://[{ep['GlobalIPv6Address']}]/index.html", check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert ep["GlobalIPv6Address"] in out.stdout.decode() and b"hello from intermodal" in out.stdout

    # The published port answers on the host's IPv6 addresses (here the bridge's own, by DNAT), on [::1]
    # (by the userland proxy: the kernel cannot DNAT from ::1) and on 127.0.0.1.
    port = settings["Ports"]["80/tcp"][0]["HostPort"]
    assert fetch(f"http://[{gateway6}]:{port}/index.html") == b"hello from intermodal\n"
    assert fetch(f"http://[::1]:{port}/index.html") == b"hello from intermodal\n"
    assert fetch(f"http://127.0.0.1:{port}/index.html") == b"hello from intermodal\n"
    cid = json.loads(imod("container", "inspect", "web").stdout)[0]["Id"]
    pid, _ = net_engine.networks.store.container(cid).proxy
    assert os.path.exists(f"/proc/{pid}")
    imod("restart", "-t", "0", "web")  # the proxy lives as the rules do: from the first start to rm
    assert fetch(f"http://[::1]:{port}/index.html") == b"hello from intermodal\n"

    net = net_engine.networks.get("dual")
    masq = [r for r in net_engine.networks.firewall.rules() if r.get("chain") == "postrouting"
            and subnet6.split("/")[0] in json.dumps(r["expr"]) and "masquerade" in json.dumps(r["expr"])]
    assert len(masq) == 1  # outbound NAT for the IPv6 subnet too
    imod("rm", "-f", "web")
    assert net_engine.networks._ipam6(net).allocated() == {}
    deadline = time.monotonic() + 5  # killed by rm; reaped by init (it was our `imod run`'s child)
    while os.path.exists(f"/proc/{pid}") and "Z" not in _state(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}") or "Z" in _state(pid)
    imod("network", "rm", "dual")


def test_ipv6_without_a_subnet_picks_a_ula_and_bad_input_is_refused(net_engine, imod):
    net = net_engine.networks.create("auto6", ipv6=True)
    assert ipaddress.IPv6Network(net.subnet6).subnet_of(ipaddress.IPv6Network("fc00::/7"))
    assert ipaddress.IPv6Network(net.subnet6).prefixlen == 64
    with pytest.raises(InvalidArgument, match="--ipv6"):
        net_engine.networks.create("no6", subnet6=_ula())
    proc = imod("network", "create", "--ipv6", "--subnet", "fd00:1::5/64", "bad6", check=False)
    assert proc.returncode != 0 and b"network address" in proc.stderr
    proc = imod("network", "create", "--ipv6", "--subnet", _ula(), "--subnet", _ula(), "two6", check=False)
    assert proc.returncode != 0 and b"at most one" in proc.stderr
    net_engine.networks.remove("auto6")


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0]
    except OSError:
        return "gone"
