"""The cgroup migration warm-up on the kernel (runtime/migration_warmup.py): a no-op move, in a child.

How much it saves is measured by bench/containers.py, not asserted here.
"""

from __future__ import annotations

import os

import pytest

from intermodal.runtime import migration_warmup

pytestmark = pytest.mark.requires("root")


def _cgroups(pid: int | str = "self") -> str:
    with open(f"/proc/{pid}/cgroup", encoding="utf-8") as f:
        return f.read()


def test_taking_the_lock_moves_us_into_the_cgroup_we_are_in() -> None:
    before = _cgroups()
    assert migration_warmup.take_lock_once()  # some hierarchy is mounted where /proc/self/cgroup says
    assert _cgroups() == before


def test_the_child_holds_none_of_our_descriptors_and_is_reaped() -> None:
    r, w = os.pipe()
    try:
        pid = migration_warmup.start()
        assert pid > 0
        os.close(w)
        w = -1
        assert os.read(r, 1) == b""  # EOF: the child closed its copy of the writing end (or exited)
        migration_warmup.reap(pid)
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_reaping_nothing_is_a_no_op() -> None:
    migration_warmup.reap(0)
