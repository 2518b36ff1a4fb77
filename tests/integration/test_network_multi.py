"""Several networks per container: repeated `--network`, and `imod network connect/disconnect` of created,
stopped and running containers (recorded in the configuration, live where the namespace exists)."""

from __future__ import annotations

import json

import pytest

from tests.support.containers import clean_containers  # noqa: F401 - the fixture below
from tests.support.netns import free_subnets, leak_check_fixture, net_engine_fixture, spaces_fixture  # noqa: F401

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox", "nft"),
              pytest.mark.usefixtures("clean_containers")]


def _networks(imod, name: str) -> dict[str, dict]:
    return json.loads(imod("container", "inspect", name).stdout)[0]["NetworkSettings"]["Networks"]


def _addresses(imod, name: str) -> list[str]:
    """The container's IPv4 addresses on its eth interfaces, as `ip` inside it shows them."""
    out = imod("exec", name, "ip", "-o", "-4", "addr", "show").stdout.decode()
    return sorted(line.split()[3].split("/")[0] for line in out.splitlines() if " eth" in line)


def _default_route(imod, name: str) -> str:
    lines = imod("exec", name, "ip", "route").stdout.decode().splitlines()
    default = [line.split() for line in lines if line.startswith("default via ")]
    return default[0][2] if default else ""


def _pings(imod, image: str, network: str, target: str) -> bool:
    proc = imod("run", "--rm", "--network", network, image, "ping", "-c", "1", "-W", "3", target, check=False)
    return proc.returncode == 0


@pytest.fixture
def three(imod):
    subnets = free_subnets(3)
    for name, subnet in zip(("na", "nb", "nc"), subnets, strict=True):
        imod("network", "create", "--subnet", subnet, name)
    return subnets


def test_run_joins_every_network_given(net_engine, imod, busybox_image, three):
    imod("run", "-d", "--name", "multi", "--network", "na", "--network-alias", "ay", "--network",
         "name=nb,alias=bee,ip=" + three[1].replace(".0/24", ".50"), busybox_image, "sleep", "1000")
    nets = _networks(imod, "multi")
    assert sorted(nets) == ["na", "nb"]
    assert json.loads(imod("ps", "--format", "json").stdout.splitlines()[0])["Networks"] == "na,nb"
    assert nets["nb"]["IPAddress"] == three[1].replace(".0/24", ".50") and nets["nb"]["Aliases"] == ["bee"]
    assert nets["na"]["Aliases"] == ["ay"]
    assert _addresses(imod, "multi") == sorted([nets["na"]["IPAddress"], nets["nb"]["IPAddress"]])
    assert _default_route(imod, "multi") == nets["na"]["Gateway"]  # the first network's, as in Docker
    assert _pings(imod, busybox_image, "nb", "bee") and _pings(imod, busybox_image, "na", "ay")
    assert _pings(imod, busybox_image, "nb", "multi")
    assert not _pings(imod, busybox_image, "nc", nets["na"]["IPAddress"])  # a third network stays apart

    proc = imod("run", "--rm", "--network", "na", "--network", "none", busybox_image, "true", check=False)
    assert proc.returncode == 125 and b"alone" in proc.stderr
    proc = imod("run", "--rm", "--network", "na", "--network", "na", busybox_image, "true", check=False)
    assert proc.returncode == 125 and b"twice" in proc.stderr
    imod("rm", "-f", "multi")
    for name in ("na", "nb"):
        assert net_engine.networks.inspect(name)["Containers"] == {}


