"""Network lifecycle on the real kernel: create/inspect/remove/prune, connect/disconnect, a leak test."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from intermodal.errors import AlreadyExists, Conflict, InUse, InvalidArgument, NetworkNotFound
from intermodal.network.manager import EndpointRequest
from tests.support.netns import (  # noqa: F401
    free_subnets,
    leak_check_fixture,
    leaks,
    net_engine_fixture,
    run,
    snapshot,
    spaces_fixture,
)

pytestmark = pytest.mark.requires("root", "nft", "busybox")


def _table(engine) -> str:
    return engine.networks.store.config.table


def test_create_inspect_list_remove(net_engine):
    (subnet,) = free_subnets(1)
    rng = subnet.replace(".0/24", ".128/25")
    net = net_engine.networks.create("app", subnet=subnet, ip_range=rng, labels={"tier": "web"})
    bridge = net.bridge
    assert run("ip", "-o", "link", "show", bridge).returncode == 0
    assert Path(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet").read_text().strip() == "1"

    doc = net_engine.networks.inspect("app")
    assert doc["Name"] == "app" and doc["Id"] == net.id and doc["Driver"] == "bridge"
    assert doc["IPAM"]["Config"] == [{"Subnet": subnet, "Gateway": subnet.replace(".0/24", ".1"), "IPRange": rng}]
    assert doc["Labels"] == {"tier": "web"} and doc["Internal"] is False
    assert net_engine.networks.get(net.id[:12]).name == "app"
    assert [n.name for n in net_engine.networks.list()] == ["app"]
    comments = {r.get("comment") for r in net_engine.networks.firewall.rules()}
    assert f"imod network {net.id}" in comments

    with pytest.raises(AlreadyExists):
        net_engine.networks.create("app", subnet=free_subnets(2)[1])
    with pytest.raises(Conflict, match="overlaps"):
        net_engine.networks.create("other", subnet=subnet)

    assert net_engine.networks.remove("app") == "app"
    assert run("ip", "link", "show", bridge, check=False).returncode != 0
    assert not any(r.get("comment") for r in net_engine.networks.firewall.rules())
    with pytest.raises(NetworkNotFound):
        net_engine.networks.get("app")


def test_create_refuses_bad_input(net_engine):
    for name in ("bridge", "host", "none"):
        with pytest.raises(InvalidArgument, match="predefined"):
            net_engine.networks.create(name)
    with pytest.raises(InvalidArgument, match="need --subnet"):
        net_engine.networks.create("x", gateway="10.0.0.1")
    with pytest.raises(InvalidArgument):
        net_engine.networks.create("../evil")
    assert net_engine.networks.list() == []


def test_subnet_is_picked_when_not_given(net_engine):
    net = net_engine.networks.create("auto")
    routes = run("ip", "-4", "route").stdout
    assert f"{net.subnet} dev {net.bridge}" in routes


def test_remove_in_use_refused_prune_keeps_used(net_engine, spaces):
    s1, s2 = free_subnets(2)
    net_engine.networks.create("used", subnet=s1)
    net_engine.networks.create("idle", subnet=s2)
    ns = spaces.new()
    container = secrets.token_hex(32)
    net_engine.networks.attach(container, ns.path, [EndpointRequest("used")], name="box")
    with pytest.raises(InUse, match="box"):
        net_engine.networks.remove("used")
    assert net_engine.networks.prune() == ["idle"]
    assert [n.name for n in net_engine.networks.list()] == ["used"]
    net_engine.networks.detach(container)
    assert net_engine.networks.prune() == ["used"]


def test_connect_disconnect_and_static_ip(net_engine, spaces):
    s1, s2 = free_subnets(2)
    net_engine.networks.create("a", subnet=s1)
    net_engine.networks.create("b", subnet=s2)
    ns, peer = spaces.new(), spaces.new()
    container = secrets.token_hex(32)
    want = s2.replace(".0/24", ".77")
    net_engine.networks.attach(container, ns.path, [EndpointRequest("a")], name="multi",
                               hosts_path=ns.etc / "hosts")
    net_engine.networks.attach(secrets.token_hex(32), peer.path, [EndpointRequest("b")], name="peer",
                               hosts_path=peer.etc / "hosts")

    ep = net_engine.networks.connect("b", container, ns.path, ip=want, aliases=["m2"])
    assert ep.address == want and ep.ifname == "eth1"
    assert f"inet {want}/24" in ns.exec("ip", "-o", "addr", "show", "eth1").stdout
    assert ns.busybox("ping", "-c", "1", "-W", "1", "peer", check=False).returncode == 0
    assert "m2" in (peer.etc / "hosts").read_text()
    with pytest.raises(AlreadyExists):
        net_engine.networks.connect("b", container, ns.path)
    with pytest.raises(Conflict, match="already in use"):
        net_engine.networks.connect("b", secrets.token_hex(32), spaces.new().path, ip=want)

    settings = net_engine.networks.container_settings(container)
    assert set(settings["Networks"]) == {"a", "b"} and settings["Networks"]["b"]["IPAddress"] == want

    net_engine.networks.disconnect("b", container)
    assert "eth1" not in ns.exec("ip", "-o", "link").stdout
    assert "m2" not in (peer.etc / "hosts").read_text()
    assert want not in net_engine.networks._ipam(net_engine.networks.get("b")).allocated()
    with pytest.raises(NetworkNotFound, match="not connected"):
        net_engine.networks.disconnect("b", container)


def test_failed_attach_leaves_nothing(net_engine, spaces):
    (subnet,) = free_subnets(1)
    net_engine.networks.create("half", subnet=subnet)
    container = secrets.token_hex(32)
    gone = spaces.new()
    path = gone.path
    run("ip", "netns", "del", gone.name)  # the namespace vanished (container died) before we plugged
    with pytest.raises(Exception, match=r"does not exist|No such file"):
        net_engine.networks.attach(container, path, [EndpointRequest("half")], ports=["80"])
    assert net_engine.networks.endpoints(container) == []
    assert net_engine.networks.store.container(container) is None
    assert net_engine.networks._ipam(net_engine.networks.get("half")).allocated() == {}
    assert not [r for r in net_engine.networks.firewall.rules() if "container" in r.get("comment", "")]


def test_hundred_endpoints_created_and_removed_leave_nothing(net_engine, spaces):
    (subnet,) = free_subnets(1)
    net_engine.networks.create("churn", subnet=subnet)
    before = snapshot()
    table = _table(net_engine)
    for _round in range(10):
        batch = []
        for _ in range(10):
            ns = spaces.new()
            container = secrets.token_hex(32)
            net_engine.networks.attach(container, ns.path, [EndpointRequest("churn")], ports=["80"],
                                       name=f"c{container[:6]}", hosts_path=ns.etc / "hosts")
            batch.append((container, ns))
        assert len(net_engine.networks.store.endpoints(net_engine.networks.get("churn").id)) == 10
        for container, ns in batch:
            net_engine.networks.detach(container)
            spaces.remove(ns)
    listing = json.loads(run("nft", "-j", "list", "table", "inet", table).stdout)["nftables"]
    assert not [i for i in listing if "rule" in i and "container" in i["rule"].get("comment", "")]
    assert net_engine.networks._ipam(net_engine.networks.get("churn")).allocated() == {}
    assert net_engine.networks.store.containers() == []
    net_engine.networks.remove("churn")
    assert leaks(before, table) == []  # no link, netns mount, /etc/netns entry or tagged rule


def _attach_in_child(args: tuple[str, str, str]) -> str:
    from intermodal.engine import Engine

    root, container, netns = args
    (ep,) = Engine(root).networks.attach(container, netns, [EndpointRequest("crowd")], name=f"c{container[:6]}")
    return ep.address


def test_twenty_parallel_attaches_get_distinct_addresses(net_engine, spaces):
    import multiprocessing

    (subnet,) = free_subnets(1)
    net_engine.networks.create("crowd", subnet=subnet)
    jobs = [(str(net_engine.paths.root), secrets.token_hex(32), spaces.new().path) for _ in range(20)]
    with multiprocessing.get_context("fork").Pool(20) as workers:
        addresses = workers.map(_attach_in_child, jobs, chunksize=1)
    assert len(set(addresses)) == 20
    eps = net_engine.networks.store.endpoints(net_engine.networks.get("crowd").id)
    assert sorted(ep.address for ep in eps) == sorted(addresses)
    assert all(ep.ifname == "eth0" for ep in eps)
    for _, container, _netns in jobs:
        net_engine.networks.detach(container)


def test_detach_after_the_namespace_is_gone(net_engine, spaces):
    (subnet,) = free_subnets(1)
    net_engine.networks.create("exit", subnet=subnet)
    ns = spaces.new()
    container = secrets.token_hex(32)
    (ep,) = net_engine.networks.attach(container, ns.path, [EndpointRequest("exit")], ports=["80"])
    spaces.remove(ns)  # the container's process exited: its namespace and veth pair go with it
    net_engine.networks.detach(container)
    net_engine.networks.detach(container)  # twice is fine
    assert net_engine.networks._ipam(net_engine.networks.get("exit")).allocated() == {}
    assert run("ip", "link", "show", ep.host_ifname, check=False).returncode != 0
    assert not [r for r in net_engine.networks.firewall.rules() if "container" in r.get("comment", "")]


def test_ports_follow_the_container_when_it_leaves_its_first_network(net_engine, spaces):
    s1, s2 = free_subnets(2)
    net_engine.networks.create("first", subnet=s1)
    net_engine.networks.create("second", subnet=s2)
    ns = spaces.new()
    container = secrets.token_hex(32)
    eps = net_engine.networks.attach(container, ns.path, [EndpointRequest("first"), EndpointRequest("second")],
                                     ports=["80"])

    def dnat_targets() -> set[str]:
        return {e["dnat"]["addr"] for r in net_engine.networks.firewall.rules()
                for e in r["expr"] if "dnat" in e}

    assert len(dnat_targets()) == 1 and dnat_targets() <= {ep.address for ep in eps}
    current = dnat_targets().pop()
    leaving = next(ep for ep in eps if ep.address == current)
    staying = next(ep for ep in eps if ep.address != current)
    leaving_net = net_engine.networks.store.networks()
    name = next(n.name for n in leaving_net if n.id == leaving.network_id)
    net_engine.networks.disconnect(name, container)
    assert dnat_targets() == {staying.address}


def test_none_mode_has_loopback_only(net_engine, spaces):
    ns = spaces.new()
    net_engine.networks.setup_loopback(ns.path)
    links = ns.exec("ip", "-o", "link").stdout
    assert "lo:" in links and "UP" in links.split("lo:")[1].splitlines()[0]
    assert "eth" not in links


def test_attach_twice_is_refused_and_keeps_the_first(net_engine, spaces):
    (subnet,) = free_subnets(1)
    net_engine.networks.create("once", subnet=subnet)
    ns = spaces.new()
    container = secrets.token_hex(32)
    (ep,) = net_engine.networks.attach(container, ns.path, [EndpointRequest("once")])
    with pytest.raises(AlreadyExists, match="already attached"):
        net_engine.networks.attach(container, ns.path, [EndpointRequest("once")])
    with pytest.raises(InvalidArgument, match="listed twice"):
        net_engine.networks.attach(secrets.token_hex(32), ns.path, [EndpointRequest("once"), EndpointRequest("once")])
    assert [e.address for _, e in net_engine.networks.endpoints(container)] == [ep.address]
    assert f"inet {ep.address}/" in ns.exec("ip", "-o", "addr").stdout


def test_a_bridge_name_of_another_interface_is_refused(net_engine, spaces):
    (subnet,) = free_subnets(1)
    ns = spaces.new()
    spaces.routed_peer(ns, free_subnets(2)[1])
    host_link = spaces.host_links[-1]  # a veth, not a bridge: adopting it would delete it with the network
    with pytest.raises(AlreadyExists, match="not a bridge"):
        net_engine.networks.create("steal", subnet=subnet, options={"com.docker.network.bridge.name": host_link})
    assert run("ip", "link", "show", host_link).returncode == 0
    assert subnet.replace(".0/24", ".1/24") not in run("ip", "-4", "addr", "show", host_link).stdout
    assert net_engine.networks.list() == []


def test_the_table_goes_with_the_last_network(net_engine):
    s1, s2 = free_subnets(2)
    net_engine.networks.create("one", subnet=s1)
    net_engine.networks.create("two", subnet=s2)
    table = _table(net_engine)
    net_engine.networks.remove("one")
    assert run("nft", "list", "table", "inet", table, check=False).returncode == 0  # "two" still needs it
    net_engine.networks.remove("two")
    assert run("nft", "list", "table", "inet", table, check=False).returncode != 0


def test_attach_and_detach_need_no_pyroute2_once_the_network_exists(net_engine, spaces, engine_root: Path):
    """The per-container path speaks rtnetlink itself (network/rtnl.py); pyroute2 costs >100 ms to import."""
    import subprocess
    import sys

    (subnet,) = free_subnets(1)
    net_engine.networks.create("fast", subnet=subnet)
    ns = spaces.new()
    code = ("import sys; from intermodal.engine import Engine; from intermodal.network.manager import "
            "EndpointRequest; n = Engine(sys.argv[1]).networks; "
            "(ep,) = n.attach('c' * 64, sys.argv[2], [EndpointRequest('fast')], name='c'); print(ep.address); "
            "n.detach('c' * 64); print('pyroute2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(engine_root), ns.path], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert out[0].startswith(subnet.rsplit(".", 1)[0]) and out[1] == "False"
    assert "eth" not in ns.exec("ip", "-o", "link").stdout  # detached: the container end went with the pair
