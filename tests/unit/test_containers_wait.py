"""Waiting for a container's exit to be recorded: bounded when its monitor lives but never records it.

A real store on a temp dir; the "monitor" is this test process (alive, with its real start time), the
container's process is gone (pid 0), as after an exit the monitor failed to write down.
"""

from __future__ import annotations

import os

import pytest

from intermodal.containers import manager as manager_module
from intermodal.containers import status as st
from intermodal.containers.store import new_id
from intermodal.engine import Engine
from intermodal.errors import RuntimeFailure


@pytest.fixture
def engine(tmp_path) -> Engine:
    return Engine(root=tmp_path / "root")


def _container(engine: Engine, name: str, **state) -> str:
    store = engine.containers.store
    cid = new_id()
    with store.lock(cid):
        store.reserve_name(name, cid)
        store.dir(cid).mkdir(parents=True)
        store.write_record(cid, {"Id": cid, "Name": name, "Runtime": "imod-runtime", "Spec": {"image": "x"}})
        store.write_state(cid, {"Running": True, "Pid": 0, "PidStart": 0, "MonitorPid": os.getpid(),
                                "MonitorStart": st.start_time(os.getpid()), **state})
    return cid


@pytest.mark.parametrize("state", [{"Status": "running"}, {"Status": "paused"},
                                   {"Status": "restarting", "StopRequested": True}])
def test_an_exit_the_live_monitor_never_records_is_an_error(engine, monkeypatch, state) -> None:
    monkeypatch.setattr(manager_module, "RECORD_WAIT", 0.05)
    _container(engine, "stuck", **state)
    with pytest.raises(RuntimeFailure, match=rf"container stuck has exited, but its monitor \(pid {os.getpid()}\) "
                                             r"has not recorded the exit.*kill {}".format(os.getpid())):
        engine.containers.wait("stuck")  # no timeout: before the bound this waited for ever


def test_a_restart_back_off_is_waited_for_not_an_error(engine, monkeypatch) -> None:
    """`restarting` without a stop request: the monitor sleeps before the next start; no exit to record."""
    monkeypatch.setattr(manager_module, "RECORD_WAIT", 0.0)
    _container(engine, "backoff", Status="restarting")
    with pytest.raises(RuntimeFailure, match=r"still runs after 0\.2s"):
        engine.containers.wait("backoff", timeout=0.2)


def test_a_recorded_exit_ends_the_wait(engine, monkeypatch) -> None:
    monkeypatch.setattr(manager_module, "RECORD_WAIT", 0.0)
    _container(engine, "done", Status="exited", ExitCode=3, Running=False)
    assert engine.containers.wait("done") == 3


def test_the_timeout_still_comes_first_when_shorter(engine) -> None:
    _container(engine, "slow", Status="running")  # RECORD_WAIT as shipped (seconds)
    with pytest.raises(RuntimeFailure, match=r"still runs after 0\.1s"):
        engine.containers.wait("slow", timeout=0.1)
