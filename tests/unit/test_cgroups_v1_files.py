"""The v1 backend's file writes and write order, against cgroupfs-shaped directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from intermodal.errors import InvalidSpec
from intermodal.runtime.cgroups import manager as m
from intermodal.runtime.cgroups.v1 import V1Manager, devices

FILES = {
    "memory": {"memory.limit_in_bytes": "9223372036854771712", "memory.memsw.limit_in_bytes": "9223372036854771712",
               "memory.soft_limit_in_bytes": "0", "memory.swappiness": "60", "memory.kmem.tcp.limit_in_bytes": "0",
               "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2",
               "memory.usage_in_bytes": "100", "memory.max_usage_in_bytes": "200"},
    "cpu": {"cpu.shares": "1024", "cpu.cfs_quota_us": "-1", "cpu.cfs_period_us": "100000",
            "cpu.rt_period_us": "1000000", "cpu.rt_runtime_us": "0"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "pids": {"pids.max": "max", "pids.current": "3"},
    "cpuacct": {"cpuacct.usage": "12345"},
    "devices": {"devices.allow": "", "devices.deny": ""},
    "blkio": {"blkio.bfq.weight": "default 100", "blkio.throttle.read_bps_device": ""},
}


@pytest.fixture
def mgr(tmp_path: Path) -> V1Manager:
    paths = {}
    for ctl, files in FILES.items():
        d = tmp_path / ctl / "c"
        d.mkdir(parents=True)
        for name, value in files.items():
            (d / name).write_text(value)
        paths[ctl] = str(d)
    return V1Manager(paths)


@pytest.fixture
def writes(monkeypatch):
    """Record the order of writes (and still perform them)."""
    log: list[tuple[str, str]] = []
    real = m.write

    def record(directory, name, value):
        log.append((name, str(value)))
        real(directory, name, value)

    for mod in ("memory", "cpu", "devices", "pids", "blkio", "cpuset"):
        monkeypatch.setattr(f"intermodal.runtime.cgroups.v1.{mod}.write", record)
    return log


def _r(mgr: V1Manager, ctl: str, name: str) -> str:
    return Path(mgr.paths()[ctl], name).read_text()


def test_memory_raise_writes_memsw_first(mgr, writes):
    Path(mgr.paths()["memory"], "memory.memsw.limit_in_bytes").write_text("1000")
    mgr.set({"memory": {"limit": 2000, "swap": 3000}})
    names = [n for n, _ in writes if n.startswith("memory.") and "limit" in n]
    assert names == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]


def test_memory_lower_writes_limit_first(mgr, writes):
    Path(mgr.paths()["memory"], "memory.memsw.limit_in_bytes").write_text("5000")
    mgr.set({"memory": {"limit": 1000, "swap": 2000}})
    names = [n for n, _ in writes if n.startswith("memory.") and "limit" in n]
    assert names == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]


def test_unlimited_memory_lifts_memsw_too(mgr, writes):
    Path(mgr.paths()["memory"], "memory.memsw.limit_in_bytes").write_text("5000")
    mgr.set({"memory": {"limit": -1}})
    assert [n for n, _ in writes if "limit_in_bytes" in n] == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    assert _r(mgr, "memory", "memory.memsw.limit_in_bytes") == "-1"


def test_memory_other_fields(mgr):
    mgr.set({"memory": {"reservation": 10, "swappiness": 5, "disableOOMKiller": True, "kernelTCP": 7}})
    assert (_r(mgr, "memory", "memory.soft_limit_in_bytes"), _r(mgr, "memory", "memory.swappiness"),
            _r(mgr, "memory", "memory.oom_control"), _r(mgr, "memory", "memory.kmem.tcp.limit_in_bytes")) == \
        ("10", "5", "1", "7")


def test_swap_below_limit_is_refused(mgr):
    with pytest.raises(InvalidSpec, match=r"memory\.swap"):
        mgr.set({"memory": {"limit": 2000, "swap": 1000}})


def test_swap_without_swap_accounting(mgr):
    Path(mgr.paths()["memory"], "memory.memsw.limit_in_bytes").unlink()
    mgr.set({"memory": {"limit": 2000, "swap": 2000}})  # "no swap" is fine without accounting
    with pytest.raises(InvalidSpec, match="swap accounting"):
        mgr.set({"memory": {"limit": 2000, "swap": 4000}})


def test_cpu_and_cpuset(mgr):
    mgr.set({"cpu": {"shares": 512, "quota": 20000, "period": 50000, "realtimePeriod": 500000,
                     "realtimeRuntime": 1000, "cpus": "1", "mems": "0"}})
    assert [_r(mgr, "cpu", f) for f in ("cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us",
                                        "cpu.rt_period_us", "cpu.rt_runtime_us")] == \
        ["512", "20000", "50000", "500000", "1000"]
    assert (_r(mgr, "cpuset", "cpuset.cpus"), _r(mgr, "cpuset", "cpuset.mems")) == ("1", "0")


def test_pids_and_blkio_bfq(mgr):
    mgr.set({"pids": {"limit": -1}, "blockIO": {"weight": 300,
                                               "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 5}]}})
    assert _r(mgr, "pids", "pids.max") == "max"
    assert _r(mgr, "blkio", "blkio.bfq.weight") == "300"
    assert _r(mgr, "blkio", "blkio.throttle.read_bps_device") == "8:0 5"


def test_devices_always_applied(mgr, writes):
    mgr.set({})
    dev = [(n, v) for n, v in writes if n.startswith("devices.")]
    assert dev[0] == ("devices.deny", "a")
    assert ("devices.allow", "c 1:3 rwm") in dev and ("devices.allow", "c 136:* rwm") in dev


def test_devices_rules_in_order():
    """Deny all first, then the allowed exceptions the rules end in: the spec's, then the defaults."""
    rules = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10, "minor": 200,
                                                 "access": "rwm"}, {"allow": False, "type": "c", "major": 10,
                                                                    "minor": 200, "access": "w"}]
    out = devices.lines(rules)
    assert out[:2] == [("devices.deny", "a"), ("devices.allow", "c 10:200 rm")]
    assert out[2:] == [("devices.allow", devices.rule_line(*d)) for d in devices.DEFAULT_ALLOWED]


@pytest.mark.parametrize("rule", [{"type": "x"}, {"type": "c", "access": "rwx"}])
def test_devices_bad_rules(rule):
    with pytest.raises(InvalidSpec, match=r"devices\[0\]"):
        devices.lines([rule])


def test_missing_controller_unified_and_unknown_are_refused(mgr):
    del mgr._paths["pids"]
    with pytest.raises(InvalidSpec, match=r"linux\.resources\.pids: the pids cgroup controller is not available"):
        mgr.set({"pids": {"limit": 5}})
    with pytest.raises(InvalidSpec, match="cgroup v2"):
        mgr.set({"unified": {"memory.high": "1"}})
    with pytest.raises(InvalidSpec, match="unknown key"):
        mgr.set({"memory": {}, "bogus": 1})


def test_stats_and_oom(mgr):
    assert mgr.oom_killed() is True and mgr.oom_kill_count() == 2
    assert mgr.stats() == {"memory": {"usage": 100, "max_usage": 200, "limit": 9223372036854771712},
                           "pids": {"current": 3, "limit": None}, "cpu": {"usage_ns": 12345}}