def test_connect_and_disconnect_a_running_container(net_engine, imod, busybox_image, three):
    imod("run", "-d", "--name", "box", "--network", "na", busybox_image, "sleep", "1000")
    imod("network", "connect", "--alias", "cee", "nc", "box")
    nets = _networks(imod, "box")
    assert sorted(nets) == ["na", "nc"] and nets["nc"]["Aliases"] == ["cee"]
    assert len(_addresses(imod, "box")) == 2
    assert imod("ps", "--filter", "name=box", "--format", "{{.Networks}}").stdout == b"na,nc\n"  # as Docker
    assert _pings(imod, busybox_image, "nc", "cee")
    again = imod("network", "connect", "nc", "box", check=False)
    assert again.returncode != 0 and b"already connected" in again.stderr

    imod("network", "disconnect", "na", "box")  # the network of the default route
    assert sorted(_networks(imod, "box")) == ["nc"]
    assert imod("ps", "--filter", "name=box", "--format", "{{.Networks}}").stdout == b"nc\n"
    assert _addresses(imod, "box") == [nets["nc"]["IPAddress"]]
    assert _default_route(imod, "box") == nets["nc"]["Gateway"]  # the gateway moved to the network left
    assert net_engine.networks.inspect("na")["Containers"] == {}
    proc = imod("network", "disconnect", "na", "box", check=False)
    assert proc.returncode != 0 and b"not connected" in proc.stderr
    imod("network", "disconnect", "--force", "na", "box")

    imod("restart", "-t", "0", "box")  # the configuration holds: nc only
    assert sorted(_networks(imod, "box")) == ["nc"] and len(_addresses(imod, "box")) == 1


def test_connect_a_created_container_applies_at_start(net_engine, imod, busybox_image, three):
    imod("create", "--name", "later", "--network", "na", busybox_image, "sleep", "1000")
    imod("network", "connect", "--ip", three[1].replace(".0/24", ".77"), "nb", "later")
    assert net_engine.networks.inspect("nb")["Containers"] == {}  # recorded, not plugged: no namespace yet
    configured = _networks(imod, "later")  # as Docker shows a created container: configured, no address yet
    assert sorted(configured) == ["na", "nb"] and configured["nb"]["IPAddress"] == ""
    assert configured["nb"]["IPAMConfig"] == {"IPv4Address": three[1].replace(".0/24", ".77")}
    imod("start", "later")
    nets = _networks(imod, "later")
    assert sorted(nets) == ["na", "nb"] and nets["nb"]["IPAddress"] == three[1].replace(".0/24", ".77")
    assert len(_addresses(imod, "later")) == 2

    imod("stop", "-t", "0", "later")  # stopped: the namespace stays, so the change is made at once
    imod("network", "disconnect", "nb", "later")
    assert net_engine.networks.inspect("nb")["Containers"] == {}
    imod("network", "connect", "nc", "later")
    imod("start", "later")
    assert sorted(_networks(imod, "later")) == ["na", "nc"] and len(_addresses(imod, "later")) == 2
    imod("rm", "-f", "later")
    assert net_engine.networks.store.containers() == []
    for name in ("na", "nb", "nc"):
        assert net_engine.networks.inspect(name)["Containers"] == {}


def test_containers_without_a_network_of_their_own_cannot_connect(net_engine, imod, busybox_image, three):
    imod("create", "--name", "lonely", "--network", "none", busybox_image, "sleep", "1000")
    imod("start", "lonely")
    proc = imod("network", "connect", "na", "lonely", check=False)
    assert proc.returncode == 125 and b"--network none" in proc.stderr
    imod("rm", "-f", "lonely")
    assert net_engine.networks.store.containers() == []
    assert net_engine.networks.inspect("na")["Containers"] == {}


def test_rm_removes_an_endpoint_made_outside_the_configuration(net_engine, imod, busybox_image, three):
    """The old bug: an endpoint the container's --network does not explain was kept after rm."""
    imod("run", "-d", "--name", "odd", "--network", "none", busybox_image, "sleep", "1000")
    c = net_engine.containers.get("odd")
    net_engine.networks.connect("na", c.id, f"/proc/{c.state['Pid']}/ns/net", name="odd")  # behind its back
    assert net_engine.networks.inspect("na")["Containers"]
    imod("rm", "-f", "odd")
    assert net_engine.networks.inspect("na")["Containers"] == {}
    assert net_engine.networks.store.containers() == []


def test_engine_api_connect_disconnect(net_engine, imod, busybox_image, three):
    imod("run", "-d", "--name", "api", "--network", "na", busybox_image, "sleep", "1000")
    net_engine.containers.connect("api", "nb", aliases=("x",), ipv4_address=three[1].replace(".0/24", ".9"))
    nets = _networks(imod, "api")
    assert nets["nb"]["IPAddress"] == three[1].replace(".0/24", ".9") and nets["nb"]["Aliases"] == ["x"]
    net_engine.containers.disconnect("api", "nb")
    net_engine.containers.disconnect("api", "nb", force=True)
    assert sorted(_networks(imod, "api")) == ["na"]
