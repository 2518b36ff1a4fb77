"""`imod run`'s monitor stages the container's first stage in /intermodal/<id> ahead (runtime/staging.py).

What ends up in which cgroup is what it was without staging: the container's
processes alone, in /intermodal/<id> of every hierarchy, with the limits in
force, whatever runtime runs it. A monitor cancelled or killed before the
go leaves no process and no cgroup behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from intermodal.containers import launch
from intermodal.containers.spec import ContainerSpec
from intermodal.errors import AlreadyExists, ImageNotFound
from tests.support.containers import CGROUP_ROOT, clean_containers  # noqa: F401 - the fixture below
from tests.support.processes import process_group

pytestmark = [pytest.mark.requires("root", "overlay", "busybox"), pytest.mark.usefixtures("clean_containers")]
BOUND = 10.0  # seconds for what happens in the background (processes exit, cgroups go)


def _cgroup_lines(pid: int) -> list[tuple[str, str]]:
    with open(f"/proc/{pid}/cgroup") as f:
        return [(names or "unified", path) for _, names, path in (line.rstrip("\n").split(":", 2) for line in f)]


def _parent(pid: int) -> int:
    data = Path(f"/proc/{pid}/stat").read_bytes()
    return int(data[data.rindex(b")") + 2:].split()[1])


def _until(check, what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not check():
        assert time.monotonic() < deadline, f"still there after {BOUND}s: {what}"
        time.sleep(0.01)


def _staged_cgroups(cid: str) -> list[Path]:
    return [p for p in CGROUP_ROOT.glob(f"*/intermodal/{cid}") if p.is_dir()]


@pytest.mark.parametrize("runtime", ["imod-runtime", "runc"])
def test_the_containers_processes_alone_are_in_its_cgroups_with_the_limits(imod, busybox_image, runtime):
    if runtime == "runc":
        from tests.support.capabilities import has

        if not has("runc"):
            pytest.skip("needs runc")
    cid = imod("run", "-d", "--runtime", runtime, "--memory", "64m", "--pids-limit", "42", "--cpus", "0.5",
               busybox_image, "sleep", "1000").stdout.decode().strip()
    pid = json.loads(imod("inspect", cid).stdout)[0]["State"]["Pid"]
    lines = _cgroup_lines(pid)
    assert len(lines) >= 10 and all(path == f"/intermodal/{cid}" for _, path in lines), lines
    base = CGROUP_ROOT
    assert (base / "memory/intermodal" / cid / "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
    assert (base / "pids/intermodal" / cid / "pids.max").read_text().strip() == "42"
    quota = int((base / "cpu/intermodal" / cid / "cpu.cfs_quota_us").read_text())
    period = int((base / "cpu/intermodal" / cid / "cpu.cfs_period_us").read_text())
    assert quota * 2 == period
    for key, _ in lines:  # no staged process, no launcher: the container's init alone, everywhere
        directory = base / ("unified" if key == "unified" else key.removeprefix("name=")) / "intermodal" / cid
        assert (directory / "cgroup.procs").read_text().split() == [str(pid)], directory
    imod("rm", "-f", cid)
    assert not _staged_cgroups(cid)


@pytest.mark.parametrize("failure", ["missing image", "name in use"])
def test_a_run_whose_create_fails_leaves_no_cgroup_and_no_process(engine, busybox_image, monkeypatch, failure):
    made: list[launch.PendingMonitor] = []

    class Recorded(launch.PendingMonitor):  # the real monitor; we only learn its id and process group
        def __init__(self, **options):
            super().__init__(**options)
            made.append(self)

    monkeypatch.setattr(launch, "PendingMonitor", Recorded)
    if failure == "name in use":
        engine.containers.create(ContainerSpec(image=busybox_image, name="taken", network="none"))
    spec = ContainerSpec(image="no-such-image" if failure == "missing image" else busybox_image, name="taken",
                         network="none")
    with pytest.raises(ImageNotFound if failure == "missing image" else AlreadyExists):
        engine.containers.run(spec, pull="never")
    (monitor,) = made
    assert monitor.cid is not None
    _until(lambda: not process_group(monitor.pid), "the monitor's processes")
    _until(lambda: not _staged_cgroups(monitor.cid), "the staged cgroups")


def _staged(monitor: launch.PendingMonitor) -> None:
    _until(lambda: len(_staged_cgroups(monitor.cid)) >= 10 and (
        CGROUP_ROOT / "pids/intermodal" / monitor.cid / "cgroup.procs").read_text().strip(), "staging")


@pytest.mark.parametrize("fork", [False, True], ids=["spawned", "forked"])
@pytest.mark.parametrize("kill", ["nothing", "monitor", "launcher", "the monitor's process group"])
def test_a_monitor_cancelled_or_killed_before_the_go_leaves_nothing(kill, fork):
    if fork and threading.active_count() > 1:
        pytest.skip("forked from this process as `imod run` forks it: only without other threads")
    monitor = launch.PendingMonitor(stage=True, fork=fork)
    try:
        _staged(monitor)
        (staged,) = (CGROUP_ROOT / "pids/intermodal" / monitor.cid / "cgroup.procs").read_text().split()
        launcher = _parent(int(staged))
        victim = {"monitor": _parent(launcher), "launcher": launcher}.get(kill)
        if victim is not None:
            assert victim in process_group(monitor.pid)
            os.kill(victim, signal.SIGKILL)
        elif kill != "nothing":
            os.killpg(monitor.pid, signal.SIGKILL)  # the staged process has a group of its own: it cleans up
        if kill != "nothing":
            _until(lambda: not _staged_cgroups(monitor.cid), "the staged cgroups")
    finally:
        monitor.cancel()
    _until(lambda: not process_group(monitor.pid), "the monitor's processes")
    _until(lambda: not _running(int(staged)), "the staged process")  # in a process group of its own
    _until(lambda: not _staged_cgroups(monitor.cid), "the staged cgroups")


def _running(pid: int) -> bool:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return data[data.rindex(b")") + 2:].split()[0] != b"Z"


def _marked(marker: bytes) -> dict[int, list[bytes]]:
    """Processes whose environment holds *marker* (imod's children inherit it): pid -> argv."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker in Path(f"/proc/{entry}/environ").read_bytes():
                    found[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
    return found


def test_a_wrong_guess_of_detach_cancels_the_staged_monitor_without_leftovers(engine_root, busybox_image):
    """`--name X -d`: the words before the image end at X, so `imod` guessed an attached run and staged for it."""
    mark = os.urandom(8).hex()
    marker = f"IMOD_TEST_MARK={mark}".encode()
    exe = str(Path(sys.executable).parent / "imod")
    ids: set[str] = set()
    done = threading.Event()

    def watch() -> None:  # the prespawned monitor's --id, while it lives
        while not done.is_set():
            for argv in _marked(marker).values():
                if b"--id" in argv:
                    ids.add(argv[argv.index(b"--id") + 1].decode())
            time.sleep(0.001)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        proc = subprocess.run([exe, "--root", str(engine_root), "run", "--name", "guess", "-d", busybox_image,
                               "sleep", "1000"], capture_output=True, env={**os.environ, "IMOD_TEST_MARK": mark},
                              timeout=60)
    finally:
        done.set()
        watcher.join()
    assert proc.returncode == 0, proc.stderr
    cid = proc.stdout.decode().strip()
    cancelled = ids - {cid}
    assert cancelled, f"the prespawned monitor was not seen ({ids})"
    survivors = {pid for pid, argv in _marked(marker).items() if b"--id" in argv}
    _until(lambda: not ({pid for pid, argv in _marked(marker).items() if b"--id" in argv} & survivors),
           "the cancelled monitor's processes")
    _until(lambda: not any(_staged_cgroups(i) for i in cancelled), "the cancelled monitor's staged cgroups")
    inspect = subprocess.run([exe, "--root", str(engine_root), "inspect", cid], capture_output=True, check=True)
    lines = _cgroup_lines(json.loads(inspect.stdout)[0]["State"]["Pid"])
    assert all(path == f"/intermodal/{cid}" for _, path in lines)


def _age(paths: list[Path], seconds: float) -> None:
    then = time.time() - seconds
    for path in paths:
        os.utime(path, (then, then))


def test_prune_removes_stale_empty_container_cgroups_and_keeps_used_and_fresh_ones(engine, busybox_image):
    """What a staged start killed twice over leaves (empty, old) goes; a running container's, or a
    cgroup just made for a start in progress, stays."""
    from intermodal.runtime.cgroups import manager_for

    stale, fresh = "5" * 64, "6" * 64
    made = []
    for cid in (stale, fresh):
        for path in manager_for(f"/intermodal/{cid}", cid).paths().values():
            os.makedirs(path, exist_ok=True)
            made.append(Path(path))
    running = engine.containers.run(ContainerSpec.build("busybox", command=["sleep", "60"]))[0]
    try:
        _age(_staged_cgroups(stale), 3600)
        _age(_staged_cgroups(running.id), 3600)
        assert _staged_cgroups(stale) and _staged_cgroups(fresh) and _staged_cgroups(running.id)
        engine.containers.prune()
        assert _staged_cgroups(stale) == []
        assert sorted(_staged_cgroups(fresh)) == sorted(p for p in made if fresh in str(p))
        assert _staged_cgroups(running.id), "a running container's cgroups were removed"
        assert engine.containers.get(running.id).status == "running"
    finally:
        engine.containers.remove(running.id, force=True)
        for path in sorted(made, reverse=True):
            if path.is_dir():
                path.rmdir()
    assert _staged_cgroups(running.id) == []
