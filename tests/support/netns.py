"""Throwaway network namespaces, test network settings and a leak check for the network tests.

Every name made here carries a test prefix (netns `itn-`, bridges `itb`,
veths `itv`, host-side test links `ith`, nft tables `imt`) followed by this
test process's SESSION tag, so the leak checks look only at what this run
makes, even while other test runs on the machine create links of their own.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

NETNS_DIR = Path("/run/netns")
ETC_NETNS = Path("/etc/netns")
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
TEST_POOL = ipaddress.ip_network("10.231.0.0/16")  # test subnets are /24s of this, clear of host routes
DEFAULT_POOL = ipaddress.ip_network("10.232.0.0/16")  # the default `bridge` network of test engines
SESSION = secrets.token_hex(2)[:3]  # in every name this test process makes
PREFIXES = (f"itb{SESSION}", f"itv{SESSION}", f"itn-{SESSION}", f"ith{SESSION}")


def run(*args: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def free_subnets(count: int, pool: ipaddress.IPv4Network = TEST_POOL) -> list[str]:
    """/24s of TEST_POOL that overlap no host route (another bridge, a VPN)."""
    routes = []
    for line in run("ip", "-4", "route", "show", "table", "all").stdout.splitlines():
        word = line.split()[0] if line.split() else ""
        if word in ("local", "broadcast"):
            word = line.split()[1]
        with contextlib.suppress(ValueError):
            if word != "default":
                routes.append(ipaddress.ip_network(word, strict=False))
    out = []
    for net in pool.subnets(new_prefix=24):
        if not any(net.overlaps(r) for r in routes if r.prefixlen > 0):
            out.append(str(net))
        if len(out) == count:
            return out
    import pytest

    pytest.skip(f"no {count} free /24s in {pool} on this host")
    return out


@dataclass
class Netns:
    name: str

    @property
    def path(self) -> str:
        return str(NETNS_DIR / self.name)

    @property
    def etc(self) -> Path:
        """Files here are bind-mounted over /etc by `ip netns exec` (hosts, resolv.conf)."""
        return ETC_NETNS / self.name

    def exec(self, *args: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess:
        return run("ip", "netns", "exec", self.name, *args, check=check, timeout=timeout)

    def busybox(self, *args: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess:
        return self.exec(BUSYBOX, *args, check=check, timeout=timeout)


@dataclass
class Namespaces:
    """Makes named network namespaces and background processes in them; `close` removes all of them."""

    made: list[Netns] = field(default_factory=list)
    procs: list[subprocess.Popen] = field(default_factory=list)
    host_links: list[str] = field(default_factory=list)

    def new(self) -> Netns:
        ns = Netns(f"itn-{SESSION}{secrets.token_hex(4)}")
        self.made.append(ns)
        run("ip", "netns", "add", ns.name)
        ns.etc.mkdir(parents=True, exist_ok=True)
        return ns

    def remove(self, ns: Netns) -> None:
        run("ip", "netns", "del", ns.name)
        shutil.rmtree(ns.etc, ignore_errors=True)
        self.made.remove(ns)

    def spawn(self, ns: Netns, *args: str) -> subprocess.Popen:
        """A long-running busybox applet in *ns*, stopped by `close` (by its PID)."""
        proc = subprocess.Popen(["ip", "netns", "exec", ns.name, BUSYBOX, *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        return proc

    def routed_peer(self, ns: Netns, subnet: str) -> tuple[str, str]:
        """A veth between the host and *ns* (no bridge): a 'client host'. Returns (host address, ns address)."""
        net = ipaddress.ip_network(subnet)
        host_ip, ns_ip = str(net.network_address + 1), str(net.network_address + 2)
        host_if = f"ith{SESSION}{secrets.token_hex(4)}"
        self.host_links.append(host_if)
        run("ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth9", "netns", ns.name)
        run("ip", "addr", "add", f"{host_ip}/{net.prefixlen}", "dev", host_if)
        run("ip", "link", "set", host_if, "up")
        ns.exec("ip", "addr", "add", f"{ns_ip}/{net.prefixlen}", "dev", "eth9")
        ns.exec("ip", "link", "set", "eth9", "up")
        ns.exec("ip", "link", "set", "lo", "up")
        ns.exec("ip", "route", "add", "default", "via", host_ip)
        return host_ip, ns_ip

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)  # `ip netns exec` execs busybox: the PID is busybox's
            proc.wait(timeout=10)
        for link in self.host_links:
            run("ip", "link", "del", link, check=False)
        for ns in self.made:
            run("ip", "netns", "del", ns.name, check=False)
            shutil.rmtree(ns.etc, ignore_errors=True)
        with contextlib.suppress(OSError):
            ETC_NETNS.rmdir()  # only if empty: other tools' entries stay


TEST_POOLS = [str(n) for n in DEFAULT_POOL.subnets(new_prefix=24)]  # default and subnet-less networks of tests


def engine_settings(root: Path) -> dict:
    """networks/config.json for an engine root: our own table, prefixed names and test address pools.

    The engine picks each default or subnet-less network's subnet from the pools, clear of host routes
    (so other test engines' bridges), when it first needs one: nothing is looked up here.
    """
    tag = SESSION + secrets.token_hex(2)
    settings = {"table": f"imt{tag}", "default_bridge": f"itb{tag}d", "bridge_prefix": f"itb{tag}",
                "veth_prefix": f"itv{SESSION}", "default_address_pools": TEST_POOLS}
    (root / "networks").mkdir(parents=True, exist_ok=True)
    (root / "networks" / "config.json").write_text(json.dumps(settings))
    return settings


def cleanup_engine(engine, table: str) -> None:
    """Remove every container endpoint and network of the engine, then its nft table."""
    nets = engine.networks
    for record in nets.store.containers():
        with contextlib.suppress(Exception):
            nets.detach(record.container_id)
    for net in nets.list():
        for ep in nets.store.endpoints(net.id):
            with contextlib.suppress(Exception):
                nets.detach(ep.container_id)
        with contextlib.suppress(Exception):
            nets._teardown(net)
    run("nft", "delete", "table", "inet", table, check=False)


@contextlib.contextmanager
def isolated_networks(root: Path) -> Iterator[None]:
    """Every test engine root gets test network settings; whatever networks it still has afterwards
    (the default `bridge` network is never removed by `network rm`) are torn down with its table."""
    engine_settings(root)
    try:
        yield
    finally:
        networks = root / "networks"
        made = networks.is_dir() and any(p.name != "config.json" for p in networks.iterdir())
        if made:
            from intermodal.engine import Engine

            table = json.loads((networks / "config.json").read_text())["table"]
            cleanup_engine(Engine(root=root), table)


# The engine's own defaults (table `intermodal`, bridges imod0 and imbr-*, veths imv*), which no test
# may use, generic veths (podman's), and this run's test names.
HOST_LINK_PREFIXES = ("imod", "imv", "imbr-", "veth", *PREFIXES)
HOST_TABLES = ("intermodal", f"imt{SESSION}")


def host_network_state() -> frozenset[str]:
    """nft tables and links that this run must not leave more of than it found (other runs' are ignored)."""
    if os.geteuid() != 0 or not shutil.which("nft"):
        return frozenset()
    tables = {f"nft table {line.split()[1]} {line.split()[2]}" for line in
              run("nft", "list", "tables", check=False).stdout.splitlines()
              if len(line.split()) == 3 and line.split()[2].startswith(HOST_TABLES)}
    links = {f"link {n}" for n in snapshot().links if n.startswith(HOST_LINK_PREFIXES)}
    return frozenset(tables | links)


def gained_since(before: frozenset[str], settle: float = 5.0) -> list[str]:
    """What appeared since *before* and is still there after *settle* seconds (links go asynchronously)."""
    deadline = time.monotonic() + settle
    while True:
        gained = sorted(host_network_state() - before)
        if not gained or time.monotonic() > deadline:
            return gained
        time.sleep(0.1)


@dataclass(frozen=True)
class Snapshot:
    links: frozenset[str]
    netns_mounts: frozenset[str]
    tables: frozenset[str]


def snapshot() -> Snapshot:
    links = frozenset(line.split(":")[1].strip().split("@")[0]
                      for line in run("ip", "-o", "link", "show").stdout.splitlines())
    mounts = frozenset(line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
                       if " nsfs " in line and "/netns/" in line.split()[4])
    tables = frozenset(line.split()[-1] for line in run("nft", "list", "tables").stdout.splitlines())
    return Snapshot(links, mounts, tables)


def leaks(before: Snapshot, table: str | None = None, settle: float = 5.0) -> list[str]:
    """What tests made and left behind since *before*: links, netns mounts, nft tables or rules.

    The kernel removes a deleted namespace's links asynchronously (cleanup_net), so what is found is
    looked at again for up to *settle* seconds before it counts.
    """
    found = _leaks(before, table)
    deadline = time.monotonic() + settle
    while found and time.monotonic() < deadline:
        time.sleep(0.1)
        found = _leaks(before, table)
    return found


def _leaks(before: Snapshot, table: str | None) -> list[str]:
    after = snapshot()
    found = [f"link {n}" for n in after.links - before.links if n.startswith(PREFIXES)]
    found += [f"netns mount {m}" for m in after.netns_mounts - before.netns_mounts if f"itn-{SESSION}" in m]
    found += [f"nft table {t}" for t in after.tables - before.tables if t.startswith(f"imt{SESSION}")]
    if ETC_NETNS.is_dir():
        found += [f"file {ETC_NETNS / n}" for n in os.listdir(ETC_NETNS) if n.startswith(f"itn-{SESSION}")]
    if table:
        proc = run("nft", "-j", "list", "table", "inet", table, check=False)
        if proc.returncode == 0:
            rules = [i["rule"] for i in json.loads(proc.stdout)["nftables"] if "rule" in i]
            found += [f"nft rule {r.get('comment')}" for r in rules if r.get("comment")]
    return found


def wait_for(predicate, timeout: float = 10.0, step: float = 0.05) -> bool:
    """Poll *predicate* until true or *timeout* (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


@contextlib.contextmanager
def namespaces() -> Iterator[Namespaces]:
    ns = Namespaces()
    try:
        yield ns
    finally:
        ns.close()


# -- pytest fixtures: import net_engine_fixture, spaces_fixture, leak_check_fixture into a test module
#    (with a noqa for F401), then ask for `net_engine`, `spaces` or `leak_check` ---------------------

import pytest  # noqa: E402


@pytest.fixture(name="leak_check")
def leak_check_fixture() -> Iterator[None]:
    """Set up before and torn down after the fixtures below: fails the test if anything was left."""
    before = snapshot()
    yield
    left = leaks(before)
    assert not left, f"the test left these behind: {left}"


@pytest.fixture(name="spaces")
def spaces_fixture(leak_check) -> Iterator[Namespaces]:
    with namespaces() as ns:
        yield ns


@pytest.fixture(name="net_engine")
def net_engine_fixture(leak_check, spaces, engine, engine_root: Path):
    """An engine whose networks use test names and their own nft table, all removed afterwards."""
    settings = engine_settings(engine_root)
    try:
        yield engine
    finally:
        cleanup_engine(engine, settings["table"])
