"""The v2 backend's file writes, against a directory tree shaped like cgroupfs.

Regular files stand in for the kernel's (the kernel-side behaviour is covered
by tests/integration/test_cgroups.py); what is checked here is which file gets
which value for each OCI resource, and what is refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from intermodal.errors import InvalidSpec
from intermodal.runtime.cgroups.v2 import V2Manager, cpu, devices, io, memory

FILES = {
    "cgroup.controllers": "cpuset cpu io memory hugetlb pids",
    "cgroup.subtree_control": "", "cgroup.procs": "", "cgroup.freeze": "0", "cgroup.events": "populated 0\nfrozen 0",
    "memory.max": "max", "memory.high": "max", "memory.swap.max": "max", "memory.low": "0", "memory.current": "4096",
    "memory.peak": "8192", "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0",
    "cpu.weight": "100", "cpu.max": "max 100000", "cpu.max.burst": "0", "cpu.stat": "usage_usec 1500\nuser_usec 1",
    "cpuset.cpus": "", "cpuset.mems": "", "pids.max": "max", "pids.current": "2", "io.weight": "default 100",
    "io.max": "", "hugetlb.2MB.max": "max",
}


@pytest.fixture
def mgr(tmp_path: Path, monkeypatch) -> V2Manager:
    # A tmp dir is no cgroup to attach a BPF program to: the device program is
    # tested against the kernel in tests/integration and by interpretation below.
    monkeypatch.setattr(devices, "apply", lambda path, resources: devices.program(resources.get("devices")) and [])
    mount = tmp_path / "mnt"
    for d in (mount, mount / "c"):
        d.mkdir(exist_ok=True)
        for name, value in FILES.items():
            (d / name).write_text(value)
    return V2Manager(str(mount / "c"), str(mount))


def _r(mgr: V2Manager, name: str) -> str:
    return Path(mgr.paths()["unified"], name).read_text()


def test_memory_limit_swap_and_reservation(mgr):
    mgr.set({"memory": {"limit": 100, "swap": 150, "reservation": 50}})
    assert (_r(mgr, "memory.max"), _r(mgr, "memory.swap.max"), _r(mgr, "memory.low")) == ("100", "50", "50")
    mgr.set({"memory": {"limit": -1, "swap": -1}})
    assert (_r(mgr, "memory.max"), _r(mgr, "memory.swap.max")) == ("max", "max")


@pytest.mark.parametrize(("swap", "limit", "expected"), [
    (None, 100, None), (-1, 100, "max"), (100, 100, 0), (300, 100, 200),
])
def test_swap_conversion(swap, limit, expected):
    assert memory.swap_max(swap, limit) == expected


@pytest.mark.parametrize(("swap", "limit"), [(50, 100), (100, None), (100, -1)])
def test_swap_conversion_refuses(swap, limit):
    with pytest.raises(InvalidSpec):
        memory.swap_max(swap, limit)


def test_v1_only_memory_fields_warn(mgr):
    mgr.set({"memory": {"swappiness": 10, "disableOOMKiller": True, "kernel": 1}})
    assert len(mgr.warnings) == 3 and all("not applied on cgroup v2" in w for w in mgr.warnings)


@pytest.mark.parametrize(("shares", "weight"), [(2, 1), (1024, 39), (262144, 10000), (0, 0)])
def test_shares_to_weight(shares, weight):
    assert cpu.shares_to_weight(shares) == weight


def test_cpu(mgr):
    mgr.set({"cpu": {"shares": 1024, "quota": 50000, "period": 200000, "cpus": "0-1", "mems": "0", "burst": 10}})
    assert _r(mgr, "cpu.weight") == "39" and _r(mgr, "cpu.max") == "50000 200000"
    assert (_r(mgr, "cpuset.cpus"), _r(mgr, "cpuset.mems"), _r(mgr, "cpu.max.burst")) == ("0-1", "0", "10")
    mgr.set({"cpu": {"period": 100000}})  # the quota stays
    assert _r(mgr, "cpu.max") == "50000 100000"
    mgr.set({"cpu": {"quota": -1}})
    assert _r(mgr, "cpu.max") == "max 100000"


def test_realtime_is_refused_on_v2(mgr):
    with pytest.raises(InvalidSpec, match="realtime"):
        mgr.set({"cpu": {"realtimeRuntime": 1000}})


def test_pids(mgr):
    mgr.set({"pids": {"limit": 64}})
    assert _r(mgr, "pids.max") == "64"
    mgr.set({"pids": {"limit": 0}})
    assert _r(mgr, "pids.max") == "max"


@pytest.mark.parametrize(("blkio", "io_weight"), [(10, 1), (500, 4950), (1000, 10000)])
def test_io_weight_conversion(blkio, io_weight):
    assert io.blkio_to_io_weight(blkio) == io_weight


def test_io_weight_and_throttle(mgr):
    mgr.set({"blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]}})
    assert _r(mgr, "io.weight") == "default 4950"
    assert _r(mgr, "io.max") == "8:0 rbps=1048576"


def test_hugetlb_and_unified(mgr):
    mgr.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}], "unified": {"memory.high": "1000"}})
    assert _r(mgr, "hugetlb.2MB.max") == "4194304"
    assert Path(mgr.paths()["unified"], "memory.high").read_text() == "1000"


@pytest.mark.parametrize("key", ["../escape", "cgroup.procs", "nodot", ".hidden"])
def test_unified_refuses_non_controller_files(mgr, key):
    with pytest.raises(InvalidSpec, match="unified"):
        mgr.set({"unified": {key: "1"}})


def test_missing_controller_and_unknown_keys_are_refused(mgr):
    Path(mgr.paths()["unified"], "cgroup.controllers").write_text("cpu memory")
    with pytest.raises(InvalidSpec, match=r"linux\.resources\.pids: the pids controller is not enabled"):
        mgr.set({"pids": {"limit": 5}})
    with pytest.raises(InvalidSpec, match="unknown key"):
        mgr.set({"cpus": {}})
    with pytest.raises(InvalidSpec, match=r"linux\.resources\.memory: unknown field\(s\) limitt"):
        mgr.set({"memory": {"limitt": 5}})
    with pytest.raises(InvalidSpec, match="network"):
        mgr.set({"network": {"classID": 1}})


def test_devices_need_no_controller(mgr):
    Path(mgr.paths()["unified"], "cgroup.controllers").write_text("")
    mgr.set({"devices": [{"allow": False, "access": "rwm"}]})
    assert mgr.warnings == []


# -- the device program, run by a small interpreter of the opcodes it uses ----------------

def run(prog: bytes, kind: str, major: int, minor: int, access: str) -> int:
    import struct

    ctx = [({"b": 1, "c": 2}[kind]) | (sum({"m": 1, "r": 2, "w": 4}[c] for c in access) << 16), major, minor]
    regs = [0] * 11
    pc = 0
    for _ in range(10000):
        code, regbyte, off, imm = struct.unpack_from("<BBhi", prog, pc * 8)
        dst, src = regbyte & 0xF, regbyte >> 4
        pc += 1
        if code == 0x61:
            regs[dst] = ctx[off // 4]
        elif code == 0xBC:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == 0x54:
            regs[dst] &= imm & 0xFFFFFFFF
        elif code == 0x74:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == 0x55:
            pc += off if regs[dst] != imm else 0
        elif code == 0x15:
            pc += off if regs[dst] == imm else 0
        elif code == 0xB7:
            regs[dst] = imm
        elif code == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("program did not exit")


DENY_ALL = [{"allow": False, "access": "rwm"}]


@pytest.mark.parametrize(("rules", "device", "expected"), [
    (DENY_ALL, ("c", 1, 3, "rw"), 1),         # /dev/null: a default device
    (DENY_ALL, ("c", 136, 5, "rw"), 1),       # /dev/pts/5
    (DENY_ALL, ("b", 8, 0, "m"), 1),          # mknod of anything is allowed, as runc does
    (DENY_ALL, ("b", 8, 0, "r"), 0),          # but not opening it
    (DENY_ALL, ("c", 1, 11, "r"), 0),         # /dev/kmsg
    (None, ("c", 10, 200, "rw"), 0),          # no rules: deny all but the defaults
    ([*DENY_ALL, {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rw"}], ("c", 10, 200, "rw"), 1),
    ([*DENY_ALL, {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "r"}], ("c", 10, 200, "rw"), 0),
    ([*DENY_ALL, {"allow": True, "type": "c", "major": 10, "access": "r"}], ("c", 10, 7, "r"), 1),
    ([*DENY_ALL, {"allow": True, "type": "b", "major": 10, "access": "r"}], ("c", 10, 7, "r"), 0),
    ([{"allow": True, "access": "rwm"}], ("b", 8, 0, "rw"), 1),   # allow all
    ([{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "major": 1, "minor": 11, "access": "w"}],
     ("c", 1, 11, "r"), 1),
    ([{"allow": True, "access": "rwm"}, {"allow": False, "type": "c", "major": 1, "minor": 11, "access": "w"}],
     ("c", 1, 11, "rw"), 0),
    ([{"allow": True, "type": "c", "major": 5, "minor": 9, "access": "r"}, *DENY_ALL], ("c", 5, 9, "r"), 0),
])
def test_device_program(rules, device, expected):
    assert run(devices.program(rules), *device) == expected


def test_controllers_enabled_in_parent(mgr):
    mgr.set({})
    mount = Path(mgr.paths()["unified"]).parent
    # Regular files keep only the last write; the kernel file would list all. Each was written.
    assert (mount / "cgroup.subtree_control").read_text().startswith("+")


def test_stats_and_oom(mgr):
    assert mgr.oom_killed() is True and mgr.oom_kill_count() == 1
    assert mgr.oom_file() == mgr.paths()["unified"] + "/memory.events"
    assert mgr.stats() == {"memory": {"usage": 4096, "max_usage": 8192, "limit": None},
                           "pids": {"current": 2, "limit": None}, "cpu": {"usage_ns": 1500000}}
