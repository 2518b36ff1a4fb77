"""`imod network ...` end to end, against a test engine root."""

from __future__ import annotations

import json

import pytest

from tests.support.netns import free_subnets, leak_check_fixture, net_engine_fixture, run, spaces_fixture  # noqa: F401

pytestmark = pytest.mark.requires("root", "nft")


def test_create_ls_inspect_rm_prune(net_engine, imod):
    s1, s2 = free_subnets(2)
    net_id = imod("network", "create", "--subnet", s1, "--internal", "-l", "team=web", "front").stdout.decode().strip()
    assert len(net_id) == 64
    imod("network", "create", "--subnet", s2, "back")

    listing = imod("network", "ls").stdout.decode().splitlines()
    assert listing[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert any(line.split()[:2] == [net_id[:12], "front"] for line in listing[1:])
    assert imod("network", "ls", "-q", "-f", "label=team=web").stdout.decode().split() == [net_id[:12]]
    assert imod("network", "ls", "--format", "{{.Name}}", "-f", "name=ba").stdout.decode() == "back\n"

    (doc,) = json.loads(imod("network", "inspect", "front").stdout)
    assert doc["Id"] == net_id and doc["Internal"] is True and doc["Labels"] == {"team": "web"}
    assert doc["IPAM"]["Config"][0]["Subnet"] == s1
    assert imod("network", "inspect", "-f", "{{.Name}}", net_id[:12]).stdout.decode() == "front\n"
    bridge = doc["Options"]["com.docker.network.bridge.name"]
    assert run("ip", "link", "show", bridge).returncode == 0

    dup = imod("network", "create", "--subnet", s2, "front", check=False)
    assert dup.returncode == 125 and b"already exists" in dup.stderr
    bad = imod("network", "create", "--subnet", "10.0.0.5/24", "odd", check=False)
    assert bad.returncode == 125 and b"did you mean 10.0.0.0/24" in bad.stderr

    nobody = imod("network", "connect", "back", "no-such-container", check=False)
    assert nobody.returncode != 0 and b"no-such-container" in nobody.stderr

    assert imod("network", "rm", "front").stdout.decode() == "front\n"
    assert run("ip", "link", "show", bridge, check=False).returncode != 0
    missing = imod("network", "rm", "front", check=False)
    assert missing.returncode == 1 and b"not found" in missing.stderr
    assert imod("network", "rm", "-f", "front").returncode == 0
    assert imod("network", "prune").stdout.decode() == "Deleted Networks:\nback\n"
    assert imod("network", "ls", "-q").stdout == b""
