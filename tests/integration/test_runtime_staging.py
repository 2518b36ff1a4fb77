"""A stage 1 staged ahead in the container's cgroups (runtime/staging.py), as the monitor's launcher does.

The create takes it when its cgroups are the config's, else discards it
(killed, reaped, its cgroups removed) and forks as ever; orphaned before the
hand-over, it leaves and removes its cgroups itself. Every test checks that
nothing of the staged process stays behind.
"""

from __future__ import annotations

import os
import secrets
import signal
import tempfile
import time

import pytest

from intermodal.errors import KernelError
from intermodal.runtime.cgroups import manager_for
from intermodal.runtime.staging import Staged
from intermodal.runtime.state import proc_stat
from tests.support import bundle as _bundle
from tests.support.bundle import RUN_TIMEOUT

pytestmark = pytest.mark.requires("root", "busybox")
busybox_rootfs, busybox_bundle, created = _bundle.busybox_rootfs, _bundle.busybox_bundle, _bundle.created

BOUND = 10.0  # seconds for what happens in the background (a process exits, cgroups go)


PARENT = "/imod-staging-test"


@pytest.fixture(scope="module", autouse=True)
def _remove_parent_cgroups():
    """The tests' cgroups are under PARENT in every hierarchy; remove it at the end (it must be empty)."""
    yield
    for path in manager_for(PARENT, "x").paths().values():
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass


def _path(cid: str) -> str:
    return f"{PARENT}/{cid}"


def _new(bundle, cgroups_path: str | None = None) -> tuple[str, Staged]:
    cid = f"t-{secrets.token_hex(6)}"
    bundle.mutate(lambda c: c["linux"].__setitem__("cgroupsPath", cgroups_path or _path(cid)))
    return cid, Staged(_path(cid), cid)


def _run(created, bundle, cid: str, staged: Staged, **options) -> tuple[int, str]:
    """create (with *staged*) + start + wait + delete; (exit code, stdout)."""
    try:
        with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout:
            ctr = created.create(bundle, container_id=cid, stdio=(fin.fileno(), fout.fileno(), fout.fileno()),
                                 staged=staged, **options)
            ctr.start()
            code = ctr.wait(RUN_TIMEOUT)
            ctr.delete(force=True)
            fout.seek(0)
            return code, fout.read().decode(errors="replace")
    finally:
        staged.discard()  # as the launcher does; nothing once it was taken


def _in_cgroups(pid: int, inner: str) -> dict[str, str]:
    """Hierarchies (of /proc/PID/cgroup) in which *pid* is not in *inner*."""
    with open(f"/proc/{pid}/cgroup") as f:
        rows = [line.strip().split(":", 2) for line in f if line.strip()]
    return {names or "unified": path for _, names, path in rows if path != inner}


def _wait_staged(staged: Staged, inner: str) -> None:
    deadline = time.monotonic() + BOUND
    while _in_cgroups(staged.pid, inner):
        assert time.monotonic() < deadline, f"not in {inner}: {_in_cgroups(staged.pid, inner)}"
        time.sleep(0.01)


def _until_zombie(pid: int) -> None:
    deadline = time.monotonic() + BOUND
    while (proc_stat(pid) or ("Z",))[0] != "Z":
        assert time.monotonic() < deadline, f"{pid} still runs"
        time.sleep(0.01)


def _gone(pid: int, paths: list[str]) -> None:
    """Bounded wait until *pid* has exited (a zombie counts: its parent reaps it) and *paths* are removed."""
    deadline = time.monotonic() + BOUND
    while (proc_stat(pid) or ("Z",))[0] != "Z" or any(os.path.exists(p) for p in paths):
        assert time.monotonic() < deadline, f"left behind: {proc_stat(pid)}, {[p for p in paths if os.path.exists(p)]}"
        time.sleep(0.01)


def test_the_staged_process_moves_in_and_becomes_stage_1_with_the_limits(busybox_bundle, created):
    cid, staged = _new(busybox_bundle)
    busybox_bundle.sh("echo hello")
    _wait_staged(staged, _path(cid))  # it moved itself in; the test process (its launcher) did not
    assert _in_cgroups(os.getpid(), _path(cid))
    paths = staged.manager.paths()
    code, out = _run(created, busybox_bundle, cid, staged)
    assert staged.taken, "the create forked its own stage 1"
    assert (code, out) == (0, "hello\n")
    assert created.records[-1].cgroup_paths == paths
    assert not any(os.path.exists(p) for p in paths.values())  # deleted with the container


