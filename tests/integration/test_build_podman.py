"""A built image leaves through `imod save`: skopeo reads its layers, podman loads and runs it."""

from __future__ import annotations

import io
import json
import resource
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.integration.test_build import no_build_leaks, write_context  # noqa: F401 - fixture
from tests.support.containers import clean_containers  # noqa: F401 - fixture

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox", "skopeo", "podman"),
              pytest.mark.usefixtures("clean_containers", "no_build_leaks")]


@pytest.fixture
def podman():
    """podman on a throwaway store (vfs), run by runc; everything it made is removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="imod-build-podman-"))
    argv = ["podman", "--root", str(base / "storage"), "--runroot", str(base / "run"), "--storage-driver", "vfs",
            "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", "runc"]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*argv, *args], capture_output=True, stdin=subprocess.DEVNULL, timeout=120)

    try:
        yield run
    finally:
        run("rm", "--all", "--force", "--time", "0")
        run("rmi", "--all", "--force")
        with open("/proc/self/mountinfo") as f:
            leaked = [line.split()[4] for line in f if str(base) in line]
        for point in reversed(leaked):
            subprocess.run(["umount", "-l", point], check=False)
        shutil.rmtree(base, ignore_errors=True)
        assert not leaked, f"podman left mounts behind: {leaked}"


def test_built_image_is_read_by_skopeo_and_run_by_podman(engine, busybox_image, imod, podman, tmp_path):
    ctx = write_context(tmp_path / "ctx", {
        "Dockerfile": ("FROM busybox\nRUN rm /bin/vi && echo built > /built\nWORKDIR /app\nCOPY file.txt .\n"
                       "USER nobody\nENV MODE=test\n"
                       'CMD ["sh", "-c", "cat /built file.txt; pwd; id -u; echo $MODE; '
                       'test -e /bin/vi || echo no-vi"]\n'),
        "file.txt": "from the context\n",
    })
    record = engine.images.build(str(ctx), tags=("built:1",), output=io.StringIO())
    archive = tmp_path / "built.tar"
    imod("save", "-o", str(archive), "built:1")
    inspected = json.loads(subprocess.run(["skopeo", "inspect", f"docker-archive:{archive}"], capture_output=True,
                                          check=True, timeout=60).stdout)
    assert inspected["Layers"] == list(record.diff_ids)  # docker-archive layers are the uncompressed tars
    assert inspected["Env"][-1] == "MODE=test"
    loaded = podman("load", "-i", str(archive))
    assert loaded.returncode == 0, loaded.stderr
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 4096)
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 4096)
    proc = podman("run", "--rm", "--network", "none", f"--ulimit=nofile={nofile}:{nofile}",
                  f"--ulimit=nproc={nproc}:{nproc}", "built:1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"built\nfrom the context\n/app\n65534\ntest\nno-vi\n"
    image = json.loads(podman("image", "inspect", "built:1").stdout)[0]
    assert image["Id"] == record.id.split(":", 1)[1]
