"""podman from Debian drives imod-runtime: run --rm, run -d, exec (with and without a tty), pause, stop, rm.

A throwaway podman store (vfs, cgroupfs, file events) under a temporary
directory holds a busybox image imported from the locally built rootfs tar;
everything is removed afterwards and no mount may remain below it.
This machine's root lacks CAP_SYS_RESOURCE, so podman's default nofile/nproc
(above the current hard limits) cannot be set by any runtime (runc fails the
same way): the tests pass lower limits as --ulimit.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.requires("root", "podman", "busybox"), pytest.mark.slow]
EXE = str(Path(sys.executable).parent / "imod-runtime")
IMAGE = "localhost/imod-busybox:latest"


def _ulimits() -> list[str]:
    # Lowering is always allowed; podman's own process may run with lower hard limits than ours.
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 4096)
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 4096)
    return [f"--ulimit=nofile={nofile}:{nofile}", f"--ulimit=nproc={nproc}:{nproc}"]


class Podman:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.argv = ["podman", "--root", str(base / "storage"), "--runroot", str(base / "run"),
                     "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                     "--runtime", EXE]

    def __call__(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run([*self.argv, *args], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                  timeout=timeout)
            out.seek(0)
            err.seek(0)
            proc.stdout, proc.stderr = out.read().decode(), err.read().decode()
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc


@pytest.fixture(scope="module")
def podman(busybox_tar):
    base = Path(tempfile.mkdtemp(prefix="imod-podman-"))
    pm = Podman(base)
    try:
        pm("import", str(busybox_tar), IMAGE)
        yield pm
    finally:
        pm("rm", "--all", "--force", "--time", "0", check=False)
        pm("rmi", "--all", "--force", check=False)
        with open("/proc/self/mountinfo") as f:
            leaked = [line.split()[4] for line in f if str(base) in line]
        for point in reversed(leaked):
            subprocess.run(["umount", "-l", point], check=False)
        shutil.rmtree(base, ignore_errors=True)
        assert not leaked, f"podman left mounts behind: {leaked}"


def test_run_rm(podman):
    proc = podman("run", "--rm", "--network", "none", *_ulimits(), IMAGE, "sh", "-c",
                  "echo hello-podman; ls /proc | grep -cE '^[0-9]+$'; exit 3", check=False)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stdout.split()
    assert lines[0] == "hello-podman" and int(lines[1]) <= 5
    assert podman("ps", "-aq").stdout.strip() == ""


def test_detached_exec_stop_rm(podman):
    cid = podman("run", "-d", "--name", "imod-s1", "--network", "none", *_ulimits(), IMAGE,
                 "sleep", "300").stdout.strip()
    try:
        assert podman("inspect", "--format", "{{.OCIRuntime}}", "imod-s1").stdout.strip() == EXE
        out = podman("exec", "imod-s1", "sh", "-c", "echo in-exec; hostname").stdout.split()
        assert out == ["in-exec", cid[:12]]
        assert podman("exec", "imod-s1", "sh", "-c", "exit 9", check=False).returncode == 9
        assert podman("exec", "-t", "imod-s1", "tty").stdout.strip().startswith("/dev/pts/")
        podman("pause", "imod-s1")
        assert podman("inspect", "--format", "{{.State.Status}}", "imod-s1").stdout.strip() == "paused"
        podman("unpause", "imod-s1")
        assert podman("inspect", "--format", "{{.State.Status}}", "imod-s1").stdout.strip() == "running"
        podman("stop", "-t", "1", "imod-s1")
        status = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "imod-s1").stdout.split()
        assert status == ["exited", "137"]  # sleep as pid 1 ignores SIGTERM: podman falls back to SIGKILL
    finally:
        podman("rm", "--force", "imod-s1", check=False)
    assert podman("ps", "-aq").stdout.strip() == ""


def test_run_with_security_options_and_limits(podman):
    proc = podman("run", "--rm", "--network", "none", *_ulimits(), "--user", "1000:1000", "--read-only",
                  "--cap-drop", "all", "--security-opt", "no-new-privileges", "--pids-limit", "10",
                  "--memory", "64m", "--hostname", "hh", IMAGE, "sh", "-c",
                  "id -u; hostname; touch /x; echo rc=$?; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status",
                  check=False)
    out = proc.stdout.split()
    assert out[:3] == ["1000", "hh", "rc=1"], proc.stdout + proc.stderr
    assert out[3:] == ["CapEff:", "0000000000000000", "NoNewPrivs:", "1", "Seccomp:", "2"]  # podman's seccomp


def test_run_with_a_user_namespace_and_a_tty(podman):
    out = podman("run", "--rm", "--network", "none", *_ulimits(), "--uidmap", "0:100000:65536",
                 "--gidmap", "0:100000:65536", IMAGE, "cat", "/proc/self/uid_map").stdout.split()
    assert out == ["0", "100000", "65536"]
    assert podman("run", "--rm", "-t", "--network", "none", *_ulimits(), IMAGE, "tty").stdout.strip() == "/dev/pts/0"
