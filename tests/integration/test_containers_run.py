"""`imod run` on the real kernel: output, exit codes, image defaults and overrides."""

from __future__ import annotations

import json
import os

import pytest

from tests.support.containers import clean_containers  # noqa: F401 - the fixture below

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox"), pytest.mark.usefixtures("clean_containers")]


def test_run_rm_prints_output_and_leaves_nothing(imod, busybox_image):
    proc = imod("run", "--rm", busybox_image, "echo", "hi")
    assert proc.stdout == b"hi\n"
    assert imod("ps", "-a", "-q").stdout == b""


@pytest.mark.parametrize(("command", "code"), [
    (["sh", "-c", "exit 3"], 3),
    (["true"], 0),
    (["no-such-command"], 127),
    (["/etc/passwd"], 126),
])
def test_exit_codes_as_docker(imod, busybox_image, command, code):
    proc = imod("run", "--rm", busybox_image, *command, check=False)
    assert proc.returncode == code, proc.stderr.decode()
    if code in (126, 127):
        assert b"Error:" in proc.stderr
    assert imod("ps", "-a", "-q").stdout == b""


def test_stdout_and_stderr_are_separate(imod, busybox_image):
    proc = imod("run", "--rm", busybox_image, "sh", "-c", "echo out; echo err >&2")
    assert proc.stdout == b"out\n"
    assert proc.stderr == b"err\n"


def test_interactive_stdin(imod, busybox_image):
    proc = imod("run", "--rm", "-i", busybox_image, "cat", input=b"from stdin\n")
    assert proc.stdout == b"from stdin\n"


def test_env_workdir_user_entrypoint_labels(imod, busybox_image):
    out = imod("run", "--name", "opts", "-e", "GREETING=hello", "-w", "/tmp", "-u", "nobody", "-l", "tier=web",
               "--entrypoint", "/bin/sh", busybox_image, "-c", 'echo "$GREETING"; pwd; id -u; id -g; echo $HOME')
    assert out.stdout.decode().split() == ["hello", "/tmp", "65534", "65534", "/home"]
    info = json.loads(imod("container", "inspect", "opts").stdout)[0]
    assert info["Config"]["Labels"] == {"tier": "web"}
    assert info["Config"]["Entrypoint"] == ["/bin/sh"]
    assert info["Config"]["User"] == "nobody"
    assert info["Path"] == "/bin/sh"
    assert "GREETING=hello" in info["Config"]["Env"]
    assert info["State"]["Status"] == "exited"


def test_image_cmd_is_the_default_and_entrypoint_override_drops_it(imod, busybox_image):
    # The fixture's image has CMD ["sh"]: with no input, sh exits 0 at once.
    assert imod("run", "--rm", busybox_image).returncode == 0
    proc = imod("run", "--rm", "--entrypoint", "echo", busybox_image)
    assert proc.stdout == b"\n"  # echo with no arguments: the image's CMD is not passed on


def test_numeric_user_and_group(imod, busybox_image):
    out = imod("run", "--rm", "-u", "1234:5678", busybox_image, "sh", "-c", "id -u; id -g").stdout
    assert out.split() == [b"1234", b"5678"]


def test_unknown_user_is_a_clear_error(imod, busybox_image):
    proc = imod("run", "--rm", "-u", "nosuchuser", busybox_image, "true", check=False)
    assert proc.returncode == 125
    assert b"nosuchuser" in proc.stderr
    assert imod("ps", "-a", "-q").stdout == b""


def test_container_is_isolated(imod, busybox_image):
    out = imod("run", "--rm", "-h", "boxed", "--network", "none", busybox_image, "sh", "-c",
               "hostname; echo $$; cat /etc/hostname; ip -o link | wc -l; cat /proc/self/status | grep CapEff")
    lines = out.stdout.decode().splitlines()
    assert lines[0] == "boxed"
    assert lines[1] == "1"  # its own pid namespace
    assert lines[2] == "boxed"
    assert lines[3].strip() == "1"  # --network none: only loopback
    assert lines[4].split()[1] == "00000000a80425fb"  # Docker's default capabilities


def test_host_network_shares_the_hosts_namespace(imod, busybox_image):
    out = imod("run", "--rm", "--network", "host", busybox_image, "readlink", "/proc/self/ns/net")
    assert out.stdout.decode().strip() == os.readlink("/proc/self/ns/net")
    out = imod("run", "--rm", busybox_image, "readlink", "/proc/self/ns/net")
    assert out.stdout.decode().strip() != os.readlink("/proc/self/ns/net")
    # bridge and named networks: test_containers_network.py (they need the network test fixtures)


