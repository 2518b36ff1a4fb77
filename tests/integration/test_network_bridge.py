"""Bridge networks on the real kernel: reachability by address and name, isolation, --internal, ports.

Each "container" is a network namespace made by the test; busybox runs in
it through `ip netns exec`, which also bind-mounts /etc/netns/NAME/hosts over
/etc/hosts, so the hosts file the engine writes there is the one busybox reads.
Traffic goes only to addresses of these namespaces and to 127.0.0.1.
(busybox 1.35 wget crashes with -T, so subprocess timeouts bound it instead.)
"""

from __future__ import annotations

import ipaddress
import secrets

import pytest

from intermodal.errors import Conflict
from intermodal.network.manager import EndpointRequest
from tests.support.netns import free_subnets, leak_check_fixture, net_engine_fixture, run, spaces_fixture, wait_for  # noqa: F401

pytestmark = pytest.mark.requires("root", "nft", "busybox")


def cid() -> str:
    return secrets.token_hex(32)


def attach(engine, ns, network: str, name: str, **kw):
    kw.setdefault("dns", ["127.0.0.1"])  # a name missing from the hosts file is never asked of a real server
    container = cid()
    eps = engine.networks.attach(container, ns.path, [EndpointRequest(network, aliases=kw.pop("aliases", ()))],
                                 name=name, hostname=name, hosts_path=ns.etc / "hosts",
                                 resolv_path=ns.etc / "resolv.conf", **kw)
    return container, eps[0]


def pings(ns, target: str) -> bool:
    return ns.busybox("ping", "-c", "1", "-W", "1", target, check=False).returncode == 0


def serve(spaces, ns, www, port: int = 80, body: str = "hello from the container\n"):
    """busybox httpd in *ns* on *port*, serving *www*; returns once it listens."""
    www.mkdir()
    (www / "index.html").write_text(body)
    spaces.spawn(ns, "httpd", "-f", "-p", str(port), "-h", str(www))
    assert wait_for(lambda: _listening(ns, port)), "httpd did not start"


def _listening(ns, port: int) -> bool:
    out = ns.exec("cat", "/proc/net/tcp", "/proc/net/tcp6").stdout  # httpd listens dual-stack
    return any(len(f) > 3 and f[1].endswith(f":{port:04X}") and f[3] == "0A"
               for f in (line.split() for line in out.splitlines()))


def test_two_namespaces_reach_each_other_by_address_and_name(net_engine, spaces):
    (subnet,) = free_subnets(1)
    net_engine.networks.create("front", subnet=subnet)
    a, b = spaces.new(), spaces.new()
    _, ep_a = attach(net_engine, a, "front", "alpha", aliases=("web",))
    cb, ep_b = attach(net_engine, b, "front", "beta")

    assert pings(b, ep_a.address)
    assert pings(b, "alpha") and pings(b, "web")
    assert pings(a, "beta")  # a's hosts file was rewritten when b joined
    assert f"{ep_b.address}\tbeta" in (a.etc / "hosts").read_text()

    net_engine.networks.detach(cb)
    assert "beta" not in (a.etc / "hosts").read_text()  # and again when b left
    assert not pings(a, ep_b.address)


def test_other_network_cannot_reach(net_engine, spaces):
    s1, s2 = free_subnets(2)
    net_engine.networks.create("one", subnet=s1)
    net_engine.networks.create("two", subnet=s2)
    a, b, c = spaces.new(), spaces.new(), spaces.new()
    _, ep_a = attach(net_engine, a, "one", "a1")
    attach(net_engine, b, "one", "b1")
    _, ep_c = attach(net_engine, c, "two", "c2")

    assert pings(b, ep_a.address)  # control: same network works
    assert not pings(c, ep_a.address)
    assert not pings(a, ep_c.address)
    assert "a1" not in (c.etc / "hosts").read_text()  # no names across networks either


def test_internal_network_has_no_route_out(net_engine, spaces):
    s_int, s_out, s_peer = free_subnets(3)
    net_engine.networks.create("sealed", subnet=s_int, internal=True)
    net_engine.networks.create("open", subnet=s_out)
    outside = spaces.new()
    _, outside_ip = spaces.routed_peer(outside, s_peer)  # a host elsewhere, reached through the host
    sealed, free = spaces.new(), spaces.new()
    attach(net_engine, sealed, "sealed", "inner")
    attach(net_engine, free, "open", "outer")

    assert "default" not in sealed.exec("ip", "route").stdout
    assert pings(free, outside_ip)  # control: a normal network routes out (and is masqueraded)
    assert not pings(sealed, outside_ip)
    sealed.exec("ip", "route", "add", "default", "via", net_engine.networks.get("sealed").gateway)
    assert not pings(sealed, outside_ip)  # even with a route added inside, the host drops it


