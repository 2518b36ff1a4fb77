"""`imod cp` both ways, through mounts, and never through a symlink out of the container."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from tests.support.containers import clean_containers  # noqa: F401 - the fixture below

pytestmark = [pytest.mark.requires("root", "overlay", "runc", "busybox"), pytest.mark.usefixtures("clean_containers")]


def test_copy_file_both_ways_and_seen_inside(imod, busybox_image, tmp_path: Path):
    imod("run", "-d", "--name", "box", busybox_image, "sleep", "1000")
    src = tmp_path / "in.txt"
    src.write_text("to the container\n")
    os.chmod(src, 0o640)
    imod("cp", str(src), "box:/tmp/")
    assert imod("exec", "box", "cat", "/tmp/in.txt").stdout == b"to the container\n"
    assert imod("exec", "box", "stat", "-c", "%a", "/tmp/in.txt").stdout == b"640\n"
    imod("cp", "box:/etc/passwd", str(tmp_path / "passwd"))
    assert (tmp_path / "passwd").read_text().startswith("root:x:0:0")


def test_copy_directories(imod, busybox_image, tmp_path: Path):
    imod("create", "--name", "stopped", busybox_image, "true")  # works on a container that never ran
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_text("deep\n")
    os.symlink("sub/f", tree / "link")
    imod("cp", str(tree), "stopped:/srv")  # /srv does not exist: the directory becomes /srv
    out = tmp_path / "out"
    imod("cp", "stopped:/srv", str(out))
    assert (out / "sub" / "f").read_text() == "deep\n" and os.readlink(out / "link") == "sub/f"
    imod("cp", "stopped:/srv/.", str(tmp_path / "contents"))
    assert (tmp_path / "contents" / "sub" / "f").exists()


def test_copy_through_a_volume(imod, busybox_image, tmp_path: Path):
    imod("run", "-d", "--name", "vol", "-v", "data:/data", busybox_image, "sleep", "1000")
    (tmp_path / "v.txt").write_text("in the volume\n")
    imod("cp", str(tmp_path / "v.txt"), "vol:/data/v.txt")
    mountpoint = Path(imod("volume", "inspect", "--", "data").stdout.decode().split('"Mountpoint": "')[1].split('"')[0])
    assert (mountpoint / "v.txt").read_text() == "in the volume\n"


def test_symlinks_stay_inside_the_container(imod, busybox_image, tmp_path: Path):
    host = tmp_path / "host"
    host.mkdir()
    imod("run", "-d", "--name", "evil", busybox_image, "sleep", "1000")
    imod("exec", "evil", "sh", "-c", f"mkdir -p {host}; ln -s {host} /escape; ln -s /etc/passwd /tmp/pw")
    (tmp_path / "payload").write_text("x\n")
    imod("cp", str(tmp_path / "payload"), "evil:/escape/payload")
    # The link's target is resolved in the container: the file lands there, not on the host.
    assert list(host.iterdir()) == []
    assert imod("exec", "evil", "cat", f"{host}/payload").stdout == b"x\n"
    imod("cp", "evil:/tmp/pw", str(tmp_path / "pw"))  # the link itself is copied, as Docker does
    assert os.readlink(tmp_path / "pw") == "/etc/passwd"


def test_tar_streams(imod, busybox_image):
    imod("create", "--name", "t", busybox_image, "true")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"from a tar\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    imod("cp", "-", "t:/tmp", input=buf.getvalue())
    out = imod("cp", "t:/tmp/hello.txt", "-").stdout
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        assert tar.extractfile("hello.txt").read() == b"from a tar\n"
    bad = io.BytesIO()
    with tarfile.open(fileobj=bad, mode="w") as tar:
        info = tarfile.TarInfo("../up.txt")
        tar.addfile(info, io.BytesIO(b""))
    proc = imod("cp", "-", "t:/tmp", input=bad.getvalue(), check=False)
    assert proc.returncode == 125 and b"outside" in proc.stderr


def test_missing_source_is_a_clear_error(imod, busybox_image, tmp_path: Path):
    imod("create", "--name", "m", busybox_image, "true")
    proc = imod("cp", "m:/nope", str(tmp_path), check=False)
    assert proc.returncode == 125 and b"/nope" in proc.stderr
