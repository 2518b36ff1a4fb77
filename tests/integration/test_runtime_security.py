"""The CVE-2019-5736 class: the container cannot reach the runtime (the host's Python) or its fds."""

from __future__ import annotations

import os
import tempfile

import pytest

from intermodal.runtime.spec import parse_process
from tests.support import bundle as _bundle

pytestmark = pytest.mark.requires("root", "busybox")
busybox_rootfs, busybox_bundle, created = _bundle.busybox_rootfs, _bundle.busybox_bundle, _bundle.created


def test_only_stdio_fds_reach_the_process(busybox_bundle, created):
    extra = os.open("/etc/hostname", os.O_RDONLY)  # an fd the runtime holds (inheritable) must not leak
    os.set_inheritable(extra, True)
    try:
        out = created.run(busybox_bundle.sh("ls -l /proc/$$/fd")).stdout
    finally:
        os.close(extra)
    fds = sorted(int(line.split(" -> ")[0].split()[-1]) for line in out.splitlines() if " -> " in line)
    assert fds == [0, 1, 2, 255] or fds == [0, 1, 2], out  # busybox sh may keep a script fd of its own
    assert "/etc/hostname" not in out


def _exec(ctr, *args: str, caps: dict | None = None) -> tuple[int, str]:
    with tempfile.TemporaryFile() as out:
        proc = parse_process({"args": list(args), "env": ["PATH=/bin"], "cwd": "/", "capabilities": caps})
        code = ctr.exec(proc, stdio=(0, out.fileno(), out.fileno()))
        out.seek(0)
        return code, out.read().decode()


PROBE = ("readlink /proc/1/exe; echo rl=$?; cat /proc/1/exe > /dev/null; echo rd=$?; echo x >> /proc/1/exe; "
         "echo wr=$?; for f in /proc/1/fd/*; do readlink $f && echo fd=0; done; "
         "cat /proc/1/environ > /dev/null && echo env=0; true")


def _probe_init(busybox_bundle, created) -> str:
    """From an exec'd process, try to reach the waiting init (still the runtime: the host's Python)."""
    ctr = created.create(busybox_bundle.args("sleep", "30"))
    with open(f"/proc/{ctr.record().pid}/status") as f:
        assert "python" in f.readline()  # still the runtime, not yet the user's program
    # Same uid and the same capabilities as the init (which dropped to the config's set before
    # blocking): only its being non-dumpable stands in the way (ptrace(2), "Ptrace access mode checking").
    code, out = _exec(ctr, "sh", "-c", PROBE, caps=busybox_bundle.config["process"]["capabilities"])
    assert code == 0
    ctr.delete(force=True)
    return out


def test_runtime_init_is_not_reachable_through_proc(busybox_bundle, created):
    out = _probe_init(busybox_bundle, created)
    for key in ("rl", "rd", "wr", "fd", "env"):
        assert f"{key}=0" not in out, out
    assert "python" not in out


def test_control_a_dumpable_init_would_be_reachable(busybox_bundle, created, monkeypatch):
    # Proves the probe above can fail: without PR_SET_DUMPABLE 0 the host's Python is readable.
    from intermodal.runtime import syscalls

    monkeypatch.setattr(syscalls, "set_dumpable", lambda value: None)
    out = _probe_init(busybox_bundle, created)
    assert "rl=0" in out and "python" in out


def test_exec_runs_in_the_container(busybox_bundle, created):
    busybox_bundle.mutate(lambda c: c.update(hostname="inside"))
    ctr = created.create(busybox_bundle.args("sleep", "30"))
    ctr.start()
    code, out = _exec(ctr, "sh", "-c", "hostname; echo $$; ls /proc | grep -cE '^[0-9]+$'; exit 4")
    assert code == 4
    lines = out.split()
    assert lines[0] == "inside" and int(lines[1]) > 1 and int(lines[2]) <= 5
    ctr.delete(force=True)


def test_a_failed_setns_never_runs_anything(busybox_bundle, created, tmp_path):
    # Fail closed: a namespace "path" that is no namespace makes setns fail in the child; create must
    # fail, and no step after it (least of all the command, on the host) may run.
    not_a_namespace = tmp_path / "not-a-namespace"
    not_a_namespace.write_text("")
    marker = tmp_path / "ran"
    busybox_bundle.mutate(lambda c: c["linux"]["namespaces"].__setitem__(
        2, {"type": "ipc", "path": str(not_a_namespace)}))
    busybox_bundle.mutate(lambda c: c.update(hooks={"createContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", f"touch {marker}"]}]}))
    with pytest.raises(Exception, match=f"setns {not_a_namespace}: Invalid argument"):
        created.create(busybox_bundle.sh(f"touch {marker}"))
    assert not marker.exists() and created.runtime.list() == []
