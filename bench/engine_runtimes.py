"""`imod run --rm --network none busybox true` through each OCI runtime the engine drives, beside podman.

- ours in-process (the default: the monitor creates, starts, reaps and
  deletes the container itself);
- ours through its CLI (`--runtime` with the path of `imod-runtime`: a new
  interpreter per verb, like any other OCI runtime);
- runc through its CLI (`--runtime runc`), what the engine used before;
- podman with runc (`--network none`), as in containers.py.

Interleaved rounds, so a busy moment of the machine hits every row alike.
Also the monitor's memory with our runtime and with runc.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import command, table
from bench.containers import _PODMAN_RUN, _interleaved, _mem_row, _podman_argv

IMOD = str(Path(sys.executable).parent / "imod")
OUR_CLI = str(Path(sys.executable).parent / "imod-runtime")
REPEAT = 31


def main() -> str:
    import compileall

    import intermodal
    from intermodal.tools.busybox import build_rootfs_tar

    compileall.compile_dir(Path(intermodal.__file__).parent, quiet=1)  # as installed (see containers.py)
    work = Path(tempfile.mkdtemp(prefix="imod-bench-runtimes-"))
    imod = [IMOD, "--root", str(work / "imod")]
    podman = _podman_argv(work)
    try:
        tar = build_rootfs_tar(work / "busybox.tar")
        subprocess.run([*imod, "import", str(tar), "busybox:latest"], check=True, capture_output=True)
        run = [*imod, "run", "--rm", "--network", "none"]
        runs = {"imod, our runtime in-process (default)": command([*run, "busybox", "true"]),
                "imod, our runtime through its CLI": command([*run, "--runtime", OUR_CLI, "busybox", "true"]),
                "imod, runc through its CLI": command([*run, "--runtime", "runc", "busybox", "true"])}
        if podman:
            subprocess.run([*podman, "import", "-q", str(tar), "busybox:latest"], check=True, capture_output=True)
            runs["podman run --rm --network none busybox true"] = command(
                [*podman, "run", "--rm", *_PODMAN_RUN, "busybox", "true"])
        results = _interleaved(runs, repeat=REPEAT)
        base = "imod, runc through its CLI"
        out = table("`run --rm --network none busybox true` by runtime", results, baseline=base)
        return out + "\n" + _memory(imod)
    finally:
        ids = subprocess.run([*imod, "ps", "-a", "-q", "--no-trunc"], capture_output=True).stdout.decode().split()
        if ids:
            subprocess.run([*imod, "rm", "-f", *ids], capture_output=True)
        if podman:
            subprocess.run([*podman, "rm", "-f", "-a"], capture_output=True)
            subprocess.run([*podman, "system", "reset", "-f"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def _memory(imod: list[str]) -> str:
    lines = ["## the monitor's memory per idle container (`sleep 1000`), by runtime", "",
             "| supervisor | RSS | PSS | private (USS) |", "|---|---|---|---|"]
    for name, runtime in (("monitor, our runtime in-process", "imod-runtime"), ("monitor, runc", "runc")):
        cid = subprocess.run([*imod, "run", "-d", "--network", "none", "--runtime", runtime, "busybox", "sleep",
                              "1000"], check=True, capture_output=True).stdout.decode().strip()
        try:
            info = json.loads(subprocess.run([*imod, "container", "inspect", cid], check=True,
                                             capture_output=True).stdout)
            state = json.loads((Path(info[0]["LogPath"]).parent / "state.json").read_text())
            lines.append(_mem_row(name, state["MonitorPid"]))
        finally:
            subprocess.run([*imod, "rm", "-f", cid], capture_output=True)
    return "\n".join(lines) + "\n"


__all__ = ["main"]
