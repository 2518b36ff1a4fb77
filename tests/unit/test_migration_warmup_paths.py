"""Which cgroup.procs files the migration warm-up tries (runtime/migration_warmup.py): pure parsing."""

from __future__ import annotations

from intermodal.runtime.migration_warmup import own_procs_files

HYBRID = """12:pids:/user.slice/user-0.slice
11:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-0.slice/session-1.scope
0::/user.slice/user-0.slice/session-1.scope
"""


def test_a_hybrid_host_tries_each_v1_hierarchy_then_the_cgroup2_mounts() -> None:
    assert own_procs_files(HYBRID) == [
        "/sys/fs/cgroup/pids/user.slice/user-0.slice/cgroup.procs",
        "/sys/fs/cgroup/cpu,cpuacct/user.slice/cgroup.procs",
        "/sys/fs/cgroup/systemd/user.slice/user-0.slice/session-1.scope/cgroup.procs",
        "/sys/fs/cgroup/unified/user.slice/user-0.slice/session-1.scope/cgroup.procs",
        "/sys/fs/cgroup/user.slice/user-0.slice/session-1.scope/cgroup.procs",
    ]


def test_the_root_cgroup_and_a_unified_host() -> None:
    assert own_procs_files("0::/\n") == ["/sys/fs/cgroup/unified/cgroup.procs", "/sys/fs/cgroup/cgroup.procs"]


def test_lines_without_a_hierarchy_are_skipped() -> None:
    assert own_procs_files("3::/x\n\ngarbage\n") == []
