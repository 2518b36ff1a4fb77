"""ps filters and formats, logs -f, wait, top, prune, OOM kills, rmi refusal, restart after a "reboot"."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.containers import clean_containers, start_time  # noqa: F401 - the fixture below

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox"), pytest.mark.usefixtures("clean_containers")]


def _inspect(imod, name: str) -> dict:
    return json.loads(imod("container", "inspect", name).stdout)[0]


def test_ps_filters_and_json(imod, busybox_image):
    imod("run", "-d", "--name", "a1", "-l", "app=a", busybox_image, "sleep", "1000")
    imod("create", "--name", "b1", "-l", "app=b", busybox_image, "true")
    assert imod("ps", "--format", "{{.Names}}").stdout == b"a1\n"
    assert sorted(imod("ps", "-a", "--format", "{{.Names}}").stdout.split()) == [b"a1", b"b1"]
    assert imod("ps", "-a", "-f", "label=app=b", "--format", "{{.Names}}").stdout == b"b1\n"
    assert imod("ps", "-f", "status=created", "--format", "{{.Names}}").stdout == b"b1\n"
    rows = [json.loads(line) for line in imod("ps", "-a", "--format", "json").stdout.splitlines()]
    assert {r["Names"]: r["State"] for r in rows} == {"a1": "running", "b1": "created"}
    assert imod("ps", "-f", "colour=red", check=False).returncode == 125


def test_logs_follow_ends_when_the_container_exits(imod, busybox_image):
    imod("run", "-d", "--name", "talk", busybox_image, "sh", "-c", "echo one; sleep 0.5; echo two >&2")
    proc = imod("logs", "-f", "-t", "talk")
    assert [line.split(" ", 1)[1] for line in proc.stdout.decode().splitlines()] == ["one"]
    assert proc.stderr.decode().split(" ", 1)[1] == "two\n"


def test_wait_prints_exit_codes(imod, busybox_image):
    imod("run", "-d", "--name", "w1", busybox_image, "sh", "-c", "sleep 0.3; exit 12")
    assert imod("wait", "w1").stdout == b"12\n"


def test_top_lists_the_container_processes(imod, busybox_image):
    imod("run", "-d", "--name", "busy", busybox_image, "sleep", "1000")
    out = imod("top", "busy", "-o", "pid,comm").stdout.decode().split()
    assert (out[:2], out[3:]) == (["PID", "COMMAND"], ["sleep"])  # the runtime needs the PID column
    assert b"sleep 1000" in imod("top", "busy").stdout


def test_container_prune_keeps_running_ones(imod, busybox_image):
    imod("run", "-d", "--name", "up", busybox_image, "sleep", "1000")
    imod("create", "--name", "idle", busybox_image, "true")
    imod("run", "--name", "done", busybox_image, "true")
    out = imod("container", "prune", "-f").stdout.decode()
    assert "Total reclaimed containers: 2" in out
    assert imod("ps", "-a", "--format", "{{.Names}}").stdout == b"up\n"


def test_oom_kill_is_recorded(imod, busybox_image):
    proc = imod("run", "--name", "hog", "--memory", "8m", busybox_image, "sh", "-c",
                "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived", check=False)
    assert proc.returncode == 137 and b"survived" not in proc.stdout
    state = _inspect(imod, "hog")["State"]
    assert (state["OOMKilled"], state["ExitCode"]) == (True, 137)


def test_memory_limit_too_low_is_refused(imod, busybox_image):
    proc = imod("run", "--rm", "--memory", "1m", busybox_image, "true", check=False)
    assert proc.returncode == 125 and b"too low" in proc.stderr


def test_image_in_use_cannot_be_removed(imod, busybox_image):
    imod("create", "--name", "holder", busybox_image, "true")
    proc = imod("rmi", busybox_image, check=False)
    assert proc.returncode != 0 and b"holder" in proc.stderr
    imod("rm", "holder")
    imod("rmi", busybox_image)


def test_start_all_restartable_after_a_reboot(imod, busybox_image, engine_root: Path):
    imod("run", "-d", "--name", "svc", "--restart", "always", busybox_image, "sleep", "1000")
    imod("run", "-d", "--name", "manual", "--restart", "unless-stopped", busybox_image, "sleep", "1000")
    imod("stop", "-t", "0", "manual")
    imod("run", "-d", "--name", "plain", busybox_image, "sleep", "1000")
    for name in ("svc", "plain"):  # a reboot: monitors and containers vanish without a word
        state = json.loads((_dir(engine_root, name) / "state.json").read_text())
        os.kill(state["MonitorPid"], signal.SIGKILL)
        os.kill(state["Pid"], signal.SIGKILL)
        for pid in (state["MonitorPid"], state["Pid"]):
            _wait_gone(pid)
    assert imod("start", "--all-restartable").stdout == b"svc\n"
    assert imod("ps", "--format", "{{.Names}}").stdout == b"svc\n"


def test_start_and_rm_racing_end_consistent(imod, busybox_image, engine_root: Path):
    imod("create", "--name", "race", busybox_image, "sleep", "1000")
    exe = [str(Path(sys.executable).parent / "imod"), "--root", str(engine_root)]
    procs = [subprocess.Popen([*exe, "start", "race"], stdout=subprocess.PIPE, stderr=subprocess.PIPE),
             subprocess.Popen([*exe, "rm", "-f", "race"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)]
    results = [(p.wait(timeout=60), p.communicate()) for p in procs]
    rm_code = results[1][0]
    assert rm_code == 0, results[1][1]
    # Whichever won, rm -f was last to finish: no container, and nothing half-removed.
    assert imod("ps", "-a", "-q").stdout == b""
    assert not [p for p in (engine_root / "containers").iterdir() if p.is_dir()]


def _dir(root: Path, name: str) -> Path:
    names = json.loads((root / "containers" / "names.json").read_text())
    return root / "containers" / names[name]


def _wait_gone(pid: int) -> None:
    import time

    deadline = time.monotonic() + 20
    while start_time(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not start_time(pid)


def test_inspect_finds_containers_then_images_then_volumes(imod, busybox_image):
    imod("create", "--name", "both", busybox_image, "true")
    imod("volume", "create", "vol")
    assert imod("inspect", "-f", "{{.Name}}", "both").stdout == b"/both\n"
    assert imod("inspect", "-f", "{{.Id}}", busybox_image).stdout.startswith(b"sha256:")
    assert imod("inspect", "-f", "{{.Name}}", "vol").stdout == b"vol\n"
    proc = imod("inspect", "--type", "image", "both", check=False)
    assert proc.returncode == 1 and b"no such object: both" in proc.stderr
