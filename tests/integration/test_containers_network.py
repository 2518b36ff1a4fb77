"""Containers on networks (`--network bridge` or a named one), through engine.networks."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.support.containers import clean_containers  # noqa: F401 - the fixture below
from tests.support.http import fetch
from tests.support.netns import free_subnets, leak_check_fixture, net_engine_fixture, spaces_fixture  # noqa: F401

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox", "nft"),
              pytest.mark.usefixtures("clean_containers")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_bridge_gives_an_address_and_publishes_ports(net_engine, imod, busybox_image, engine_root: Path):
    out = imod("run", "--rm", "--network", "bridge", busybox_image, "sh", "-c", "ip -o -4 addr show eth0")
    assert b" inet " in out.stdout
    port = _free_port()
    imod("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", busybox_image,  # bridge: the default
         "httpd", "-f", "-p", "80", "-h", "/var/www")
    assert fetch(f"http://127.0.0.1:{port}/index.html") == b"hello from intermodal\n"
    assert imod("ps", "--format", "{{.Ports}}").stdout == f"127.0.0.1:{port}->80/tcp\n".encode()
    info = json.loads(imod("container", "inspect", "web").stdout)[0]
    address = info["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    assert address and address in (engine_root / "containers" / info["Id"] / "hosts").read_text()
    imod("restart", "-t", "1", "web")  # the namespace and the address stay until rm
    info = json.loads(imod("container", "inspect", "web").stdout)[0]
    assert info["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == address
    imod("rm", "-f", "web")
    assert not list((engine_root / "run" / "netns").iterdir())
    assert net_engine.networks.store.containers() == []


def test_named_network_resolves_container_names(net_engine, imod, busybox_image):
    (subnet,) = free_subnets(1)
    imod("network", "create", "--subnet", subnet, "app")
    imod("run", "-d", "--name", "db", "--network", "app", busybox_image, "sleep", "1000")
    out = imod("run", "--rm", "--network", "app", busybox_image, "ping", "-c", "1", "-W", "5", "db", check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    proc = imod("network", "rm", "app", check=False)
    assert proc.returncode != 0  # in use by db
    imod("rm", "-f", "db")
    imod("network", "rm", "app")


def test_none_and_host_are_loopback_only_or_the_hosts(net_engine, imod, busybox_image):
    out = imod("run", "--rm", "--network", "none", busybox_image, "ip", "-o", "link").stdout
    assert b" lo:" in out and b"eth0" not in out
    assert b"state UP" in out or b"LOOPBACK,UP" in out  # loopback up, as runc leaves it
    imod("run", "--rm", "--network", "none", busybox_image, "ping", "-c", "1", "-W", "2", "127.0.0.1")
    host_links = imod("run", "--rm", "--network", "host", busybox_image, "ip", "-o", "link").stdout
    assert host_links.count(b"\n") > out.count(b"\n")
    assert net_engine.networks.list() == []  # neither made the default network


def test_container_mode_joins_another_containers_namespace(net_engine, imod, busybox_image):
    imod("run", "-d", "--name", "base", busybox_image, "sleep", "1000")  # the default bridge
    info = json.loads(imod("container", "inspect", "base").stdout)[0]
    address = info["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    out = imod("run", "--rm", "--network", "container:base", busybox_image, "sh", "-c",
               "ip -o -4 addr show eth0; hostname; cat /etc/hosts").stdout.decode()
    assert f"inet {address}/" in out
    assert out.split("\n")[1] == info["Config"]["Hostname"]  # the UTS name follows the network, as in Docker
    assert f"{address}\t{info['Config']['Hostname']}" in out  # base's hosts file
    imod("run", "-d", "--name", "lonely", "--network", "none", busybox_image, "sleep", "1000")
    out = imod("run", "--rm", "--network", "container:lonely", busybox_image, "ip", "-o", "link").stdout
    assert b" lo:" in out and b"eth0" not in out
    proc = imod("run", "--rm", "--network", "container:base", "-p", "80", busybox_image, "true", check=False)
    assert proc.returncode == 125
    imod("stop", "-t", "0", "lonely")
    proc = imod("run", "--rm", "--network", "container:lonely", busybox_image, "true", check=False)
    assert proc.returncode == 125 and b"not running" in proc.stderr
    imod("rm", "-f", "base", "lonely")


def test_bad_network_input_is_refused_before_anything_is_made(net_engine, imod, busybox_image):
    proc = imod("run", "--rm", "--network", "nosuchnet", busybox_image, "true", check=False)
    assert proc.returncode == 125 and b"nosuchnet" in proc.stderr
    proc = imod("run", "--rm", "--network", "none", "-p", "80", busybox_image, "true", check=False)
    assert proc.returncode == 125 and b"--network bridge" in proc.stderr
    proc = imod("run", "--rm", "--network", "bridge", "-p", "99999:80", busybox_image, "true", check=False)
    assert proc.returncode == 125
    assert imod("ps", "-a", "-q").stdout == b""


def test_internal_network_has_no_way_out_and_no_way_in(net_engine, imod, busybox_image):
    inner, outer = free_subnets(2)
    imod("network", "create", "--internal", "--subnet", inner, "sealed")
    imod("network", "create", "--subnet", outer, "open")
    imod("run", "-d", "--name", "peer", "--network", "open", busybox_image, "sleep", "1000")
    peer = json.loads(imod("container", "inspect", "peer").stdout)[0]["NetworkSettings"]["Networks"]["open"]
    imod("run", "-d", "--name", "hermit", "--network", "sealed", busybox_image, "sleep", "1000")
    hermit = json.loads(imod("container", "inspect", "hermit").stdout)[0]["NetworkSettings"]["Networks"]["sealed"]
    routes = imod("exec", "hermit", "ip", "route").stdout.decode().splitlines()
    assert routes and not [r for r in routes if r.startswith("default")]  # its subnet only: no route out
    for target in (peer["IPAddress"], peer["Gateway"]):
        out = imod("exec", "hermit", "ping", "-c", "1", "-W", "2", target, check=False)
        assert out.returncode != 0, target
    out = imod("exec", "peer", "ping", "-c", "1", "-W", "2", hermit["IPAddress"], check=False)
    assert out.returncode != 0  # nor in: the host does not forward to an internal network
    inside = imod("run", "--rm", "--network", "sealed", busybox_image, "ping", "-c", "1", "-W", "3", "hermit",
                  check=False)
    assert inside.returncode == 0, inside.stdout + inside.stderr  # its own members still talk
    imod("rm", "-f", "peer", "hermit")


def test_a_host_port_published_twice_is_refused_before_the_second_starts(net_engine, imod, busybox_image):
    port = _free_port()
    imod("run", "-d", "--name", "first", "-p", f"127.0.0.1:{port}:80", busybox_image, "httpd", "-f", "-p", "80",
         "-h", "/var/www")
    proc = imod("run", "-d", "--name", "second", "-p", f"{port}:8080", busybox_image, "sleep", "1000", check=False)
    assert proc.returncode == 125 and f":{port}/tcp".encode() in proc.stderr and b"first" in proc.stderr
    state = json.loads(imod("container", "inspect", "second").stdout)[0]["State"]
    assert state["Status"] == "created" and not state["Running"]  # nothing ran, nothing was plugged
    assert net_engine.networks.store.container(state_id(imod, "second")) is None
    assert fetch(f"http://127.0.0.1:{port}/index.html") == b"hello from intermodal\n"  # the first keeps it
    imod("rm", "-f", "first", "second")


def state_id(imod, name: str) -> str:
    return json.loads(imod("container", "inspect", name).stdout)[0]["Id"]
