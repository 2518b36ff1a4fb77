"""`imod run --rm busybox true` beside podman and the bare interpreter; monitor memory beside conmon; `ps -a`.

Both engines run the same busybox rootfs (built from the host's
busybox-static, imported into each) with runc, once with `--network none`
and once with each engine's default network (a bridge for both; imod's
with test names and its own nft table, removed at the end). podman 4.3's
crun refuses this hybrid cgroup machine, and its default RLIMIT_NOFILE/NPROC
exceed what this machine grants, hence `--ulimit`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import Result, command, table

IMOD = str(Path(sys.executable).parent / "imod")
PS_COUNT = 200
REPEAT = 41  # rounds of the start comparisons: the host's noise moves a median of 21 by +-3 ms


def main() -> str:
    import compileall

    from tests.support.netns import cleanup_engine, engine_settings

    import intermodal
    from intermodal.engine import Engine
    from intermodal.tools.busybox import build_rootfs_tar

    # As installed: with PYTHONDONTWRITEBYTECODE set (as in this sandbox) every
    # `imod` would otherwise compile each module it imports, every time.
    compileall.compile_dir(Path(intermodal.__file__).parent, quiet=1)

    work = Path(tempfile.mkdtemp(prefix="imod-bench-containers-"))
    (work / "imod").mkdir()
    # imod's default network is `bridge`: test names, its own nft table and a free subnet, removed at the end.
    settings = engine_settings(work / "imod")
    imod = [IMOD, "--root", str(work / "imod")]
    podman = _podman_argv(work)
    try:
        tar = build_rootfs_tar(work / "busybox.tar")
        subprocess.run([*imod, "import", str(tar), "busybox:latest"], check=True, capture_output=True)
        if podman:
            subprocess.run([*podman, "import", "-q", str(tar), "busybox:latest"], check=True, capture_output=True)
        out = _no_network(imod, podman) + "\n" + _default_network(imod, podman)
        out += "\n" + _memory(imod, podman) + "\n" + _ps(work, imod, podman)
        return out
    finally:
        subprocess.run([*imod, "rm", "-f", *_ids(imod)], capture_output=True)
        cleanup_engine(Engine(root=work / "imod"), settings["table"])
        if podman:
            subprocess.run([*podman, "rm", "-f", "-a"], capture_output=True)
            subprocess.run([*podman, "system", "reset", "-f"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def _no_network(imod: list[str], podman: list[str] | None) -> str:
    """Goal: at most 1.0x podman, both with `--network none`."""
    runs = {"python3 -c pass": command([sys.executable, "-c", "pass"]),
            "imod run --rm --network none busybox true": command([*imod, "run", "--rm", "--network", "none",
                                                                  "busybox", "true"])}
    if podman:
        runs["podman run --rm --network none busybox true"] = command(
            [*podman, "run", "--rm", *_PODMAN_RUN, "busybox", "true"])
    results = _interleaved(runs, repeat=REPEAT)
    if podman:
        results[-1].note = "runc, overlay"
    base = "podman run --rm --network none busybox true" if podman else "python3 -c pass"
    extra = {"imod beyond the interpreter (median difference)":
             f"{(results[1].median - results[0].median) * 1000:.0f} ms"}
    return table("`run --rm busybox true`, no network", results, baseline=base, extra=extra)


def _default_network(imod: list[str], podman: list[str] | None) -> str:
    """Goal: at most 0.5x podman, each with its default network (both bridges), plus what networking adds."""
    runs = {"imod run --rm busybox true (default: bridge)": command([*imod, "run", "--rm", "busybox", "true"]),
            "imod run --rm --network none busybox true": command([*imod, "run", "--rm", "--network", "none",
                                                                  "busybox", "true"])}
    if podman:
        runs["podman run --rm busybox true (its default bridge)"] = command(
            [*podman, "run", "--rm", *_PODMAN_RUN[2:], "busybox", "true"])
    results = _interleaved(runs, repeat=REPEAT)
    base = results[-1].name if podman else results[1].name
    extra = {"what imod's bridge adds (median difference)":
             f"{(results[0].median - results[1].median) * 1000:.0f} ms"}
    return table("`run --rm busybox true` with the default network", results, baseline=base, extra=extra)


def _interleaved(runs: dict, repeat: int, warmup: int = 2) -> list[Result]:
    """Each round runs every command once, so that a busy moment of the machine hits all of them alike."""
    import time

    for _ in range(warmup):
        for run in runs.values():
            run()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - start)
    return [Result(name, values) for name, values in samples.items()]


_PODMAN_RUN = ["--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]


def _podman_argv(work: Path) -> list[str] | None:
    if not shutil.which("podman") or not shutil.which("runc"):
        return None
    return ["podman", "--root", str(work / "podman"), "--runroot", str(work / "podman-run"), "--storage-driver",
            "overlay", "--events-backend", "none", "--cgroup-manager", "cgroupfs", "--runtime", "runc"]


def _ids(imod: list[str]) -> list[str]:
    out = subprocess.run([*imod, "ps", "-a", "-q", "--no-trunc"], capture_output=True).stdout.decode().split()
    return out or ["--"]


def _memory(imod: list[str], podman: list[str] | None) -> str:
    """Resident memory of the per-container supervisor of one idle container: imod's monitor as `run -d`
    and `start` spawn it (a fresh `python -I -S`), and as an attached `imod run` forks it."""
    lines = ["## memory per idle running container (`sleep 1000`)", "",
             "| supervisor | RSS | PSS | private (USS) |", "|---|---|---|---|"]
    detached = subprocess.run([*imod, "run", "-d", "busybox", "sleep", "1000"], check=True,
                              capture_output=True).stdout.decode().strip()
    attached = subprocess.Popen([*imod, "run", "--name", "bench-attached", "busybox", "sleep", "1000"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for cid, name in ((detached, "intermodal monitor (`run -d`, `start`: python -I -S)"),
                          ("bench-attached", "intermodal monitor (forked by an attached `imod run`)")):
            lines.append(_mem_row(name, _monitor_pid(imod, cid)))
    finally:
        subprocess.run([*imod, "rm", "-f", detached, "bench-attached"], capture_output=True)
        attached.wait()
    if podman:
        pid = subprocess.run([*podman, "run", "-d", *_PODMAN_RUN, "busybox", "sleep", "1000"], check=True,
                             capture_output=True).stdout.decode().strip()
        conmon = subprocess.run([*podman, "inspect", "--format", "{{.State.ConmonPid}}", pid], check=True,
                                capture_output=True).stdout.decode().strip()
        lines.append(_mem_row("podman's conmon", int(conmon)))
        subprocess.run([*podman, "rm", "-f", pid], capture_output=True)
    return "\n".join(lines) + "\n"


def _monitor_pid(imod: list[str], name: str) -> int:
    """The monitor of the running container *name* (its state.json, once `imod` recorded the start)."""
    import time

    for _ in range(200):  # bounded: 10 s
        out = subprocess.run([*imod, "container", "inspect", name], capture_output=True)
        if out.returncode == 0:
            info = json.loads(out.stdout)[0]
            state = json.loads((Path(info["LogPath"]).parent / "state.json").read_text())
            if state.get("Running") and state.get("MonitorPid"):
                return state["MonitorPid"]
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not start")


def _mem_row(name: str, pid: int) -> str:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    rollup = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, value = line.partition(":")
        rollup[key] = int(value.split()[0])
    private = rollup.get("Private_Clean", 0) + rollup.get("Private_Dirty", 0)
    return f"| {name} | {status['VmRSS'].strip()} | {rollup.get('Pss', 0)} kB | {private} kB |"


def _ps(work: Path, imod: list[str], podman: list[str] | None) -> str:
    """`ps -a` listing PS_COUNT created containers, each engine its own (podman's made in parallel: ~0.2 s each)."""
    from concurrent.futures import ThreadPoolExecutor

    from intermodal.containers.spec import ContainerSpec
    from intermodal.engine import Engine

    engine = Engine(root=work / "imod")
    spec = ContainerSpec.build("busybox", command=["true"])
    ids = [engine.containers.create(spec).id for _ in range(PS_COUNT)]
    try:
        runs = {"python3 -c pass": command([sys.executable, "-c", "pass"]),
                f"imod ps -a ({PS_COUNT} containers)": command([*imod, "ps", "-a"])}
        if podman:
            create = [*podman, "create", *_PODMAN_RUN, "busybox", "true"]
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda _: subprocess.run(create, check=True, capture_output=True), range(PS_COUNT)))
            runs[f"podman ps -a ({PS_COUNT} containers)"] = command([*podman, "ps", "-a"])
        results = _interleaved(runs, repeat=11)
        base = results[-1].name if podman else "python3 -c pass"
        return table(f"`ps -a` with {PS_COUNT} containers", results, baseline=base)
    finally:
        for cid in ids:
            engine.containers.remove(cid, force=True)


__all__ = ["main"]
