"""`imod build` beside `podman build` (buildah): a five-step Dockerfile, cold and fully cached.

FROM busybox, RUN, COPY of 50 MB, ENV, RUN. Both on the same busybox
rootfs (Debian's busybox-static), each with a throwaway store (podman:
overlay, runc, cgroupfs, as bench/containers.py runs it), RUN without a
network. Cold is ``--no-cache`` with the base image present; cached is a
rebuild of an unchanged context. Rounds are interleaved so that machine
load hits both alike.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Result, table

IMOD = str(Path(sys.executable).parent / "imod")
SIZE = 50 * 1024 * 1024
REPEAT = 5
DOCKERFILE = """FROM busybox
RUN echo step > /step
COPY big.bin /big.bin
ENV MODE=bench
RUN wc -c /big.bin > /size
"""


def main() -> str:
    from intermodal.tools.busybox import build_rootfs_tar

    work = Path(tempfile.mkdtemp(prefix="imod-bench-build-"))
    podman = _podman_argv(work)
    try:
        rootfs = build_rootfs_tar(work / "busybox.tar")
        context = work / "ctx"
        context.mkdir()
        (context / "Dockerfile").write_text(DOCKERFILE)
        with open(context / "big.bin", "wb") as f:
            f.write(_data(SIZE))
        imod = [IMOD, "--root", str(work / "imod")]
        subprocess.run([*imod, "import", str(rootfs), "busybox:latest"], check=True, capture_output=True)
        runs = {
            "imod build --no-cache": [*imod, "build", "-q", "--no-cache", "-t", "bench:1", str(context)],
            "imod build (cached)": [*imod, "build", "-q", "-t", "bench:1", str(context)],
        }
        if podman:
            subprocess.run([*podman, "import", "-q", str(rootfs), "busybox:latest"], check=True, capture_output=True)
            build = [*podman, "build", "-q", "--network", "none", "-t", "bench:1"]
            runs["podman build --no-cache"] = [*build, "--no-cache", str(context)]
            runs["podman build (cached)"] = [*build, str(context)]
        results = _interleaved(runs)
        out = table("build, cold (--no-cache)", [r for r in results if "cache" in r.name and "cached" not in r.name],
                    baseline="podman build --no-cache" if podman else "imod build --no-cache")
        out += "\n" + table("build, fully cached", [r for r in results if "cached" in r.name],
                            baseline="podman build (cached)" if podman else "imod build (cached)")
        return out
    finally:
        if podman:
            subprocess.run([*podman, "system", "reset", "-f"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def _data(size: int) -> bytes:
    """Incompressible bytes (as a real binary blob is), made quickly from a repeated random block."""
    import os

    block = os.urandom(1 << 20)
    return b"".join(block[i:] + block[:i] for i in range(size // len(block)))


def _interleaved(runs: dict[str, list[str]]) -> list[Result]:
    for argv in runs.values():  # warm-up: also fills the caches the cached runs use
        subprocess.run(argv, check=True, capture_output=True)
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(REPEAT):
        for name, argv in runs.items():
            start = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            samples[name].append(time.perf_counter() - start)
    return [Result(name, times) for name, times in samples.items()]


def _podman_argv(work: Path) -> list[str] | None:
    if not shutil.which("podman") or not shutil.which("runc"):
        return None
    return ["podman", "--root", str(work / "podman"), "--runroot", str(work / "podman-run"), "--storage-driver",
            "overlay", "--events-backend", "none", "--cgroup-manager", "cgroupfs", "--runtime", "runc"]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    print(main())
