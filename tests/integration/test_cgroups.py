"""cgroups on the real kernel: this host's backend (v1/hybrid or unified v2),
and the v2 backend on a cgroup2 mount even where that mount has no controllers.

Every test works below a fresh test cgroup (relative path, so below our own
cgroup, as a runtime would), kills only the processes it started, and removes
every cgroup it made in ``finally``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from intermodal.errors import InvalidSpec, KernelError
from intermodal.runtime.cgroups import manager_for, manager_from_paths
from intermodal.runtime.cgroups.detect import detect
from intermodal.runtime.cgroups.v2 import V2Manager
from tests.support import bundle as _bundle

pytestmark = pytest.mark.requires("root")
busybox_rootfs, busybox_bundle, created = _bundle.busybox_rootfs, _bundle.busybox_bundle, _bundle.created
BUSYBOX = "/bin/busybox" if os.path.exists("/bin/busybox") else "busybox"
MiB = 1 << 20


class Scope:
    """Managers and processes of one test, all undone by ``close``."""

    def __init__(self) -> None:
        self.parent = f"imod-test-{uuid.uuid4().hex[:12]}"
        self.managers = []
        self.procs: list[subprocess.Popen] = []

    def manager(self, name: str = "c"):
        mgr = manager_for(f"{self.parent}/{name}", name)
        self.managers.append(mgr)
        return mgr

    def start(self, script: str, argv: list[str] | None = None) -> subprocess.Popen:
        """A process that waits for a line on stdin before running ``script``."""
        argv = argv or [BUSYBOX, "sh", "-c", f"read go; {script}"]
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(p)
        return p

    def close(self) -> None:
        for mgr in self.managers:
            for pid in _ours(mgr, self.procs):
                _kill(pid)
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
            for f in (p.stdin, p.stdout, p.stderr):
                if f and not f.closed:
                    f.close()
        for mgr in self.managers:
            _destroy_bounded(mgr)
        parent = manager_for(self.parent, "parent")
        _destroy_bounded(parent)
        leaked = [p for p in parent.paths().values() if os.path.exists(p)]
        assert not leaked, f"test cgroups left behind: {leaked}"


def _ours(mgr, procs) -> list[int]:
    """PIDs in the test cgroup: our children and their descendants (nothing else can be there)."""
    try:
        return mgr.pids()
    except KernelError:
        return [p.pid for p in procs]


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _destroy_bounded(mgr) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            mgr.destroy()
            return
        except KernelError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


@pytest.fixture
def scope():
    s = Scope()
    try:
        yield s
    finally:
        s.close()


v1_only = pytest.mark.skipif(detect().mode == "unified", reason="host has unified cgroup v2")


def test_apply_moves_the_process_and_paths_round_trip(scope):
    mgr = scope.manager()
    p = scope.start("sleep 30")
    mgr.apply(p.pid)
    for name, path in mgr.paths().items():
        assert str(p.pid) in _read(f"{path}/cgroup.procs").split(), name
    assert mgr.pids() == [p.pid]
    again = manager_from_paths(mgr.paths())
    assert again.paths() == mgr.paths()
    assert again.pids() == [p.pid]
    own = _read(f"/proc/{p.pid}/cgroup")
    assert f"/{scope.parent}/c" in own


@v1_only
def test_hybrid_host_joins_the_cgroup2_mount_too(scope):
    if detect().mode != "hybrid":
        pytest.skip("host is not hybrid")
    mgr = scope.manager()
    p = scope.start("sleep 30")
    mgr.apply(p.pid)
    unified = mgr.paths()["unified"]
    assert unified.startswith(detect().unified + "/")
    assert _read(f"{unified}/cgroup.procs") == str(p.pid)


@v1_only
def test_limits_are_written_and_read_back(scope):
    mgr = scope.manager()
    p = scope.start("sleep 30")
    mgr.apply(p.pid)
    mgr.set({
        "memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 64 * MiB},
        "pids": {"limit": 10},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
    })
    paths = mgr.paths()
    assert int(_read(f"{paths['memory']}/memory.limit_in_bytes")) == 64 * MiB
    assert int(_read(f"{paths['memory']}/memory.soft_limit_in_bytes")) == 32 * MiB
    if os.path.exists(f"{paths['memory']}/memory.memsw.limit_in_bytes"):
        assert int(_read(f"{paths['memory']}/memory.memsw.limit_in_bytes")) == 64 * MiB
    assert _read(f"{paths['pids']}/pids.max") == "10"
    assert _read(f"{paths['cpu']}/cpu.shares") == "512"
    assert _read(f"{paths['cpu']}/cpu.cfs_quota_us") == "50000"
    assert _read(f"{paths['cpu']}/cpu.cfs_period_us") == "100000"
    assert _read(f"{paths['cpuset']}/cpuset.cpus") == "0"
    # Lowering the limit below memsw then raising both: the write order must keep memsw >= limit.
    mgr.set({"memory": {"limit": 16 * MiB, "swap": 16 * MiB}})
    mgr.set({"memory": {"limit": 128 * MiB, "swap": 128 * MiB}})
    assert int(_read(f"{paths['memory']}/memory.limit_in_bytes")) == 128 * MiB
    stats = mgr.stats()
    assert stats["pids"] == {"current": 1, "limit": 10}
    assert stats["memory"]["usage"] >= 0 and stats["memory"]["limit"] == 128 * MiB  # v1 does not move charges
    assert stats["cpu"]["usage_ns"] >= 0


@v1_only
def test_blkio_weight_where_bfq_offers_it(scope):
    mgr = scope.manager()
    p = scope.start("sleep 30")
    mgr.apply(p.pid)
    path = mgr.paths()["blkio"]
    if not any(os.path.exists(f"{path}/{f}") for f in ("blkio.weight", "blkio.bfq.weight")):
        with pytest.raises(InvalidSpec, match=r"blockIO\.weight"):
            mgr.set({"blockIO": {"weight": 300}})
        return
    mgr.set({"blockIO": {"weight": 300}})
    name = "blkio.weight" if os.path.exists(f"{path}/blkio.weight") else "blkio.bfq.weight"
    assert "300" in _read(f"{path}/{name}")


def test_pids_limit_stops_the_fork_beyond_it(scope):
    mgr = scope.manager()
    p = scope.start("sleep 30 & sleep 30 & sleep 30 & sleep 30 & wait")
    mgr.apply(p.pid)
    try:
        mgr.set({"pids": {"limit": 3}})  # the shell and two sleeps; the third fork fails
    except InvalidSpec:
        pytest.skip("the pids controller is not available to this cgroup")
    p.stdin.write(b"go\n")
    p.stdin.close()
    # ash gives up on a failed fork: the shell exits, its two sleeps stay.
    assert _wait_for(lambda: p.poll() is not None and _pids_refused(mgr) >= 1)
    assert len(mgr.pids()) == 2 and mgr.stats()["pids"]["current"] == 2
    for pid in mgr.pids():
        _kill(pid)
    assert b"can't fork" in p.stderr.read()


def _pids_refused(mgr) -> int:
    path = mgr.paths().get("pids") or mgr.paths()["unified"]
    events = dict(line.split() for line in _read(f"{path}/pids.events").splitlines())
    return int(events.get("max", 0))


def test_memory_limit_oom_kill_is_reported(scope):
    mgr = scope.manager()
    p = scope.start("", argv=[sys.executable, "-c",
                              "import sys; sys.stdin.readline(); x = b'a' * (256 << 20); print(len(x))"])
    mgr.apply(p.pid)
    try:
        mgr.set({"memory": {"limit": 48 * MiB, "swap": 48 * MiB}})
    except InvalidSpec:
        mgr.set({"memory": {"limit": 48 * MiB}})
    assert mgr.oom_killed() is False
    out, _ = p.communicate(b"go\n", timeout=30)
    assert p.returncode == -signal.SIGKILL, out
    assert mgr.oom_killed() is True and mgr.oom_kill_count() >= 1


def test_freeze_and_thaw(scope):
    mgr = scope.manager()
    p = scope.start("sleep 30")
    mgr.apply(p.pid)
    mgr.freeze()
    paths = mgr.paths()
    if "freezer" in paths:
        assert _read(f"{paths['freezer']}/freezer.state") == "FROZEN"
    else:
        assert "frozen 1" in _read(f"{paths['unified']}/cgroup.events")
    mgr.thaw()
    if "freezer" in paths:
        assert _read(f"{paths['freezer']}/freezer.state") == "THAWED"
    else:
        assert "frozen 0" in _read(f"{paths['unified']}/cgroup.events")
    p.stdin.write(b"go\n")
    p.stdin.flush()
    assert p.poll() is None  # thawed, still running its sleep


def test_destroy_kills_nothing_and_then_leaves_nothing(scope):
    mgr = scope.manager()
    p = scope.start("sleep 30")
    mgr.apply(p.pid)
    first = next(iter(mgr.paths().values()))
    os.mkdir(os.path.join(first, "nested"))  # a sub-cgroup, as a container with cgroupns may make
    with pytest.raises(KernelError, match="still in the cgroup"):
        mgr.destroy()
    assert p.poll() is None
    p.kill()
    p.communicate(timeout=10)
    mgr.destroy()
    for path in mgr.paths().values():
        assert not os.path.exists(path)
    assert mgr.pids() == []


@v1_only
def test_v1_devices_allow_defaults_and_deny_others(scope, tmp_path):
    os.mknod(tmp_path / "null", 0o666 | 0o020000, os.makedev(1, 3))
    os.mknod(tmp_path / "kmsg", 0o600 | 0o020000, os.makedev(1, 11))
    mgr = scope.manager()
    p = scope.start(f": < {tmp_path}/null && echo null-ok; : < {tmp_path}/kmsg && echo kmsg-ok; true")
    mgr.apply(p.pid)
    mgr.set({"devices": [{"allow": False, "access": "rwm"}]})
    listing = _read(f"{mgr.paths()['devices']}/devices.list").splitlines()
    assert "c 1:3 rwm" in listing and "c 136:* rwm" in listing and "a *:* rwm" not in listing
    out, err = p.communicate(b"go\n", timeout=10)
    assert out.split() == [b"null-ok"]
    assert b"Operation not permitted" in err


def test_unknown_resources_are_refused(scope):
    mgr = scope.manager()
    with pytest.raises(InvalidSpec, match="unknown key"):
        mgr.set({"memroy": {"limit": 1}})


# -- the v2 backend on this host's cgroup2 mount ----------------------------------------


@pytest.fixture
def v2_dir():
    mount = detect().unified
    if not mount:
        pytest.skip("no cgroup2 mount")
    top = f"{mount}/imod-test-{uuid.uuid4().hex[:12]}"
    before = _read(f"{mount}/cgroup.subtree_control").split()
    mgrs: list[V2Manager] = []
    try:
        yield top, mount, mgrs
    finally:
        for mgr in mgrs:
            for pid in mgr.pids():
                _kill(pid)
        for mgr in mgrs:
            _destroy_bounded(mgr)
        _destroy_bounded(V2Manager(top, mount))
        after = _read(f"{mount}/cgroup.subtree_control").split()
        for ctl in set(after) - set(before):  # undo what create() enabled at the mount's root
            with open(f"{mount}/cgroup.subtree_control", "w") as f:
                f.write(f"-{ctl}")
        assert _read(f"{mount}/cgroup.subtree_control").split() == before


def test_v2_backend_core_operations(v2_dir, scope):
    top, mount, mgrs = v2_dir
    mgr = V2Manager(f"{top}/c", mount)
    mgrs.append(mgr)
    p = scope.start("sleep 30")
    mgr.apply(p.pid)
    assert mgr.pids() == [p.pid]
    assert _read(f"{top}/c/cgroup.procs") == str(p.pid)
    mgr.freeze()
    assert "frozen 1" in _read(f"{top}/c/cgroup.events").splitlines()
    mgr.thaw()
    assert "frozen 0" in _read(f"{top}/c/cgroup.events").splitlines()
    assert mgr.stats()["cpu"]["usage_ns"] >= 0
    assert mgr.oom_killed() is False
    assert manager_from_paths(mgr.paths()).paths() == {"unified": f"{top}/c"}


def test_v2_backend_refuses_limits_without_the_controller(v2_dir, scope):
    top, mount, mgrs = v2_dir
    mgr = V2Manager(f"{top}/c", mount)
    mgrs.append(mgr)
    p = scope.start("sleep 30")
    mgr.apply(p.pid)
    available = _read(f"{top}/c/cgroup.controllers").split()
    if "pids" in available:
        mgr.set({"pids": {"limit": 7}})
        assert _read(f"{top}/c/pids.max") == "7"
    else:
        with pytest.raises(InvalidSpec, match="pids controller is not enabled"):
            mgr.set({"pids": {"limit": 7}})


def test_v2_backend_hugetlb_where_delegated(v2_dir, scope):
    top, mount, mgrs = v2_dir
    if "hugetlb" not in _read(f"{mount}/cgroup.controllers").split():
        pytest.skip("hugetlb is not on this cgroup2 mount")
    mgr = V2Manager(f"{top}/c", mount)
    mgrs.append(mgr)
    p = scope.start("sleep 30")
    mgr.apply(p.pid)
    mgr.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}]})
    assert int(_read(f"{top}/c/hugetlb.2MB.max")) == 4 * MiB



def _device_probe(tmp_path) -> str:
    os.mknod(tmp_path / "null", 0o666 | 0o020000, os.makedev(1, 3))
    os.mknod(tmp_path / "kmsg", 0o600 | 0o020000, os.makedev(1, 11))
    return (f": < {tmp_path}/null && echo null-r; : > {tmp_path}/null && echo null-w; "
            f": < {tmp_path}/kmsg && echo kmsg-r; : > {tmp_path}/kmsg && echo kmsg-w; true")


@pytest.mark.parametrize(("rules", "expected"), [
    ([{"allow": False, "access": "rwm"}], ["null-r", "null-w"]),
    ([{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}],
     ["null-r", "null-w", "kmsg-r"]),
    ([{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "major": 1, "minor": 11, "access": "w"}],
     ["null-r", "null-w", "kmsg-r"]),
])
def test_v2_device_program_enforced_by_the_kernel(v2_dir, scope, tmp_path, rules, expected):
    from intermodal.runtime.cgroups.v2 import devices

    top, mount, mgrs = v2_dir
    mgr = V2Manager(f"{top}/c", mount)
    mgrs.append(mgr)
    p = scope.start(_device_probe(tmp_path))
    mgr.apply(p.pid)
    mgr.set({})  # a first program, which the second set must replace
    mgr.set({"devices": rules})
    assert len(devices.attached(f"{top}/c")) == 1
    out, err = p.communicate(b"go\n", timeout=10)
    assert out.split() == [e.encode() for e in expected], err
    assert b"Operation not permitted" in err


@v1_only
def test_hybrid_hugetlb_from_the_cgroup2_mount(v2_dir, scope):  # scope's cgroups go first
    """This host kind: hugetlb is not a v1 hierarchy but offered by the cgroup2 mount."""
    lay = detect()
    if lay.mode != "hybrid" or "hugetlb" in lay.v1 or "hugetlb" not in lay.v2_controllers:
        pytest.skip("needs a hybrid host whose hugetlb is on the cgroup2 mount")
    mgr = scope.manager()
    p = scope.start("sleep 30")
    mgr.apply(p.pid)
    mgr.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 8 * MiB}]})
    assert int(_read(f"{mgr.paths()['unified']}/hugetlb.2MB.max")) == 8 * MiB


@v1_only
def test_hybrid_without_v1_freezer_freezes_through_cgroup2(scope):
    if detect().mode != "hybrid":
        pytest.skip("host is not hybrid")
    from intermodal.runtime.cgroups.v1 import V1Manager

    full = scope.manager()
    paths = {k: v for k, v in full.paths().items() if k not in ("freezer", "unified")}
    mgr = V1Manager(paths, unified=full.paths()["unified"])
    p = scope.start("sleep 30")
    mgr.apply(p.pid)
    mgr.freeze()
    assert "frozen 1" in _read(f"{full.paths()['unified']}/cgroup.events").splitlines()
    mgr.thaw()
    assert "frozen 0" in _read(f"{full.paths()['unified']}/cgroup.events").splitlines()


# -- in a real container, through the runtime (the `created` fixture checks no cgroup is left) ---


def _resources(bundle, **values) -> None:
    bundle.mutate(lambda c: c["linux"].setdefault("resources", {}).update(values))


@pytest.mark.requires("busybox")
def test_pids_limit_stops_a_fork_bomb_in_a_container(busybox_bundle, created):
    _resources(busybox_bundle, pids={"limit": 8})
    r = created.run(busybox_bundle.sh("bomb() { bomb | bomb & }; bomb; sleep 1; echo survived"))
    assert "can't fork" in r.stderr


@pytest.mark.requires("busybox")
def test_memory_limit_kills_in_a_container(busybox_bundle, created):
    _resources(busybox_bundle, memory={"limit": 16 * MiB})
    r = created.run(busybox_bundle.sh("x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo ${#x}"))
    assert r.code in (-signal.SIGKILL, 128 + signal.SIGKILL), r
    assert r.stdout == ""
