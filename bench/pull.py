"""Pull of a ~100 MB image from a local registry: intermodal vs skopeo vs podman.

The image has three layers of incompressible data (os.urandom, gzip level
1), is pushed once to a docker-registry on 127.0.0.1, then pulled into an
empty store N times by each tool: intermodal in-process (with and without
unpacking the layers) and as `imod pull`, `skopeo copy` into an OCI layout
(download only, nothing unpacked), `podman pull` into a fresh --root
(overlay driver, unpacks). The table shows medians, MB/s of blob data and
ratios from this one run.

`python bench/run.py pull` or `python bench/pull.py [N]`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import Result, table  # noqa: E402

LAYER_MB = (34, 33, 33)
REPEAT = int(os.environ.get("BENCH_PULL_N", "4"))
IMOD = str(Path(sys.executable).parent / "imod")


def interleaved(cases: list[tuple[str, Callable[[Path], object], str]], fresh: Callable[[], Path],
                repeat: int) -> list[Result]:
    """Round-robin over the tools, so a noisy neighbour slows all of them alike.

    Each sample pulls into an empty directory from *fresh*, removed afterwards (removal not timed).
    """
    samples: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    for _ in range(repeat):
        for name, run, _ in cases:
            where = fresh()
            try:
                start = time.perf_counter()
                run(where)
                samples[name].append(time.perf_counter() - start)
            finally:
                _remove(where)
    return [Result(name, samples[name], note) for name, _, note in cases]


def _remove(path: Path) -> None:
    # podman's overlay driver bind-mounts its home onto itself and may leave it behind on failure.
    prefix = str(path) + "/"
    with open("/proc/self/mounts") as f:
        mounts = [line.split()[1] for line in f if line.split()[1].startswith(prefix)]
    for mount in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", mount], check=False)
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr[-2000:]}")


def main(repeat: int = REPEAT) -> str:
    from tests.support.registry import craft_image, start_registry

    from intermodal.engine import Engine

    work = Path(tempfile.mkdtemp(prefix="imod-bench-pull-"))
    registry = start_registry(work / "registry")
    try:
        source = Engine(root=work / "source")
        layers = [{f"layer{i}/data": os.urandom(mb << 20)} for i, mb in enumerate(LAYER_MB)]
        record = craft_image(source, "bench/pull:1", layers, level=1)
        del layers
        ref = f"{registry.host}/bench/pull:1"
        source.images.push("bench/pull:1", ref, tls_verify=False)
        total = source.images.store.blobs.size(record.id) + sum(
            d.size for d in source.images.store.manifest(record).layers)
        mb = total / 1e6

        counter = iter(range(1 << 30))

        def fresh() -> Path:
            path = work / f"r{next(counter)}"  # short: podman refuses a run root longer than 50 characters
            path.mkdir()
            return path

        cases: list[tuple[str, Callable[[Path], object], str]] = [
            ("intermodal API", lambda d: Engine(root=d).images.pull(ref, tls_verify=False),
             "download + verify + unpack"),
            ("intermodal API, no unpack", lambda d: Engine(root=d).images.pull(ref, tls_verify=False, unpack=False),
             "download + verify"),
            ("imod pull", lambda d: _run([IMOD, "--root", str(d), "pull", "-q", "--tls-verify=false", ref]),
             "CLI, unpacks"),
        ]
        if shutil.which("skopeo"):
            cases.append(("skopeo copy", lambda d: _run(
                ["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}", f"oci:{d}/layout:x"]),
                "OCI layout, no unpack"))
        if shutil.which("podman"):
            cases.append(("podman pull", lambda d: _run(
                ["podman", "--root", str(d / "root"), "--runroot", str(d / "run"), "--tmpdir", str(d / "tmp"),
                 "--storage-driver", "overlay",
                 "--events-backend", "none", "pull", "-q", "--tls-verify=false", ref]), "overlay, unpacks"))
        results = interleaved(cases, fresh, repeat)
        for r in results:
            r.note = f"{mb / r.median:.0f} MB/s; {r.note}"
        return table(f"pull of a {mb:.0f} MB image ({len(LAYER_MB)} random layers, gzip -1) from a local registry, "
                     f"median of {repeat}", results, baseline="intermodal API")
    finally:
        registry.stop()
        _remove(work)


if __name__ == "__main__":
    print(main(int(sys.argv[1]) if len(sys.argv) > 1 else REPEAT))
