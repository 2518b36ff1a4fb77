"""Published ports through `imod`: `-p PORT` (ephemeral), `-P` (every EXPOSEd port), `imod port`."""

from __future__ import annotations

import json

import pytest

from tests.support.containers import clean_containers  # noqa: F401 - the fixture below
from tests.support.http import fetch
from tests.support.netns import leak_check_fixture, net_engine_fixture, spaces_fixture  # noqa: F401

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox", "nft"),
              pytest.mark.usefixtures("clean_containers")]


@pytest.fixture
def exposed_image(engine, busybox_tar) -> str:
    """busybox with EXPOSE 80 (tcp by default) and 53/udp, as a Dockerfile would record them."""
    engine.images.import_rootfs(busybox_tar, "exposed:latest", changes=['CMD ["sh"]', "EXPOSE 80", "EXPOSE 53/udp"])
    return "exposed:latest"


def _port_lines(imod, *args: str) -> dict[str, str]:
    """`imod port NAME`: {"80/tcp": "0.0.0.0:49153", ...}."""
    out = imod("port", *args).stdout.decode()
    return dict(line.split(" -> ") for line in out.splitlines())


def test_publish_all_maps_every_exposed_port_to_an_ephemeral_one(net_engine, imod, exposed_image):
    imod("run", "-d", "--name", "web", "-P", "--expose", "9000", exposed_image, "httpd", "-f", "-p", "80",
         "-h", "/var/www")
    ports = _port_lines(imod, "web")
    assert sorted(ports) == ["53/udp", "80/tcp", "9000/tcp"]
    host_ports = {int(v.rpartition(":")[2]) for v in ports.values()}
    assert len(host_ports) == 3 and all(p > 1024 for p in host_ports)
    (one,) = imod("port", "web", "80").stdout.decode().split()
    assert one == ports["80/tcp"]
    assert fetch(f"http://127.0.0.1:{one.rpartition(':')[2]}/index.html") == b"hello from intermodal\n"

    info = json.loads(imod("container", "inspect", "web").stdout)[0]
    published = info["NetworkSettings"]["Ports"]
    assert info["Config"]["ExposedPorts"] == {"53/udp": {}, "80/tcp": {}, "9000/tcp": {}}
    assert {k: v[0]["HostPort"] for k, v in published.items()} == {k: v.rpartition(":")[2] for k, v in ports.items()}
    assert "80/tcp" in imod("ps", "--format", "{{.Ports}}").stdout.decode()
    missing = imod("port", "web", "81", check=False)
    assert missing.returncode != 0 and b"81/tcp" in missing.stderr


def test_explicit_publication_wins_over_publish_all(net_engine, imod, exposed_image):
    imod("run", "-d", "--name", "both", "-P", "-p", "127.0.0.1::80", exposed_image, "sleep", "1000")
    ports = _port_lines(imod, "both")
    assert sorted(ports) == ["53/udp", "80/tcp"]
    assert ports["80/tcp"].startswith("127.0.0.1:")  # the -p item, not a second binding of 80


def test_container_port_alone_gets_an_ephemeral_host_port(net_engine, imod, busybox_image):
    imod("run", "-d", "--name", "eph", "-p", "80", "-p", "127.0.0.1::8080", busybox_image, "httpd", "-f",
         "-p", "80", "-h", "/var/www")
    ports = _port_lines(imod, "eph")
    assert sorted(ports) == ["80/tcp", "8080/tcp"]
    host_ip, _, port = ports["80/tcp"].rpartition(":")
    assert host_ip == "0.0.0.0" and int(port) > 0
    assert ports["8080/tcp"].startswith("127.0.0.1:")
    assert fetch(f"http://127.0.0.1:{port}/index.html") == b"hello from intermodal\n"
    # Without -P, EXPOSE alone publishes nothing.
    imod("run", "-d", "--name", "quiet", "--expose", "80", busybox_image, "sleep", "1000")
    assert imod("port", "quiet").stdout == b""
    exposed = {n: json.loads(imod("container", "inspect", n).stdout)[0]["Config"].get("ExposedPorts")
               for n in ("eph", "quiet")}
    assert exposed == {"eph": {"80/tcp": {}, "8080/tcp": {}}, "quiet": {"80/tcp": {}}}


def test_publish_all_without_a_network_is_refused(net_engine, imod, exposed_image):
    proc = imod("run", "--rm", "--network", "none", "-P", exposed_image, "true", check=False)
    assert proc.returncode == 125 and b"--publish-all" in proc.stderr
    assert imod("ps", "-a", "-q").stdout == b""
