"""Hooks run in order, each with the container's state JSON on stdin."""

from __future__ import annotations

import json
import os

import pytest

from tests.support import bundle as _bundle

pytestmark = pytest.mark.requires("root", "busybox")
busybox_rootfs, busybox_bundle, created = _bundle.busybox_rootfs, _bundle.busybox_bundle, _bundle.created


def _host_hook(log, name: str) -> dict:
    # Runs on the host (/bin/sh of the host): one line "NAME <state json>" per call.
    return {"path": "/bin/sh", "args": ["sh", "-c", f'printf "{name} %s\\n" "$(cat)" >> {log}'],
            "env": ["PATH=/bin:/usr/bin"]}


def test_hooks_run_in_order_with_the_state(busybox_bundle, created, tmp_path):
    log = tmp_path / "hooks.log"
    inner = busybox_bundle.rootfs / "tmp" / "inner.log"
    hooks = {
        "prestart": [_host_hook(log, "prestart")],
        "createRuntime": [_host_hook(log, "createRuntime")],
        "createContainer": [_host_hook(log, "createContainer")],  # container namespaces, before pivot_root
        # startContainer runs after pivot_root: the path and the log are the container's.
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", 'printf "startContainer %s\\n" "$(cat)" '
                                                                   '>> /tmp/inner.log; hostname >> /tmp/inner.log']}],
        "poststart": [_host_hook(log, "poststart")],
        "poststop": [_host_hook(log, "poststop")],
    }
    busybox_bundle.mutate(lambda c: c.update(hooks=hooks, hostname="hooked", annotations={"k": "v"}))
    busybox_bundle.args("sh", "-c", "echo user-program >> /tmp/inner.log")
    ctr = created.create(busybox_bundle, container_id="hooked-1")
    pid = ctr.record().pid
    names = [line.split(" ", 1)[0] for line in log.read_text().splitlines()]
    assert names == ["prestart", "createRuntime", "createContainer"]
    ctr.start()
    assert ctr.wait(10) == 0
    ctr.delete()
    lines = log.read_text().splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == [
        "prestart", "createRuntime", "createContainer", "poststart", "poststop"]
    states = [json.loads(line.split(" ", 1)[1]) for line in lines]
    assert all(s["id"] == "hooked-1" and s["bundle"] == str(busybox_bundle.path) for s in states)
    assert all(s["annotations"] == {"k": "v"} for s in states)
    assert [s["status"] for s in states] == ["creating", "creating", "creating", "running", "stopped"]
    assert states[0]["pid"] == pid
    inner_lines = inner.read_text().splitlines()
    assert inner_lines[0].startswith("startContainer ") and inner_lines[1:] == ["hooked", "user-program"]


def test_a_failing_create_hook_fails_create_and_leaves_nothing(busybox_bundle, created, tmp_path):
    marker = tmp_path / "ran"
    busybox_bundle.mutate(lambda c: c.update(hooks={
        "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}],
        "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", f"touch {marker}"]}]}))
    with pytest.raises(Exception, match="createRuntime hook /bin/sh failed with exit code 3"):
        created.create(busybox_bundle)
    assert not marker.exists() and created.runtime.list() == []


def test_a_failing_poststop_hook_only_warns(busybox_bundle, created, caplog):
    busybox_bundle.mutate(lambda c: c.update(hooks={"poststop": [{"path": "/bin/false"}]}))
    ctr = created.create(busybox_bundle)
    ctr.start()
    ctr.wait(10)
    ctr.delete()
    assert "poststop hook /bin/false failed" in caplog.text
    assert not os.path.exists(created.root / ctr.id)
