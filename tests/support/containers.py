"""Clean-up and leak checks for tests that run containers.

`clean_containers` (a fixture; use it with
``pytestmark = pytest.mark.usefixtures("clean_containers")``) lets the test
run, then removes every container of the test's engine root with
``imod rm -f`` and checks that nothing leaked: no container directory, no
mount under the engine root, no cgroup, no runtime state, no monitor or
container process. Whatever is left is then removed by force (processes by
PID, mounts detached, cgroups removed), so a failing test never leaves
anything behind, and the leak check fails the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CGROUP_ROOT = Path("/sys/fs/cgroup")


@pytest.fixture
def clean_containers(engine_root: Path):
    yield
    leaks = leaks_after_removal(engine_root)
    force_cleanup(engine_root)
    assert not leaks, f"left behind after `imod rm -f`: {leaks}"


def imod(root: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "imod"
    return subprocess.run([str(exe), "--root", str(root), *args], capture_output=True, timeout=timeout)


def container_ids(root: Path) -> list[str]:
    base = root / "containers"
    return sorted(p.name for p in base.iterdir() if len(p.name) == 64) if base.is_dir() else []


def leaks_after_removal(root: Path) -> list[str]:
    ids = container_ids(root)
    pids = _pids(root)
    if ids:
        imod(root, "rm", "-f", *ids)
    leaks = [f"container dir {i[:12]}" for i in container_ids(root)]
    leaks += [f"mount {m}" for m in mounts_under(root)]
    leaks += [f"cgroup {p}" for i in ids for p in cgroups_of(i)]
    leaks += [f"process {pid}" for pid, start in pids if _alive(pid, start)]
    locks = root / "locks" / "containers"
    leaks += [f"lock file {p.name[:12]}" for p in locks.iterdir()] if locks.is_dir() else []
    runtime_state = root / "run" / "runtime"
    # Dot-names are the runtime's caches (its compiled seccomp programs), not any container's state.
    leaks += ([f"runtime state {p}" for p in runtime_state.glob("*/*") if not p.name.startswith(".")]
              if runtime_state.is_dir() else [])
    return leaks


def force_cleanup(root: Path) -> None:
    for pid, start in _pids(root):
        if _alive(pid, start):
            os.kill(pid, signal.SIGKILL)
    for runtime_dir in (root / "run" / "runtime").glob("*"):
        for state in runtime_dir.iterdir():
            subprocess.run(["runc", "--root", str(runtime_dir), "delete", "--force", state.name],
                           capture_output=True, timeout=30)
    for m in sorted(mounts_under(root), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True, timeout=30)
    for cid in container_ids(root):
        for path in cgroups_of(cid):
            _rmdir_cgroup(path)


def mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve())
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix + "/"):  # below the root: a root on its own filesystem is the test's
                found.append(point)
    return found


def cgroups_of(cid: str) -> list[Path]:
    return [p for p in CGROUP_ROOT.glob(f"*/intermodal/{cid}") if p.is_dir()]


def _pids(root: Path) -> list[tuple[int, int]]:
    """Monitor and container processes the engine recorded (pid, start time)."""
    out = []
    for cid in container_ids(root):
        try:
            state = json.loads((root / "containers" / cid / "state.json").read_text())
        except (OSError, ValueError):
            continue
        for pid_key, start_key in (("MonitorPid", "MonitorStart"), ("Pid", "PidStart")):
            if state.get(pid_key):
                out.append((int(state[pid_key]), int(state.get(start_key) or 0)))
    return out


def start_time(pid: int) -> int:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return 0
    fields = data[data.rindex(b")") + 2:].split()
    return 0 if fields[0] == b"Z" else int(fields[19])


def _alive(pid: int, start: int) -> bool:
    return start != 0 and start_time(pid) == start


def _rmdir_cgroup(path: Path) -> None:
    for child in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        _try_rmdir(child)
    _try_rmdir(path)


def _try_rmdir(path: Path) -> None:
    for _ in range(50):  # bounded: a cgroup empties shortly after its last process is reaped
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
