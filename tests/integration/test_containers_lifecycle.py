"""The container lifecycle without a daemon: detach, stop, start, restart policies, monitor faults, races."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.containers import clean_containers, start_time  # noqa: F401 - the fixture below

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox"), pytest.mark.usefixtures("clean_containers")]

LOOP = 'trap "echo bye; exit 0" TERM; echo up; while true; do sleep 0.05; done'


def inspect(imod, name: str) -> dict:
    return json.loads(imod("container", "inspect", name).stdout)[0]


def state(imod, name: str) -> dict:
    return inspect(imod, name)["State"]


def wait_for(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_detach_ps_logs_stop_start_rm(imod, busybox_image):
    cid = imod("run", "-d", "--name", "svc", busybox_image, "sh", "-c", LOOP).stdout.decode().strip()
    assert len(cid) == 64
    assert imod("ps", "-q").stdout.decode().split() == [cid[:12]]
    wait_for(lambda: imod("logs", "svc").stdout == b"up\n", "the first log line")
    imod("stop", "svc")
    st = state(imod, "svc")
    assert (st["Status"], st["ExitCode"]) == ("exited", 0)  # the trap ran: the stop signal came first
    assert imod("logs", "svc").stdout == b"up\nbye\n"
    assert imod("ps", "-q").stdout == b""
    imod("start", "svc")
    assert state(imod, cid[:8])["Status"] == "running"  # an id prefix works like the name
    proc = imod("rm", "svc", check=False)
    assert proc.returncode == 1 and b"--force" in proc.stderr
    imod("rm", "-f", "svc")
    assert imod("ps", "-a", "-q").stdout == b""


def test_stop_kills_after_the_timeout(imod, busybox_image):
    imod("run", "-d", "--name", "stubborn", busybox_image, "sh", "-c", "trap '' TERM; while true; do sleep 0.05; done")
    imod("stop", "-t", "1", "stubborn")
    st = state(imod, "stubborn")
    assert (st["Status"], st["ExitCode"]) == ("exited", 137)


def test_stop_signal_from_the_spec(imod, busybox_image):
    imod("run", "-d", "--name", "usr1", "--stop-signal", "USR1", busybox_image, "sh", "-c",
         "trap 'exit 42' USR1; while true; do sleep 0.05; done")
    imod("stop", "usr1")
    assert state(imod, "usr1")["ExitCode"] == 42


def test_kill_with_a_signal_records_128_plus_n(imod, busybox_image):
    imod("run", "-d", "--name", "victim", busybox_image, "sleep", "1000")
    imod("kill", "victim")
    st = state(imod, "victim")
    assert (st["Status"], st["ExitCode"]) == ("exited", 137)


def test_monitor_outlives_imod_and_records_the_exit(imod, busybox_image, engine_root: Path):
    imod("run", "-d", "--name", "short", busybox_image, "sh", "-c", "sleep 0.5; exit 7")
    monitor = json.loads((_dir(engine_root, "short") / "state.json").read_text())["MonitorPid"]
    # `imod` has exited; the monitor is not its child any more and is in its own session.
    assert os.getsid(monitor) != os.getsid(0)
    assert imod("wait", "short").stdout == b"7\n"
    st = state(imod, "short")
    assert st["Status"] == "exited" and st["FinishedAt"] > st["StartedAt"]
    wait_for(lambda: start_time(monitor) == 0, "the monitor to exit")


def test_an_attached_run_forks_its_monitor_a_detached_one_spawns_it_both_named_and_detached(imod, busybox_image,
                                                                                            engine_root: Path):
    exe = Path(sys.executable).parent / "imod"
    attached = subprocess.Popen([str(exe), "--root", str(engine_root), "run", "--name", "forked", busybox_image,
                                 "sleep", "1000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        imod("run", "-d", "--name", "detached", busybox_image, "sleep", "1000")
        imod("create", "--name", "started", busybox_image, "sleep", "1000")
        imod("start", "started")
        names = ("forked", "detached", "started")
        wait_for(lambda: all(state(imod, name)["Status"] == "running" for name in names), "three running")
        forked, *spawned = (json.loads((_dir(engine_root, name) / "state.json").read_text())["MonitorPid"]
                            for name in names)
        for monitor in (forked, *spawned):
            assert Path(f"/proc/{monitor}/comm").read_text() == "imod-monitor\n"
            assert os.getsid(monitor) not in (os.getsid(0), monitor)  # a session of its own, not its leader
            fds = {int(fd): os.readlink(f"/proc/{monitor}/fd/{fd}") for fd in os.listdir(f"/proc/{monitor}/fd")}
            assert fds[0] == fds[1] == "/dev/null" and fds[2].endswith("/monitor.err")
        argv = Path(f"/proc/{forked}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        cid = inspect(imod, "forked")["Id"]
        assert argv[:2] == [b"imod-monitor", b"--id"] and len(argv[2]) >= 12 and cid.startswith(argv[2].decode())
        for monitor in spawned:  # python -I -S
            assert b"-S" in Path(f"/proc/{monitor}/cmdline").read_bytes().split(b"\0")
        imod("stop", "-t", "1", *names)
        assert attached.wait(timeout=30) == 137  # sleep ignores SIGTERM as pid 1: killed after the timeout
        assert [state(imod, name)["Status"] for name in names] == ["exited"] * 3
        wait_for(lambda: not any(start_time(monitor) for monitor in (forked, *spawned)), "the monitors to exit")
    finally:
        if attached.poll() is None:
            attached.kill()
            attached.wait()


def test_restart_on_failure_twice(imod, busybox_image):
    imod("run", "-d", "--name", "flaky", "--restart", "on-failure:2", busybox_image, "sh", "-c", "echo run; exit 1")
    wait_for(lambda: (c := inspect(imod, "flaky"))["State"]["Status"] == "exited" and c["RestartCount"] == 2,
             "two restarts and a final exit")
    assert imod("logs", "flaky").stdout == b"run\nrun\nrun\n"
    assert state(imod, "flaky")["ExitCode"] == 1


def test_restart_always_stops_on_stop(imod, busybox_image):
    imod("run", "-d", "--name", "always", "--restart", "always", busybox_image, "sh", "-c", "sleep 0.1")
    wait_for(lambda: inspect(imod, "always")["RestartCount"] >= 2, "restarts")
    imod("stop", "-t", "1", "always")
    stopped = inspect(imod, "always")
    assert stopped["State"]["Status"] == "exited"
    time.sleep(0.5)  # long enough for the back-off of a restart that should not happen
    assert inspect(imod, "always") == stopped


def test_sigkilled_monitor_still_lets_inspect_stop_and_rm_work(imod, busybox_image, engine_root: Path):
    imod("run", "-d", "--name", "orphan", busybox_image, "sleep", "1000")
    recorded = json.loads((_dir(engine_root, "orphan") / "state.json").read_text())
    os.kill(recorded["MonitorPid"], signal.SIGKILL)
    wait_for(lambda: start_time(recorded["MonitorPid"]) == 0, "the monitor to die")
    st = state(imod, "orphan")
    assert st["Status"] == "running" and st.get("MonitorMissing")
    imod("stop", "-t", "1", "orphan")
    st = state(imod, "orphan")
    assert st["Status"] == "exited"
    assert start_time(recorded["Pid"]) == 0
    imod("rm", "orphan")


def test_sigkilled_monitor_and_exited_container_reported_as_exited(imod, busybox_image, engine_root: Path):
    imod("run", "-d", "--name", "gone", busybox_image, "sleep", "1000")
    recorded = json.loads((_dir(engine_root, "gone") / "state.json").read_text())
    os.kill(recorded["MonitorPid"], signal.SIGKILL)
    os.kill(recorded["Pid"], signal.SIGKILL)
    wait_for(lambda: start_time(recorded["Pid"]) == 0, "the container to die")
    st = state(imod, "gone")
    assert (st["Status"], st["ExitCode"]) == ("exited", 255)
    assert "monitor" in st["Error"]
    imod("rm", "-f", "gone")


def test_twenty_parallel_runs_of_one_name_make_one_container(imod, busybox_image, engine_root: Path):
    exe = Path(sys.executable).parent / "imod"

    def run(_):
        return subprocess.run([str(exe), "--root", str(engine_root), "run", "-d", "--name", "same", busybox_image,
                               "sleep", "1000"], capture_output=True, timeout=120)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(run, range(20)))
    ok = [r for r in results if r.returncode == 0]
    failed = [r for r in results if r.returncode != 0]
    assert len(ok) == 1
    assert all(r.returncode == 125 and b"already in use" in r.stderr for r in failed), \
        [r.stderr for r in failed if b"already in use" not in r.stderr]
    assert imod("ps", "-a", "-q").stdout.decode().split() == [ok[0].stdout.decode().strip()[:12]]
    assert len([p for p in (engine_root / "containers").iterdir() if p.is_dir()]) == 1


def test_exec_pause_unpause_rename(imod, busybox_image):
    imod("run", "-d", "--name", "box", busybox_image, "sleep", "1000")
    out = imod("exec", "-e", "X=1", "-w", "/etc", "box", "sh", "-c", "echo $X; pwd; exit 5", check=False)
    assert (out.returncode, out.stdout) == (5, b"1\n/etc\n")
    assert imod("exec", "box", "no-such-command", check=False).returncode == 127
    imod("pause", "box")
    assert state(imod, "box")["Status"] == "paused"
    assert imod("exec", "box", "true", check=False).returncode == 125
    imod("unpause", "box")
    assert state(imod, "box")["Status"] == "running"
    imod("rename", "box", "crate")
    assert imod("ps", "--format", "{{.Names}}").stdout == b"crate\n"
    assert imod("container", "inspect", "box", check=False).returncode == 1
    imod("create", "--name", "box", busybox_image, "true")  # the old name is free again


def test_logs_rotate_by_size(imod, busybox_image, engine_root: Path):
    imod("run", "--name", "chatty", "--log-opt", "max-size=2k", "--log-opt", "max-file=3", busybox_image, "sh", "-c",
         "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done")
    directory = _dir(engine_root, "chatty")
    files = sorted(p.name for p in directory.glob("container.log*"))
    assert files == ["container.log", "container.log.1", "container.log.2"]
    assert all(p.stat().st_size <= 2048 for p in directory.glob("container.log*"))
    lines = imod("logs", "chatty").stdout.decode().split()
    assert lines[-1] == "line-199" and lines == [f"line-{i}" for i in range(200 - len(lines), 200)]
    assert imod("logs", "--tail", "2", "chatty").stdout == b"line-198\nline-199\n"


def _dir(root: Path, name: str) -> Path:
    names = json.loads((root / "containers" / "names.json").read_text())
    return root / "containers" / names[name]


def test_detached_rm_container_is_removed_by_its_monitor(imod, busybox_image):
    imod("run", "-d", "--rm", "--name", "tmp", busybox_image, "sleep", "0.3")
    wait_for(lambda: imod("ps", "-a", "-q").stdout == b"", "the monitor to remove the container")


def test_rm_container_is_removed_even_if_imod_run_is_killed(imod, busybox_image, engine_root: Path):
    exe = Path(sys.executable).parent / "imod"
    proc = subprocess.Popen([str(exe), "--root", str(engine_root), "run", "--rm", "--name", "lost", busybox_image,
                             "sh", "-c", "echo started; sleep 0.5"], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"started\n"
        proc.kill()  # SIGKILL: no chance to remove it or to pass the signal on
    finally:
        proc.wait(timeout=30)
        proc.stdout.close()
    wait_for(lambda: imod("ps", "-a", "-q").stdout == b"", "the monitor to remove the container")
    # the record goes first, the monitor's last step is dropping the container's lock file
    locks = engine_root / "locks" / "containers"
    wait_for(lambda: not locks.is_dir() or not any(locks.iterdir()), "the monitor to finish the removal")


def test_signals_to_imod_run_reach_the_container(imod, busybox_image, engine_root: Path):
    exe = Path(sys.executable).parent / "imod"
    proc = subprocess.Popen([str(exe), "--root", str(engine_root), "run", "--rm", busybox_image, "sh", "-c",
                             "trap 'echo got-term; exit 9' TERM; echo ready; while true; do sleep 0.05; done"],
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert (proc.returncode, out) == (9, b"got-term\n")


@pytest.mark.parametrize("verb", [("stop", "-t", "1"), ("rm", "-f"), ("kill",)])
def test_paused_container_can_be_stopped_removed_killed(imod, busybox_image, verb):
    imod("run", "-d", "--name", "frozen", busybox_image, "sleep", "1000")
    imod("pause", "frozen")
    imod(*verb, "frozen")
    names = imod("ps", "-a", "--format", "{{.Names}} {{.State}}").stdout
    assert names == (b"" if verb[0] == "rm" else b"frozen exited\n")


def test_restart_runs_the_command_again(imod, busybox_image):
    imod("run", "-d", "--name", "again", busybox_image, "sh", "-c",
         'echo started; trap "exit 0" TERM; while true; do sleep 0.05; done')
    wait_for(lambda: imod("logs", "again").stdout == b"started\n", "the first start")
    imod("restart", "-t", "5", "again")
    wait_for(lambda: imod("logs", "again").stdout == b"started\nstarted\n", "the second start")
    assert state(imod, "again")["Status"] == "running"


def test_a_start_whose_imod_dies_early_is_still_recorded(imod, busybox_image, engine_root: Path):
    """The monitor records the start itself when `imod` is killed before it could."""
    from intermodal.containers.launch import PendingMonitor
    from intermodal.containers.prepare import prepare_start
    from intermodal.engine import Engine

    imod("create", "--name", "early", busybox_image, "sleep", "1000")
    manager = Engine(root=engine_root).containers
    cid = manager.store.resolve("early")
    record = manager.store.read_record(cid)
    with manager.store.lock(cid):  # what `start` does, minus recording the result (as if killed there)
        prepare_start(manager, cid, record, None)
        started = PendingMonitor().go(manager.store.dir(cid))
    assert started.ok
    wait_for(lambda: state(imod, "early")["Status"] == "running", "the monitor to record the start")
    assert state(imod, "early")["Pid"] == started.info["pid"]
    imod("stop", "-t", "1", "early")
    assert state(imod, "early")["Status"] == "exited"


def test_attach_shows_the_output_from_now_on_and_returns_the_exit_code(imod, busybox_image, engine_root: Path):
    imod("run", "-d", "--name", "att", busybox_image, "sh", "-c",
         "echo before; while [ ! -f /tmp/go ]; do sleep 0.05; done; echo out; echo err >&2; exit 7")
    wait_for(lambda: imod("logs", "att").stdout == b"before\n", "the first line")
    exe = Path(sys.executable).parent / "imod"
    proc = subprocess.Popen([str(exe), "--root", str(engine_root), "attach", "att"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        # Attached once it holds the log open: what comes after that is what it shows.
        wait_for(lambda: any(os.readlink(f"/proc/{proc.pid}/fd/{fd}").endswith("container.log")
                             for fd in os.listdir(f"/proc/{proc.pid}/fd")), "attach to open the log")
        imod("exec", "att", "touch", "/tmp/go")
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, out, err) == (7, b"out\n", b"err\n")
    proc = imod("attach", "att", check=False)
    assert proc.returncode != 0 and b"running" in proc.stderr