def test_the_limits_apply_to_the_staged_cgroups(busybox_bundle, created):
    cid, staged = _new(busybox_bundle)
    busybox_bundle.mutate(lambda c: c["linux"].__setitem__("resources", {
        "memory": {"limit": 64 << 20}, "pids": {"limit": 42}, "cpu": {"quota": 50000, "period": 100000}}))
    busybox_bundle.args("sleep", "30")
    try:
        ctr = created.create(busybox_bundle, container_id=cid, staged=staged)
        paths = staged.manager.paths()
        assert staged.taken
        with open(os.path.join(paths["memory"], "memory.limit_in_bytes")) as f:
            assert int(f.read()) == 64 << 20
        with open(os.path.join(paths["pids"], "pids.max")) as f:
            assert f.read().strip() == "42"
        with open(os.path.join(paths["cpu"], "cpu.cfs_quota_us")) as f:
            assert f.read().strip() == "50000"
        with open(os.path.join(paths["pids"], "cgroup.procs")) as f:
            assert [int(p) for p in f.read().split()] == [ctr.record().pid]  # stage 1 has gone; only the init
        ctr.delete(force=True)
    finally:
        staged.discard()


@pytest.mark.parametrize("case", ["other cgroups", "fds to preserve", "died"])
def test_a_staged_process_that_does_not_fit_is_discarded(busybox_bundle, created, case):
    other = f"{PARENT}/other-{secrets.token_hex(6)}"
    cid, staged = _new(busybox_bundle, other if case == "other cgroups" else None)
    _wait_staged(staged, _path(cid))
    pid, paths = staged.pid, list(staged.manager.paths().values())
    options = {"preserve_fds": 1} if case == "fds to preserve" else {}  # our fd 3: the staged process lacks it
    busybox_bundle.sh("echo hello")
    if case == "died":  # before the create looks (killed while it takes it over, the create fails as ever)
        os.kill(pid, signal.SIGKILL)
        _until_zombie(pid)
    code, out = _run(created, busybox_bundle, cid, staged, **options)
    assert not staged.taken
    assert code == 0, out
    assert "hello" in out
    assert all(p.endswith(other if case == "other cgroups" else _path(cid))
               for p in created.records[-1].cgroup_paths.values())
    _gone(pid, [] if case != "other cgroups" else paths)


def test_discard_kills_it_and_removes_its_cgroups(busybox_bundle):
    cid = f"t-{secrets.token_hex(6)}"
    staged = Staged(_path(cid), cid)
    _wait_staged(staged, _path(cid))
    pid, paths = staged.pid, list(staged.manager.paths().values())
    staged.discard()
    staged.discard()  # idempotent
    _gone(pid, paths)


@pytest.mark.parametrize("when", ["staged", "at once"])
def test_it_dies_with_its_launcher_and_removes_its_cgroups(when):
    """The launcher SIGKILLed: the parent-death signal makes the staged process leave and remove its cgroups."""
    cid = f"t-{secrets.token_hex(6)}"
    paths = list(manager_for(_path(cid), cid).paths().values())
    r, w = os.pipe()
    launcher = os.fork()
    if launcher == 0:  # the launcher's role: stage, say the pid, wait to be killed
        try:
            os.close(r)
            staged = Staged(_path(cid), cid)
            if when == "staged":
                staged.claim(staged.manager, 0)  # waits until it is in its cgroups
            os.write(w, b"%d\n" % staged.pid)
            time.sleep(BOUND)
        finally:
            os._exit(0)
    os.close(w)
    try:
        with os.fdopen(r, "rb") as f:
            line = f.readline()
    finally:
        os.kill(launcher, signal.SIGKILL)
        os.waitpid(launcher, 0)
    assert line, "the launcher could not stage"
    pid = int(line)
    _gone(pid, paths)


def test_a_create_that_fails_before_the_hand_over_discards_it(busybox_bundle, created, tmp_path):
    cid, staged = _new(busybox_bundle)
    busybox_bundle.mutate(lambda c: c["process"].__setitem__("terminal", True))
    _wait_staged(staged, _path(cid))
    pid, paths = staged.pid, list(staged.manager.paths().values())
    with pytest.raises(KernelError, match="console socket"):
        created.create(busybox_bundle, container_id=cid, console_socket=str(tmp_path / "nobody-listens"),
                       staged=staged)
    assert not staged.taken
    _gone(pid, paths)