def test_read_only_and_tmpfs(imod, busybox_image):
    proc = imod("run", "--rm", "--read-only", "--tmpfs", "/scratch", busybox_image, "sh", "-c",
                "touch /scratch/ok && echo tmpfs-ok; touch /nope", check=False)
    assert proc.stdout == b"tmpfs-ok\n"
    assert proc.returncode == 1
    assert b"Read-only file system" in proc.stderr


def test_limits_reach_the_cgroup(imod, busybox_image):
    out = imod("run", "--rm", "--memory", "64m", "--pids-limit", "50", busybox_image, "sh", "-c",
               "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max")
    assert out.stdout.split() == [str(64 * 1024 * 1024).encode(), b"50"]


def test_name_in_use_is_refused(imod, busybox_image):
    imod("create", "--name", "taken", busybox_image, "true")
    proc = imod("create", "--name", "taken", busybox_image, "true", check=False)
    assert proc.returncode == 125
    assert b"already in use" in proc.stderr
    assert len(imod("ps", "-a", "-q").stdout.split()) == 1


def test_unknown_image_is_a_clear_error(imod, busybox_image):
    proc = imod("run", "--rm", "--pull", "never", "nosuchimage", "true", check=False)
    assert proc.returncode == 125
    assert b"nosuchimage" in proc.stderr


def test_tty_without_input(imod, busybox_image):
    out = imod("run", "--rm", "-t", busybox_image, "sh", "-c", "tty; echo $TERM")
    assert out.stdout == b"/dev/pts/0\r\nxterm\r\n"  # one terminal for both streams, with its CR LF


def test_interactive_tty_from_a_terminal(busybox_image, engine_root):
    import fcntl
    import select
    import signal
    import struct
    import subprocess
    import sys
    import termios
    import time
    from pathlib import Path

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    exe = Path(sys.executable).parent / "imod"
    proc = subprocess.Popen([str(exe), "--root", str(engine_root), "run", "--rm", "-it", busybox_image, "sh", "-c",
                             "stty size; echo ready; read x; stty size; echo got $x; exit 5"],
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if b"ready" in out and b"hello" not in out:
                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
                proc.send_signal(signal.SIGWINCH)  # imod has no controlling terminal here: tell it ourselves
                time.sleep(0.3)
                os.write(master, b"hello\r")  # imod's terminal is raw: Enter is CR, the container's tty maps it
                out += b"hello"
            if select.select([master], [], [], 0.1)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: imod exited, its terminal side is closed
                    break
                if not chunk:
                    break
                out += chunk
            if proc.poll() is not None and not select.select([master], [], [], 0.1)[0]:
                break
        assert proc.wait(timeout=30) == 5, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        os.close(master)
    assert b"30 100" in out and b"40 120" in out and b"got hello" in out, out


def test_init_is_pid_one_and_passes_signals_on(imod, busybox_image):
    out = imod("run", "--rm", "--init", busybox_image, "sh", "-c", "ps -o pid,comm | grep ' 1 '; exit 3", check=False)
    assert (out.returncode, out.stdout.split()) == (3, [b"1", b"docker-init"])
    imod("run", "-d", "--name", "reaped", "--init", busybox_image, "sleep", "1000")
    imod("stop", "-t", "30", "reaped")  # sleep as pid 1 would ignore SIGTERM; under the init it dies of it
    info = json.loads(imod("container", "inspect", "reaped").stdout)[0]
    assert info["State"]["ExitCode"] == 143


def test_env_file_and_capabilities(imod, busybox_image, tmp_path):
    env_file = tmp_path / "env"
    env_file.write_text("# a comment\nFROM_FILE=yes\n\nOVERRIDDEN=file\n")
    out = imod("run", "--rm", "--env-file", str(env_file), "-e", "OVERRIDDEN=flag", busybox_image, "sh", "-c",
               "echo $FROM_FILE $OVERRIDDEN")
    assert out.stdout == b"yes flag\n"
    caps = imod("run", "--rm", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN", busybox_image, "sh", "-c",
                "grep CapEff /proc/self/status").stdout.split()[1]
    assert caps == b"0000000000001000"  # CAP_NET_ADMIN (12) alone
    proc = imod("run", "--rm", "--cap-drop", "CHOWN", busybox_image, "chown", "nobody", "/tmp", check=False)
    assert proc.returncode == 1 and b"Operation not permitted" in proc.stderr


def test_privileged_and_cpus(imod, busybox_image):
    out = imod("run", "--rm", "--privileged", busybox_image, "sh", "-c",
               "grep CapEff /proc/self/status; grep -c . /proc/self/mountinfo >/dev/null; "
               "mount -t tmpfs none /tmp && echo mounted").stdout.decode()
    assert "mounted" in out and out.split()[1] != "00000000a80425fb"
    out = imod("run", "--rm", "--cpus", "0.5", busybox_image, "cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
    assert out.stdout == b"50000\n"
