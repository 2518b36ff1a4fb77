"""Lifecycle states, the state record and the runtime root (no containers needed)."""

from __future__ import annotations

import os

import pytest

from intermodal.errors import AlreadyExists, ContainerNotFound, InvalidArgument
from intermodal.runtime.state import Record, Status, Store, alive, check_id, oci_state, proc_stat

TRANSITIONS = [
    # status, can_start, can_kill, can_delete, can_exec
    (Status.CREATING, False, False, False, False),
    (Status.CREATED, True, True, True, True),
    (Status.RUNNING, False, True, False, True),
    (Status.PAUSED, False, True, False, False),
    (Status.STOPPED, False, False, True, False),
]


@pytest.mark.parametrize(("status", "start", "kill", "delete", "exec_"), TRANSITIONS)
def test_status_allows(status, start, kill, delete, exec_):
    assert (status.can_start(), status.can_kill(), status.can_delete(), status.can_exec()) == (
        start, kill, delete, exec_)


def _record(pid: int, start_time: int) -> Record:
    return Record(id="c", pid=pid, start_time=start_time, bundle="/b", rootfs="/b/rootfs", created="t",
                  annotations={"a": "b"})


def test_proc_stat_and_pid_reuse_detection():
    letter, start = proc_stat(os.getpid())
    assert letter in "RS"
    assert alive(_record(os.getpid(), start))
    assert not alive(_record(os.getpid(), start + 1))  # same pid, another process: not ours
    assert proc_stat(2**22 + 1) is None


def test_oci_state_reports_pid_zero_when_stopped():
    rec = _record(123, 1)
    assert oci_state(rec, Status.RUNNING)["pid"] == 123
    state = oci_state(rec, Status.STOPPED)
    assert state["pid"] == 0 and state["status"] == "stopped" and state["annotations"] == {"a": "b"}
    assert set(state) >= {"ociVersion", "id", "status", "pid", "bundle"}


def test_store_round_trip_and_conflicts(tmp_path):
    store = Store(tmp_path / "root")
    directory = store.make("c")
    assert oct(directory.stat().st_mode & 0o777) == "0o711"
    with pytest.raises(AlreadyExists):
        store.make("c")
    store.save(_record(1, 2))
    assert store.load("c") == _record(1, 2) and store.ids() == ["c"]
    with store.lock("c"):
        pass
    with pytest.raises(ContainerNotFound):
        store.load("other")


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".", "..", ".hidden", "tab\there"])
def test_check_id_refuses_path_tricks(bad):
    with pytest.raises(InvalidArgument):
        check_id(bad)
