"""Many containers through `imod`: 20 started in parallel on one network, and 100 made and removed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.containers import clean_containers  # noqa: F401 - the fixture below
from tests.support.netns import free_subnets, leak_check_fixture, net_engine_fixture, run, spaces_fixture  # noqa: F401

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox", "nft"),
              pytest.mark.usefixtures("clean_containers")]

CROWD = 20
CHURN = 100


def _imod(root: Path, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "imod"
    return subprocess.run([str(exe), "--root", str(root), *args], capture_output=True, timeout=120)


def test_twenty_containers_started_in_parallel_get_distinct_addresses_and_reach_each_other(
        net_engine, imod, busybox_image, engine_root: Path):
    (subnet,) = free_subnets(1)
    imod("network", "create", "--subnet", subnet, "crowd")
    names = [f"c{i}" for i in range(CROWD)]
    with ThreadPoolExecutor(max_workers=CROWD) as pool:
        procs = list(pool.map(lambda n: _imod(engine_root, "run", "-d", "--name", n, "--network", "crowd",
                                              busybox_image, "sleep", "1000"), names))
    assert [p.returncode for p in procs] == [0] * CROWD, [p.stderr for p in procs if p.returncode]
    info = json.loads(imod("container", "inspect", *names).stdout)
    addresses = [i["NetworkSettings"]["Networks"]["crowd"]["IPAddress"] for i in info]
    assert len(set(addresses)) == CROWD and all(addresses)
    assert sorted(net_engine.networks._ipam(net_engine.networks.get("crowd")).allocated()) == sorted(addresses)

    # Every name is in every hosts file (each join rewrote its neighbours'), and traffic flows: the first
    # container reaches all others by name, the last all others by address, every one its gateway.
    first = " ".join(names[1:])
    proc = imod("exec", names[0], "sh", "-c", f"for h in {first}; do ping -c 1 -W 3 $h >/dev/null || "
                "{ echo unreachable $h; exit 1; }; done", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    others = " ".join(addresses[:-1])
    proc = imod("exec", names[-1], "sh", "-c", f"for a in {others}; do ping -c 1 -W 3 $a >/dev/null || "
                "{ echo unreachable $a; exit 1; }; done", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    gateway = info[0]["NetworkSettings"]["Networks"]["crowd"]["Gateway"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        pings = list(pool.map(lambda n: _imod(engine_root, "exec", n, "ping", "-c", "1", "-W", "3", gateway), names))
    assert [p.returncode for p in pings] == [0] * CROWD, [p.stdout + p.stderr for p in pings if p.returncode]

    with ThreadPoolExecutor(max_workers=4) as pool:
        removed = list(pool.map(lambda n: _imod(engine_root, "rm", "-f", n), names))
    assert [p.returncode for p in removed] == [0] * CROWD, [p.stderr for p in removed if p.returncode]
    assert net_engine.networks.inspect("crowd")["Containers"] == {}
    assert net_engine.networks._ipam(net_engine.networks.get("crowd")).allocated() == {}


def _netns_mounts(root: Path) -> list[str]:
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if " nsfs " in line and line.split()[4].startswith(str(root))]


def test_hundred_containers_made_and_removed_leave_nothing(net_engine, imod, busybox_image, engine_root: Path):
    (subnet,) = free_subnets(1)
    imod("network", "create", "--subnet", subnet, "churn")
    net_engine.networks.ensure_default()
    settings = json.loads((engine_root / "networks" / "config.json").read_text())
    links_before = {n for n in _links() if n.startswith(settings["veth_prefix"])}

    def one(i: int) -> subprocess.CompletedProcess:
        # A mix: the default network, a named one with a published port, and two networks at once.
        extra = (["-p", "80"] if i % 3 == 1 else []) + [["--network", "bridge"], ["--network", "churn"],
                                                        ["--network", "churn", "--network", "bridge"]][i % 3]
        return _imod(engine_root, "run", "--rm", *extra, busybox_image, "true")

    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = list(pool.map(one, range(CHURN)))
    failed = [p.stderr.decode(errors="replace") for p in procs if p.returncode]
    assert not failed, failed[0]

    assert imod("ps", "-a", "-q").stdout == b""
    assert {n for n in _links() if n.startswith(settings["veth_prefix"])} - links_before == set()
    rules = [r for r in net_engine.networks.firewall.rules() if "container" in (r.get("comment") or "")]
    assert rules == []
    assert _netns_mounts(engine_root) == []
    assert list((engine_root / "run" / "netns").iterdir()) == []
    nets = net_engine.networks
    assert nets.store.containers() == []
    for net in nets.list():
        assert nets.store.endpoints(net.id) == [] and nets._ipam(net).allocated() == {}
    bridges = [net.bridge for net in nets.list()]
    ports = run("ip", "-o", "link", "show", "master", bridges[0]).stdout + run(
        "ip", "-o", "link", "show", "master", bridges[1]).stdout
    assert ports == ""


def _links() -> set[str]:
    out = run("ip", "-o", "link", "show").stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def test_the_engine_root_holds_no_network_state_after_rm(net_engine, imod, busybox_image, engine_root: Path):
    """`--rm` with a published port: the ports record and the netns file go with the container."""
    imod("run", "--rm", "-p", "80", busybox_image, "true")
    assert not os.listdir(engine_root / "networks" / "containers")
    assert not os.listdir(engine_root / "run" / "netns")