def test_published_port_from_localhost_and_from_another_namespace(net_engine, spaces, tmp_path):
    s_net, s_peer = free_subnets(2)
    net_engine.networks.create("pub", subnet=s_net)
    box, client = spaces.new(), spaces.new()
    host_ip, _ = spaces.routed_peer(client, s_peer)
    container, _ = attach(net_engine, box, "pub", "web", ports=["80"])
    serve(spaces, box, tmp_path / "www")
    (binding,) = net_engine.networks.published_ports(container)
    assert binding.host_port > 0

    local = run("busybox", "wget", "-q", "-O", "-", f"http://127.0.0.1:{binding.host_port}/")
    assert local.stdout == "hello from the container\n"
    remote = client.busybox("wget", "-q", "-O", "-", f"http://{host_ip}:{binding.host_port}/")
    assert remote.stdout == "hello from the container\n"

    net_engine.networks.detach(container)
    gone = run("busybox", "wget", "-q", "-O", "-", f"http://127.0.0.1:{binding.host_port}/", check=False)
    assert gone.returncode != 0


def test_same_host_port_twice_is_refused_before_anything_is_created(net_engine, spaces):
    (subnet,) = free_subnets(1)
    net_engine.networks.create("ports", subnet=subnet)
    a, b = spaces.new(), spaces.new()
    first, _ = attach(net_engine, a, "ports", "first", ports=["80"])
    (binding,) = net_engine.networks.published_ports(first)
    veths = net_engine.networks.store.config.veth_prefix  # this run's: other runs make links beside
    links_before = run("ip", "-o", "link", "show").stdout.count(veths)

    second = cid()
    with pytest.raises(Conflict, match=str(binding.host_port)):
        net_engine.networks.attach(second, b.path, [EndpointRequest("ports")], ports=[f"{binding.host_port}:8080"])
    assert run("ip", "-o", "link", "show").stdout.count(veths) == links_before
    assert net_engine.networks.endpoints(second) == []
    assert len(net_engine.networks.store.endpoints(net_engine.networks.get("ports").id)) == 1
    assert b.exec("ip", "-o", "link", "show").stdout.count("eth") == 0


def test_port_held_by_a_host_program_is_refused(net_engine, spaces):
    import socket

    (subnet,) = free_subnets(1)
    net_engine.networks.create("held", subnet=subnet)
    ns = spaces.new()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(Conflict, match="cannot bind"):
            net_engine.networks.attach(cid(), ns.path, [EndpointRequest("held")], ports=[f"{port}:80"])
    assert net_engine.networks.store.containers() == []


def test_default_bridge_network_is_made_on_first_use(net_engine, spaces):
    ns = spaces.new()
    container, ep = attach(net_engine, ns, "bridge", "plain")
    net = net_engine.networks.get("bridge")
    assert net.default and ipaddress.ip_address(ep.address) in ipaddress.ip_network(net.subnet)
    assert pings(ns, net.gateway)
    inspect = net_engine.networks.inspect("bridge")
    assert container in inspect["Containers"]


def test_neighbour_reaches_a_published_port_through_the_host(net_engine, spaces, tmp_path):
    (subnet,) = free_subnets(1)
    net = net_engine.networks.create("hairpin", subnet=subnet)
    box, neighbour = spaces.new(), spaces.new()
    container, _ = attach(net_engine, box, "hairpin", "web", ports=["80"])
    attach(net_engine, neighbour, "hairpin", "client")
    serve(spaces, box, tmp_path / "www", body="via the host\n")
    (binding,) = net_engine.networks.published_ports(container)
    # To the host's address on the bridge: DNAT back into the same bridge. The hairpin masquerade makes the
    # reply return through the host; where br_netfilter is loaded, bridged conntrack would also manage.
    got = neighbour.busybox("wget", "-q", "-O", "-", f"http://{net.gateway}:{binding.host_port}/")
    assert got.stdout == "via the host\n"


def test_add_host_and_dns_reach_the_container_files(net_engine, spaces):
    (subnet,) = free_subnets(1)
    net_engine.networks.create("names", subnet=subnet)
    ns = spaces.new()
    # the DNS server is the namespace's own loopback: a lookup that misses the hosts file stays inside
    attach(net_engine, ns, "names", "resolver", extra_hosts=["loopy:127.0.0.1"], dns=["127.0.0.1"],
           dns_search=["corp.example"], dns_options=["ndots:1"])
    assert pings(ns, "loopy")  # resolved from the hosts file the engine wrote
    assert not pings(ns, "nonexistent-name")
    resolv = (ns.etc / "resolv.conf").read_text()
    assert resolv == "nameserver 127.0.0.1\nsearch corp.example\noptions ndots:1\n"
    assert ns.exec("cat", "/etc/resolv.conf").stdout == resolv  # what the container sees
