"""linux.resources through the cgroup manager, seen from inside the container."""

from __future__ import annotations

import os

import pytest

from intermodal.runtime.state import proc_stat
from tests.support import bundle as _bundle

pytestmark = pytest.mark.requires("root", "busybox")
busybox_rootfs, busybox_bundle, created = _bundle.busybox_rootfs, _bundle.busybox_bundle, _bundle.created


def _resources(**values):
    return lambda c: c["linux"].setdefault("resources", {}).update(values)


def test_pids_limit_stops_a_fork_bomb(busybox_bundle, created):
    busybox_bundle.mutate(_resources(pids={"limit": 8}))
    result = created.run(busybox_bundle.sh("for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done; echo all-started"))
    assert result.code != 0 and "all-started" not in result.stdout
    assert "can't fork: Resource temporarily unavailable" in result.stderr


def test_memory_limit_is_enforced_and_the_oom_kill_reported(busybox_bundle, created):
    busybox_bundle.mutate(_resources(memory={"limit": 16 * 1024 * 1024, "swap": 16 * 1024 * 1024}))
    ctr = created.create(busybox_bundle.sh("tail /dev/zero"))  # reads an endless line into memory
    ctr.start()
    code = ctr.wait(30)
    assert code == -9  # SIGKILL from the OOM killer
    assert ctr.oom_killed()
    ctr.delete()


def test_cgroup_mount_shows_the_containers_own_cgroup(busybox_bundle, created):
    busybox_bundle.mutate(_resources(memory={"limit": 64 * 1024 * 1024}))
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        script = "cat /sys/fs/cgroup/memory.max; touch /sys/fs/cgroup/x; echo rc=$?"
    else:
        script = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; touch /sys/fs/cgroup/memory/x; echo rc=$?"
    out = created.run(busybox_bundle.sh(script)).stdout.split()
    assert out == [str(64 * 1024 * 1024), "rc=1"]


def test_delete_kills_leftovers_without_a_pid_namespace(busybox_bundle, created):
    # Without a pid namespace the init's children survive it; delete must find them through the cgroup.
    busybox_bundle.mutate(lambda c: c["linux"].update(namespaces=[n for n in c["linux"]["namespaces"]
                                                                  if n["type"] != "pid"]))
    ctr = created.create(busybox_bundle.sh("sleep 300 & sleep 300 & exit 0"))
    ctr.start()
    assert ctr.wait(10) == 0
    leftovers = ctr.ps()
    assert len(leftovers) == 2
    ctr.delete()
    for pid in leftovers:
        assert proc_stat(pid) is None or proc_stat(pid)[0] == "Z"
