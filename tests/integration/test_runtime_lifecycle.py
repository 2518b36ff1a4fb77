"""The container lifecycle through the in-process API: create, start, state, kill, wait, delete."""

from __future__ import annotations

import signal

import pytest

from intermodal.errors import ContainerNotFound, IncorrectState, InvalidSpec
from tests.support import bundle as _bundle

pytestmark = pytest.mark.requires("root", "busybox")
busybox_rootfs, busybox_bundle, created = _bundle.busybox_rootfs, _bundle.busybox_bundle, _bundle.created


def test_run_returns_the_exit_code_and_output(busybox_bundle, created):
    result = created.run(busybox_bundle.sh("echo out; echo err >&2; exit 7"))
    assert (result.code, result.stdout, result.stderr) == (7, "out\n", "err\n")


def test_stdin_reaches_the_process(busybox_bundle, created):
    assert created.run(busybox_bundle.args("cat"), stdin=b"piped\n").stdout == "piped\n"


def test_states_from_created_to_stopped(busybox_bundle, created):
    ctr = created.create(busybox_bundle.args("sleep", "30"))
    state = ctr.state()
    assert state["status"] == "created" and state["pid"] > 0
    assert state["bundle"] == str(busybox_bundle.path)
    ctr.start()
    assert ctr.state()["status"] == "running"
    with pytest.raises(IncorrectState, match="running"):
        ctr.start()
    with pytest.raises(IncorrectState):
        ctr.delete()
    ctr.kill(signal.SIGKILL)
    assert ctr.wait(10) == -signal.SIGKILL
    assert ctr.state() | {"created": ""} == state | {"status": "stopped", "pid": 0, "created": ""}
    ctr.delete()


def test_created_process_has_not_run_the_command(busybox_bundle, created):
    marker = busybox_bundle.rootfs / "tmp" / "ran"
    ctr = created.create(busybox_bundle.sh("touch /tmp/ran"))
    assert ctr.state()["status"] == "created"
    assert not marker.exists()
    ctr.start()
    assert ctr.wait(10) == 0
    assert marker.exists()


def test_a_created_container_can_be_deleted(busybox_bundle, created):
    ctr = created.create(busybox_bundle)
    ctr.delete()
    assert created.runtime.list() == []


def test_annotations_are_in_the_state(busybox_bundle, created):
    busybox_bundle.mutate(lambda c: c.__setitem__("annotations", {"org.example/a": "b"}))
    assert created.create(busybox_bundle).state()["annotations"] == {"org.example/a": "b"}


def test_a_missing_program_fails_create_and_leaves_nothing(busybox_bundle, created):
    with pytest.raises(Exception, match="not found"):
        created.create(busybox_bundle.args("no-such-program"))
    assert created.runtime.list() == []


def test_invalid_config_is_refused_with_its_json_path(busybox_bundle, created):
    busybox_bundle.mutate(lambda c: c["linux"]["namespaces"].append({"type": "bogus"}))
    with pytest.raises(InvalidSpec, match=r"linux\.namespaces\[\d\]\.type"):
        created.create(busybox_bundle)


def test_ps_lists_the_container_processes(busybox_bundle, created):
    ctr = created.create(busybox_bundle.sh("sleep 30 & sleep 30; wait"))
    ctr.start()
    pids = []
    for _ in range(200):  # the shell forks its children right after start
        pids = ctr.ps()
        if len(pids) >= 3:
            break
        __import__("time").sleep(0.01)
    assert ctr.record().pid in pids and len(pids) >= 3
    ctr.delete(force=True)


def test_pause_and_resume(busybox_bundle, created):
    ctr = created.create(busybox_bundle.args("sleep", "30"))
    ctr.start()
    ctr.pause()
    assert ctr.state()["status"] == "paused"
    with pytest.raises(IncorrectState):
        ctr.pause()
    ctr.resume()
    assert ctr.state()["status"] == "running"
    ctr.delete(force=True)


def test_force_delete_clears_a_create_killed_midway(created):
    (created.root / "half-made").mkdir(parents=True)  # what a SIGKILLed create leaves: no state.json
    with pytest.raises(ContainerNotFound):
        created.runtime.delete("half-made")
    created.runtime.delete("half-made", force=True)
    created.runtime.delete("never-existed", force=True)
    assert not (created.root / "half-made").exists()


def test_kill_of_a_paused_container(busybox_bundle, created):
    ctr = created.create(busybox_bundle.args("sleep", "30"))
    ctr.start()
    ctr.pause()
    ctr.kill(signal.SIGKILL)
    assert ctr.wait(10) == -signal.SIGKILL
    ctr.delete()
