"""The image commands through the real `imod`, on a busybox image built locally."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.requires("root", "busybox")


@pytest.fixture
def imported(imod, busybox_tar: Path) -> str:
    image_id = imod("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox:latest").stdout.decode().strip()
    assert image_id.startswith("sha256:")
    return image_id


def test_images_table_and_json(imod, imported: str) -> None:
    out = imod("images").stdout.decode().splitlines()
    assert out[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert out[1].split()[:3] == ["busybox", "latest", imported[7:19]]
    rows = [json.loads(line) for line in imod("images", "--format", "json").stdout.decode().splitlines()]
    assert [(r["Repository"], r["Tag"], r["ID"]) for r in rows] == [("busybox", "latest", imported[7:19])]
    assert imod("images", "-q", "--no-trunc").stdout.decode().split() == [imported]
    assert imod("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.decode() == "busybox:latest\n"


def test_inspect_shows_docker_fields(imod, imported: str) -> None:
    [info] = json.loads(imod("image", "inspect", "busybox").stdout)
    assert info["Id"] == imported
    assert info["RepoTags"] == ["busybox:latest"]
    assert info["Config"]["Cmd"] == ["sh"]
    assert info["Os"] == "linux"
    assert len(info["RootFS"]["Layers"]) == 1
    assert info["Size"] > 500_000  # the static busybox binary alone is larger
    assert imod("image", "inspect", "-f", "{{.Id}}", imported[7:19]).stdout.decode().strip() == imported


def test_tag_history_and_rmi(imod, imported: str, engine) -> None:
    imod("tag", "busybox", "localhost:5000/team/bb:1")
    ids = {line.split()[2] for line in imod("images").stdout.decode().splitlines()[1:]}
    assert ids == {imported[7:19]}
    history = imod("history", "busybox").stdout.decode().splitlines()
    assert history[0].split()[:2] == ["IMAGE", "CREATED"]
    assert history[1].startswith(imported[7:19])
    assert "Untagged: localhost:5000/team/bb:1" in imod("rmi", "localhost:5000/team/bb:1").stdout.decode()
    out = imod("rmi", "busybox").stdout.decode()
    assert f"Deleted: {imported}" in out
    assert imod("images", "-q").stdout.decode() == ""
    # rmi collected the image's blobs and layers at once
    assert list(engine.images.store.blobs.digests()) == []


def test_rmi_of_unknown_image_fails_like_docker(imod) -> None:
    proc = imod("rmi", "nothere:1", check=False)
    assert proc.returncode == 1
    assert b"no such image: nothere:1" in proc.stderr


def test_malformed_reference_is_a_clear_error(imod) -> None:
    proc = imod("tag", "busybox", "Bad/Name", check=False)
    assert proc.returncode == 125
    assert b"invalid reference format" in proc.stderr


def test_prune_removes_dangling_image_and_its_content(imod, imported: str, busybox_tar: Path, tmp_path: Path,
                                                     engine) -> None:
    import tarfile

    extra = tmp_path / "extra.tar"
    with tarfile.open(busybox_tar) as src, tarfile.open(extra, "w") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
        info = tarfile.TarInfo("marker")
        dst.addfile(info)
    second = imod("import", str(extra), "busybox:latest").stdout.decode().strip()
    assert second != imported
    before = set(engine.images.store.blobs.digests())
    out = imod("image", "prune", "-f").stdout.decode()
    assert f"deleted: {imported}" in out
    after = set(engine.images.store.blobs.digests())
    assert imported in before and imported not in after
    assert second in after


def test_images_start_up_does_not_import_heavy_modules(engine_root: Path, imported: str) -> None:
    code = (
        "import sys; from intermodal.cli.main import main; main(['--root', sys.argv[1], 'images']);"
        "heavy = [m for m in ('requests', 'zstandard', 'pyroute2', 'intermodal.runtime', 'intermodal.network')"
        " if m in sys.modules]; print('HEAVY', heavy, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(engine_root)], capture_output=True, check=True)
    assert b"HEAVY []" in proc.stderr


def test_parallel_tags_keep_the_index_consistent(imod, imported: str, engine_root: Path) -> None:
    exe = Path(sys.executable).parent / "imod"
    procs = [subprocess.Popen([str(exe), "--root", str(engine_root), "tag", "busybox", f"bb:{i}"])
             for i in range(12)]
    deadline = time.monotonic() + 60
    for p in procs:
        assert p.wait(timeout=max(1, deadline - time.monotonic())) == 0
    tags = {line.split()[1] for line in imod("images").stdout.decode().splitlines()[1:]}
    assert tags == {"latest", *(str(i) for i in range(12))}
