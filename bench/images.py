"""`imod images` with 200 images in the store, beside `podman images` and the bare interpreter."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from bench.common import Result, command, measure, table

COUNT = 200
IMOD = str(Path(sys.executable).parent / "imod")


def tiny_rootfs(i: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = f"image {i}\n".encode()
        info = tarfile.TarInfo("id")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def main() -> str:
    from intermodal.engine import Engine

    work = Path(tempfile.mkdtemp(prefix="imod-bench-images-"))
    try:
        engine = Engine(root=work / "imod")
        for i in range(COUNT):
            engine.images.import_rootfs(io.BytesIO(tiny_rootfs(i)), f"bench/img{i}:latest")
        results = [
            measure("python3 -c pass", command([sys.executable, "-c", "pass"]), repeat=10),
            measure("imod images", command([IMOD, "--root", str(work / "imod"), "images"]), repeat=10),
        ]
        if shutil.which("podman"):
            results.append(_podman(work))
        return table(f"`images` with {COUNT} images", results, baseline="imod images")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _podman(work: Path) -> Result:
    store = ["podman", "--root", str(work / "podman"), "--runroot", str(work / "podman-run"),
             "--storage-driver", "vfs", "--events-backend", "none"]
    for i in range(COUNT):
        subprocess.run([*store, "import", "-q", "-", f"bench/img{i}:latest"], input=tiny_rootfs(i), check=True,
                       stdout=subprocess.DEVNULL)
    try:
        return measure("podman images", command([*store, "images"]), repeat=10)
    finally:
        subprocess.run([*store, "system", "reset", "-f"], capture_output=True)
