"""The real `imod-runtime` command: create/start/state/kill/delete, run, exec, ps, list, spec, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from intermodal.runtime.state import proc_stat
from tests.support import bundle as _bundle

pytestmark = pytest.mark.requires("root", "busybox")
busybox_rootfs, busybox_bundle = _bundle.busybox_rootfs, _bundle.busybox_bundle
EXE = str(Path(sys.executable).parent / "imod-runtime")


@pytest.fixture
def cli(tmp_path):
    """Run imod-runtime against a private root; afterwards force-delete whatever is left and check."""
    root = tmp_path / "root"

    def run(*args: str, out=None, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        # Output goes to files: a container keeps its stdout/stderr open, a pipe would never reach EOF.
        with tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
            proc = subprocess.run([EXE, "--root", str(root), *args], stdin=subprocess.DEVNULL,
                                  stdout=out or fout, stderr=ferr, timeout=timeout)
            fout.seek(0)
            ferr.seek(0)
            proc.stdout, proc.stderr = fout.read(), ferr.read()
        if check and proc.returncode != 0:
            raise AssertionError(f"imod-runtime {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()}")
        return proc

    run.root = root
    yield run
    for name in os.listdir(root) if root.exists() else []:
        subprocess.run([EXE, "--root", str(root), "delete", "--force", name], capture_output=True, timeout=30)
    assert not root.exists() or os.listdir(root) == []


def _wait_stopped(cli, cid: str) -> dict:
    for _ in range(500):
        state = json.loads(cli("state", cid).stdout)
        if state["status"] == "stopped":
            return state
        time.sleep(0.01)
    raise AssertionError(f"{cid} did not stop")


def test_create_start_state_kill_delete(cli, busybox_bundle, tmp_path):
    busybox_bundle.args("sleep", "60")
    pid_file = tmp_path / "pid"
    cli("create", "--bundle", str(busybox_bundle.path), "--pid-file", str(pid_file), "c1")
    state = json.loads(cli("state", "c1").stdout)
    assert state["status"] == "created" and state["id"] == "c1" and state["ociVersion"].startswith("1.")
    assert state["pid"] == int(pid_file.read_text()) and proc_stat(state["pid"]) is not None
    assert state["bundle"] == str(busybox_bundle.path)
    cli("start", "c1")
    assert json.loads(cli("state", "c1").stdout)["status"] == "running"
    assert cli("start", "c1", check=False).returncode == 1
    assert cli("delete", "c1", check=False).returncode == 1  # running: needs --force
    cli("kill", "c1", "KILL")
    assert _wait_stopped(cli, "c1")["pid"] == 0
    cli("delete", "c1")
    assert cli("state", "c1", check=False).returncode == 1
    assert proc_stat(state["pid"]) is None or proc_stat(state["pid"])[0] == "Z"


def test_run_exits_with_the_container_code(cli, busybox_bundle, tmp_path):
    out = tmp_path / "out"
    with open(out, "wb") as f:
        proc = cli("run", "--bundle", str(busybox_bundle.sh("echo via-cli; exit 42").path), "r1", out=f, check=False)
    assert proc.returncode == 42 and out.read_text() == "via-cli\n"
    assert cli("list", "-q").stdout == b""


def test_exec_ps_and_list(cli, busybox_bundle, tmp_path):
    cli("run", "--detach", "--bundle", str(busybox_bundle.args("sleep", "60").path), "e1")
    proc = cli("exec", "e1", "sh", "-c", "echo in-exec $$; exit 5", check=False)
    assert proc.returncode == 5 and proc.stdout.startswith(b"in-exec ")
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"args": ["sleep", "60"], "cwd": "/", "env": ["PATH=/bin"]}))
    pid_file = tmp_path / "exec.pid"
    cli("exec", "--detach", "--pid-file", str(pid_file), "--process", str(process), "e1")
    pids = json.loads(cli("ps", "--format", "json", "e1").stdout)
    assert int(pid_file.read_text()) in pids and len(pids) == 2
    listed = json.loads(cli("list", "--format", "json").stdout)
    assert [(c["id"], c["status"]) for c in listed] == [("e1", "running")]
    cli("delete", "--force", "e1")


def test_errors_are_logged_as_json_like_runc(cli, tmp_path):
    log = tmp_path / "log.json"
    proc = cli("--log", str(log), "--log-format", "json", "state", "nope", check=False)
    assert proc.returncode == 1 and b"does not exist" in proc.stderr
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and "nope does not exist" in entry["msg"] and entry["time"]


def test_create_with_bad_config_fails_and_leaves_nothing(cli, busybox_bundle):
    busybox_bundle.mutate(lambda c: c.__setitem__("ociVersion", "2.0.0"))
    proc = cli("create", "--bundle", str(busybox_bundle.path), "bad", check=False)
    assert proc.returncode == 1 and b"ociVersion" in proc.stderr
    assert cli("list", "-q").stdout == b""


def test_spec_writes_a_default_config(cli, tmp_path):
    cli("spec", "--bundle", str(tmp_path))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["ociVersion"].startswith("1.") and config["root"]["path"] == "rootfs"
    assert cli("spec", "--bundle", str(tmp_path), check=False).returncode == 1  # never overwrites


def test_version(cli):
    assert b"imod-runtime version" in cli("--version").stdout


def test_preserve_fds_passes_fd_3(cli, busybox_bundle, tmp_path):
    shared = tmp_path / "shared"
    shared.write_text("through fd 3\n")
    fd = os.open(shared, os.O_RDONLY)
    try:
        with tempfile.TemporaryFile() as out:
            proc = subprocess.run(
                [EXE, "--root", str(cli.root), "run", "--preserve-fds", "1", "--bundle",
                 str(busybox_bundle.sh("cat <&3; ls /proc/self/fd | wc -l").path), "p1"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, pass_fds=(3,),
                preexec_fn=lambda: os.dup2(fd, 3), timeout=30)
            out.seek(0)
            text = out.read().decode()
    finally:
        os.close(fd)
    assert proc.returncode == 0, text
    assert text.split("\n")[0] == "through fd 3" and int(text.split()[-1]) == 5  # 0-3 and ls's own


@pytest.mark.parametrize(("args", "message"), [
    (["/etc/passwd"], "Permission denied"),
    (["/bin"], "Is a directory"),
    (["no-such-command"], "executable file not found"),
])
def test_a_command_that_cannot_run_fails_at_create(cli, busybox_bundle, tmp_path, args, message):
    """As runc: the engine learns it from create (and reports 126/127), not from an exit 1 after start."""
    log = tmp_path / "log.json"
    proc = cli("--log", str(log), "--log-format", "json", "create", "--bundle", str(busybox_bundle.args(*args).path),
               "bad", check=False)
    assert proc.returncode == 1 and message in proc.stderr.decode()
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and message in entry["msg"]
    assert cli("list", "-q").stdout == b""


def test_start_failure_is_logged_as_an_error(cli, busybox_bundle, tmp_path):
    cli("create", "--bundle", str(busybox_bundle.args("sleep", "60").path), "s1")
    os.kill(json.loads(cli("state", "s1").stdout)["pid"], 9)  # dies before start
    log = tmp_path / "log.json"
    assert cli("--log", str(log), "--log-format", "json", "start", "s1", check=False).returncode == 1
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and "s1" in entry["msg"]


def test_ps_passes_its_options_to_ps_and_keeps_the_pid_column(cli, busybox_bundle):
    cli("run", "--detach", "--bundle", str(busybox_bundle.args("sleep", "60").path), "p1")
    pid = json.loads(cli("state", "p1").stdout)["pid"]
    lines = cli("ps", "p1", "-o", "pid,comm").stdout.decode().splitlines()
    assert lines[0].split() == ["PID", "COMMAND"] and [ln.split() for ln in lines[1:]] == [[str(pid), "sleep"]]
    assert cli("ps", "p1").stdout.decode().splitlines()[0].split()[:2] == ["UID", "PID"]  # -ef, like runc
    proc = cli("ps", "p1", "-o", "comm", check=False)
    assert proc.returncode == 1 and b"no PID column" in proc.stderr
    cli("delete", "--force", "p1")


def test_console_socket_may_be_an_abstract_name(cli, busybox_bundle):
    """runc accepts `@name` (callers use it when a path would pass sun_path's 108 bytes)."""
    import socket

    from intermodal.runtime.console import receive

    name = f"imod-test-console-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("\0" + name)
    server.listen(1)
    server.settimeout(10)
    busybox_bundle.mutate(lambda c: c["process"].update(terminal=True, args=["sleep", "60"]))
    try:
        cli("create", "--bundle", str(busybox_bundle.path), "--console-socket", f"@{name}", "t1")
        conn, _ = server.accept()
        with conn:
            master, slave = receive(conn)
        os.close(master)
        assert slave.startswith("/dev/pts/")
    finally:
        server.close()
        cli("delete", "--force", "t1", check=False)
