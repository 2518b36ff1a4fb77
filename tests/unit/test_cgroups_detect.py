"""Host layout detection and cgroupsPath resolution (pure logic, recorded /proc files)."""

from __future__ import annotations

import pytest

from intermodal.errors import InvalidSpec
from intermodal.runtime.cgroups import cgpath
from intermodal.runtime.cgroups.detect import parse

PROC_CGROUPS = """#subsys_name\thierarchy\tnum_cgroups\tenabled
cpuset\t3\t1\t1
cpu\t1\t1\t1
cpuacct\t2\t1\t1
blkio\t7\t1\t1
memory\t4\t9\t1
devices\t5\t1\t1
freezer\t6\t1\t1
pids\t8\t1\t1
hugetlb\t0\t1\t1
"""

HYBRID_MOUNTS = """\
30 25 0:26 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
35 30 0:31 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
36 30 0:32 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_SELF = "5:pids:/\n4:memory:/sandbox/abc\n1:cpu:/\n2:cpuacct:/\n9:name=systemd:/\n0::/\n"

UNIFIED_MOUNTS = "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
UNIFIED_SELF = "0::/user.slice/user-0.slice/session-1.scope\n"

COMOUNTED = "31 30 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"


def test_hybrid_layout():
    lay = parse(HYBRID_MOUNTS, HYBRID_SELF, PROC_CGROUPS, lambda mnt: ["hugetlb"])
    assert lay.mode == "hybrid"
    assert lay.unified == "/sys/fs/cgroup/unified"
    assert lay.v1["memory"] == "/sys/fs/cgroup/memory" and lay.v1["name=systemd"] == "/sys/fs/cgroup/systemd"
    assert lay.v1_controllers == ["cpu", "cpuacct", "memory", "pids"]
    assert lay.own["memory"] == "/sandbox/abc" and lay.own[""] == "/"
    assert lay.v2_controllers == {"hugetlb"}


def test_unified_layout():
    lay = parse(UNIFIED_MOUNTS, UNIFIED_SELF, PROC_CGROUPS, lambda mnt: ["cpu", "memory", "pids"])
    assert lay.mode == "unified" and lay.unified == "/sys/fs/cgroup" and lay.v1 == {}
    assert lay.own[""] == "/user.slice/user-0.slice/session-1.scope"


def test_legacy_layout_with_comounted_controllers():
    lay = parse(COMOUNTED, "1:cpu,cpuacct:/x\n", PROC_CGROUPS)
    assert lay.mode == "legacy" and lay.unified is None
    assert lay.v1 == {"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct"}
    assert lay.own == {"cpu": "/x", "cpuacct": "/x"}


def test_bind_mounted_subtree_is_not_doubled():
    """docker-in-docker without cgroupns: the mount shows /docker/abc as its root."""
    mounts = "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    lay = parse(mounts, "4:memory:/docker/abc/sub\n", PROC_CGROUPS)
    assert lay.roots["memory"] == "/docker/abc"
    assert lay.own_in_mount("memory") == "/sub"
    lay = parse(mounts, "4:memory:/docker/abc\n", PROC_CGROUPS)
    assert lay.own_in_mount("memory") == "/"
    assert parse(HYBRID_MOUNTS, HYBRID_SELF, PROC_CGROUPS).own_in_mount("memory") == "/sandbox/abc"


def test_mountinfo_escapes_are_decoded():
    line = "31 30 0:27 / /sys/fs/cgroup/my\\040cg rw - cgroup cgroup rw,pids\n"
    assert parse(line, "", PROC_CGROUPS).v1["pids"] == "/sys/fs/cgroup/my cg"


@pytest.mark.parametrize(("slice_", "expected"), [
    ("system.slice", "/system.slice"),
    ("machine-libpod.slice", "/machine.slice/machine-libpod.slice"),
    ("a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice"),
    ("-.slice", "/"),
])
def test_expand_slice(slice_, expected):
    assert cgpath.expand_slice(slice_) == expected


@pytest.mark.parametrize("bad", ["system", "a--b.slice", "-a.slice", "a/b.slice"])
def test_bad_slices(bad):
    with pytest.raises(InvalidSpec):
        cgpath.expand_slice(bad)


@pytest.mark.parametrize(("value", "expected"), [
    ("machine.slice:libpod:abc", "/machine.slice/libpod-abc.scope"),
    ("user-1000.slice:imod:x", "/user.slice/user-1000.slice/imod-x.scope"),
    (":crio:id", "/system.slice/crio-id.scope"),
    ("system.slice::id", "/system.slice/id.scope"),
    ("system.slice:x:sub.slice", "/system.slice/sub.slice"),
    (None, "/system.slice/imod-cid.scope"),
])
def test_systemd_paths(value, expected):
    assert cgpath.inner(value, "cid", systemd=True) == expected


def test_systemd_path_needs_three_parts():
    with pytest.raises(InvalidSpec, match="slice:prefix:name"):
        cgpath.inner("/a/b", "cid", systemd=True)


@pytest.mark.parametrize(("value", "expected"), [
    (None, "cid"), ("/a/b", "/a/b"), ("a/b", "a/b"), ("/a/../b", "/b"), ("a/../../b", "b"), ("/../..", "/"),
])
def test_cgroupfs_paths(value, expected):
    assert cgpath.inner(value, "cid", systemd=False) == expected


def test_resolve_relative_v1_is_under_own_cgroup_v2_under_its_parent():
    assert cgpath.resolve("/sys/fs/cgroup/memory", "c1", "/sandbox/abc", v2=False) == \
        "/sys/fs/cgroup/memory/sandbox/abc/c1"
    assert cgpath.resolve("/sys/fs/cgroup", "c1", "/user.slice/session-1.scope", v2=True) == \
        "/sys/fs/cgroup/user.slice/c1"
    assert cgpath.resolve("/sys/fs/cgroup", "c1", "/", v2=True) == "/sys/fs/cgroup/c1"
    assert cgpath.resolve("/sys/fs/cgroup/pids", "/abs/c", "/own", v2=False) == "/sys/fs/cgroup/pids/abs/c"
