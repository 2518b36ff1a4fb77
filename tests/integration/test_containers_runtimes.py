"""The engine drives our runtime (the default, in-process) and another OCI runtime (runc) through one interface.

The same lifecycle runs through each: run, exec, top, pause, unpause, stop,
start, kill, rm, and Docker's exit codes. Plus how the runtime is chosen:
--runtime, $IMOD_RUNTIME, ROOT/engine.json, and that it is kept per container.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.containers import clean_containers  # noqa: F401 - the fixture below

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox"), pytest.mark.usefixtures("clean_containers")]
RUNTIMES = ["imod-runtime", "runc"]


def _runtime_of(imod, name: str) -> str:
    return json.loads(imod("inspect", name).stdout)[0]["HostConfig"]["Runtime"]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_lifecycle_through_each_runtime(imod, busybox_image, runtime):
    imod("run", "-d", "--runtime", runtime, "--name", "box", busybox_image, "sleep", "1000")
    assert _runtime_of(imod, "box") == runtime
    out = imod("exec", "-e", "X=1", "box", "sh", "-c", "echo $X; exit 4", check=False)
    assert out.returncode == 4 and out.stdout == b"1\n"
    assert imod("exec", "box", "no-such-command", check=False).returncode == 127
    top = imod("top", "box", "-o", "pid,comm").stdout.decode().splitlines()
    assert top[0].split() == ["PID", "COMMAND"] and [ln.split()[1] for ln in top[1:]] == ["sleep"]
    imod("pause", "box")
    assert json.loads(imod("inspect", "box").stdout)[0]["State"]["Status"] == "paused"
    imod("unpause", "box")
    imod("stop", "-t", "1", "box")
    state = json.loads(imod("inspect", "box").stdout)[0]["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 137  # sleep ignores TERM as pid 1
    imod("start", "box")
    assert json.loads(imod("inspect", "box").stdout)[0]["State"]["Running"] is True
    imod("kill", "box")
    imod("rm", "box")
    assert imod("ps", "-a", "-q").stdout == b""


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(("command", "code"), [(["sh", "-c", "echo out; exit 3"], 3), (["no-such-command"], 127),
                                               (["/etc/passwd"], 126), (["/bin"], 126)])
def test_exit_codes_through_each_runtime(imod, busybox_image, runtime, command, code):
    proc = imod("run", "--rm", "--runtime", runtime, busybox_image, *command, check=False)
    assert proc.returncode == code, proc.stderr.decode()
    if code == 3:
        assert proc.stdout == b"out\n"
    else:
        assert b"Error:" in proc.stderr
    assert imod("ps", "-a", "-q").stdout == b""


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_tty_through_each_runtime(imod, busybox_image, runtime):
    proc = imod("run", "--rm", "-t", "--runtime", runtime, busybox_image, "sh", "-c", "test -t 1 && echo tty")
    assert proc.stdout.replace(b"\r", b"") == b"tty\n"


def test_the_default_is_ours_and_env_and_config_file_choose_another(imod, busybox_image, engine_root):
    imod("create", "--name", "ours", busybox_image, "true")
    assert _runtime_of(imod, "ours") == "imod-runtime"
    (engine_root / "engine.json").write_text(json.dumps({"runtime": "runc"}))
    imod("create", "--name", "configured", busybox_image, "true")
    assert _runtime_of(imod, "configured") == "runc"
    imod("create", "--name", "flag", "--runtime", "imod-runtime", busybox_image, "true")  # the flag wins
    assert _runtime_of(imod, "flag") == "imod-runtime"
    (engine_root / "engine.json").unlink()
    exe = Path(sys.executable).parent / "imod"
    env = {**os.environ, "IMOD_ROOT": str(engine_root), "IMOD_RUNTIME": "runc"}
    subprocess.run([str(exe), "create", "--name", "env", busybox_image, "true"], env=env, check=True,
                   capture_output=True)
    assert _runtime_of(imod, "env") == "runc"
    # Each container keeps its own: starting it later uses the runtime that created it.
    assert imod("start", "-a", "env").returncode == 0
    assert imod("start", "-a", "ours").returncode == 0


def test_an_unknown_runtime_is_refused_and_nothing_is_made(imod, busybox_image):
    proc = imod("run", "--runtime", "no-such-runtime", busybox_image, "true", check=False)
    assert proc.returncode == 125 and b"no-such-runtime" in proc.stderr and b"not found" in proc.stderr
    assert imod("ps", "-a", "-q").stdout == b""


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_exec_with_a_terminal_through_each_runtime(imod, busybox_image, engine_root, runtime):
    """`exec -it` from a terminal: input reaches the process's terminal, its output comes back, and its code."""
    import select
    import time

    imod("run", "-d", "--runtime", runtime, "--name", "box", busybox_image, "sleep", "1000")
    master, slave = os.openpty()
    exe = Path(sys.executable).parent / "imod"
    proc = subprocess.Popen([str(exe), "--root", str(engine_root), "exec", "-it", "box", "sh", "-c",
                             "test -t 0 && echo ready; read x; echo got $x; exit 6"],
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out, sent = b"", False
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and b"got hello" not in out:
            if b"ready" in out and not sent:
                os.write(master, b"hello\r")
                sent = True
            if select.select([master], [], [], 0.1)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: imod exited
                    break
                if not chunk:
                    break
                out += chunk
        assert proc.wait(timeout=30) == 6, out
        assert b"got hello" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
