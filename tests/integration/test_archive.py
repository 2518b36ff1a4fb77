"""`imod save` / `imod load` against the peers: skopeo and podman read what we write, and we read theirs."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pty
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from intermodal.engine import Engine
from intermodal.errors import DigestMismatch, UnsafePath
from intermodal.images.store import ImageRecord

pytestmark = pytest.mark.requires("root")


@pytest.fixture
def image(engine: Engine, busybox_image: str) -> ImageRecord:
    return engine.images.get(busybox_image)


@pytest.fixture
def other(tmp_path: Path) -> Engine:
    """A second, empty engine root: the other host of a round trip."""
    return Engine(root=tmp_path / "other")


def skopeo(*args: str) -> str:
    proc = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"skopeo {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}


def store_is_empty(engine: Engine) -> bool:
    paths = engine.paths
    blobs = list(engine.images.store.blobs.digests())
    tmp = list(paths.tmp.iterdir()) if paths.tmp.exists() else []
    return engine.images.list() == [] and blobs == [] and tmp == []


# -- what we write, read by the peers -------------------------------------------------


@pytest.mark.requires("skopeo")
def test_docker_archive_is_read_by_skopeo(engine: Engine, image, imod, tmp_path: Path) -> None:
    out = tmp_path / "busybox.tar"
    imod("save", "-o", str(out), "busybox")

    files = members(out)
    manifest = json.loads(files["manifest.json"])
    assert manifest[0]["RepoTags"] == ["docker.io/library/busybox:latest"]
    assert [sha256(files[p]) for p in manifest[0]["Layers"]] == list(image.diff_ids)  # layers are the diff_id tars
    assert sha256(skopeo("inspect", "--config", "--raw", f"docker-archive:{out}").encode()) == image.id

    skopeo("copy", "-q", f"docker-archive:{out}", f"oci:{tmp_path / 'layout'}:v1")
    copied = json.loads(skopeo("inspect", "--config", "--raw", f"oci:{tmp_path / 'layout'}:v1"))
    ours = engine.images.config(image)
    assert copied["rootfs"]["diff_ids"] == list(image.diff_ids)
    assert (copied["architecture"], copied["os"], copied["config"].get("Cmd")) == (
        ours["architecture"], ours["os"], ours["config"].get("Cmd"))


@pytest.mark.requires("skopeo")
def test_oci_archive_keeps_our_manifest_and_comes_back_through_skopeo(
    engine: Engine, image, imod, other: Engine, tmp_path: Path
) -> None:
    out = tmp_path / "busybox-oci.tar"
    imod("save", "--format", "oci-archive", "-o", str(out), "busybox:latest")

    index = json.loads(members(out)["index.json"])
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == "docker.io/library/busybox:latest"
    raw = skopeo("inspect", "--raw", f"oci-archive:{out}").encode()
    assert sha256(raw) == image.manifest  # our manifest, byte for byte

    back = tmp_path / "from-skopeo.tar"
    skopeo("copy", "-q", f"oci-archive:{out}", f"docker-archive:{back}:example.test/round/trip:1")
    loaded = other.images.load(back)
    assert [r.id for r in loaded] == [image.id]
    assert other.images.get("example.test/round/trip:1").id == image.id


@pytest.mark.requires("skopeo")
def test_oci_layout_written_by_skopeo_loads(engine: Engine, image, imod, other: Engine, tmp_path: Path) -> None:
    archive = tmp_path / "busybox.tar"
    imod("save", "-o", str(archive), "busybox")
    layout = tmp_path / "layout"
    skopeo("copy", "-q", f"docker-archive:{archive}", f"oci:{layout}:v1")  # skopeo gzips the layers itself

    proc = imod("--root", str(other.paths.root), "load", "-i", str(layout))

    loaded = other.images.list()
    assert len(loaded) == 1
    assert loaded[0].diff_ids == image.diff_ids
    # "v1" is only a tag, not a repository: untagged, as Docker loads it
    assert proc.stdout.decode() == f"Loaded image ID: {loaded[0].id}\n"


@pytest.mark.requires("podman")
def test_podman_and_we_read_each_other(image, imod, other: Engine, tmp_path: Path) -> None:
    out = tmp_path / "busybox.tar"
    imod("save", "-o", str(out), "busybox:latest")
    with podman_store(tmp_path) as podman:
        proc = podman("load", "-i", str(out))
        assert "docker.io/library/busybox:latest" in proc.stdout
        inspect = json.loads(podman("image", "inspect", "docker.io/library/busybox:latest").stdout)
        podman("rmi", "docker.io/library/busybox:latest")
        imod("save", "--format", "oci-archive", "-o", str(tmp_path / "oci.tar"), "busybox:latest")
        podman("load", "-i", str(tmp_path / "oci.tar"))
        again = json.loads(podman("image", "inspect", "docker.io/library/busybox:latest").stdout)
        podman("tag", "docker.io/library/busybox:latest", "example.test/podman:1")
        podman("save", "-o", str(tmp_path / "podman-docker.tar"), "example.test/podman:1")
        podman("save", "--format", "oci-archive", "-o", str(tmp_path / "podman-oci.tar"), "example.test/podman:1")
    assert "sha256:" + inspect[0]["Id"] == image.id
    assert inspect[0]["RootFS"]["Layers"] == list(image.diff_ids)
    assert again[0]["Id"] == inspect[0]["Id"]
    for name in ("podman-docker.tar", "podman-oci.tar"):
        [loaded] = other.images.load(tmp_path / name)
        assert (loaded.id, loaded.tags) == (image.id, ("example.test/podman:1",)), name


@pytest.fixture
def second_image(engine: Engine, tmp_path: Path) -> str:
    rootfs = tmp_path / "small.tar"
    with tarfile.open(rootfs, "w") as tar:
        data = b"a second image\n"
        info = tarfile.TarInfo("etc/motd")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    engine.images.import_rootfs(rootfs, "example.test/small:2")
    return "example.test/small:2"


@pytest.mark.requires("skopeo")
def test_several_images_in_one_archive(engine: Engine, image, second_image: str, imod, other: Engine,
                                       tmp_path: Path) -> None:
    out = tmp_path / "two.tar"
    imod("save", "-o", str(out), "busybox", second_image)
    small = engine.images.get(second_image)
    config = skopeo("inspect", "--config", "--raw", f"docker-archive:{out}:{second_image}").encode()
    assert sha256(config) == small.id

    proc = imod("--root", str(other.paths.root), "load", "-i", str(out))

    assert proc.stdout.decode().splitlines() == [
        "Loaded image: busybox:latest", "Loaded image: example.test/small:2"]
    assert {r.id for r in other.images.list()} == {image.id, small.id}


# -- loading: formats, compression, stdin -------------------------------------------------


def test_gzip_archive_loads_from_stdin(engine: Engine, image, imod, other: Engine, tmp_path: Path) -> None:
    data = imod("save", "busybox").stdout  # stdout is a pipe here, not a terminal
    proc = imod("--root", str(other.paths.root), "load", input=gzip.compress(data))
    assert proc.stdout.decode() == "Loaded image: busybox:latest\n"
    assert other.images.get("busybox").id == image.id
    assert store_tmp_is_clean(other)


def test_loading_a_present_image_only_adds_tags(engine: Engine, image, tmp_path: Path) -> None:
    engine.images.tag("busybox", "example.test/copy:7")
    out = tmp_path / "copy.tar"
    engine.images.save(["example.test/copy:7"], out)
    engine.images.tag("busybox", "example.test/other:1")
    engine.images.remove("example.test/copy:7")

    [loaded] = engine.images.load(out)

    assert loaded.tags == ("example.test/copy:7",)  # what this archive named, as docker reports it
    after = engine.images.get("example.test/copy:7")
    assert (after.id, after.manifest) == (image.id, image.manifest)  # the stored manifest is kept
    assert "docker.io/library/busybox:latest" in after.tags


def test_oci_dir_round_trip(engine: Engine, image, other: Engine, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    engine.images.save(["busybox"], layout, format="oci-dir")
    assert (layout / "oci-layout").is_file()
    loaded = other.images.load(layout)
    assert [(r.id, r.manifest, r.tags) for r in loaded] == [(image.id, image.manifest, image.tags)]


def test_save_refuses_a_terminal(image, engine_root: Path) -> None:
    exe = Path(sys.executable).parent / "imod"
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run([str(exe), "--root", str(engine_root), "save", "busybox"], stdout=terminal,
                              stderr=subprocess.PIPE, timeout=30)
    finally:
        os.close(terminal)
        os.close(controller)
    assert proc.returncode != 0
    assert b"refusing to write an image archive to a terminal" in proc.stderr


# -- loading: what is refused -------------------------------------------------------------


def test_corrupted_layer_is_refused_and_nothing_stored(engine: Engine, image, other: Engine, tmp_path: Path) -> None:
    out = tmp_path / "busybox.tar"
    engine.images.save(["busybox"], out)
    files = members(out)
    layer = json.loads(files["manifest.json"])[0]["Layers"][0]
    damaged = bytearray(files[layer])
    damaged[len(damaged) // 2] ^= 0xFF
    files[layer] = bytes(damaged)
    bad = tmp_path / "damaged.tar"
    write_tar(bad, files)

    with pytest.raises(DigestMismatch, match="layer"):
        other.images.load(bad)
    assert store_is_empty(other)


def test_member_escaping_the_archive_is_refused(engine: Engine, image, other: Engine, imod, tmp_path: Path) -> None:
    out = tmp_path / "busybox.tar"
    engine.images.save(["busybox"], out)
    files = members(out)
    files["../evil"] = b"outside\n"
    bad = tmp_path / "sub" / "evil.tar"
    bad.parent.mkdir()
    write_tar(bad, files)

    with pytest.raises(UnsafePath, match=r"\.\./evil"):
        other.images.load(bad)
    proc = imod("--root", str(other.paths.root), "load", "-i", str(bad), check=False)
    assert proc.returncode != 0 and b"outside the archive" in proc.stderr
    assert not (tmp_path / "evil").exists()
    assert store_is_empty(other)


# -- helpers --------------------------------------------------------------------------------


def store_tmp_is_clean(engine: Engine) -> bool:
    return not engine.paths.tmp.exists() or list(engine.paths.tmp.iterdir()) == []


def write_tar(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


class _Podman:
    def __init__(self, root: Path, run_root: Path) -> None:
        self.base = ["podman", "--root", str(root), "--runroot", str(run_root), "--storage-driver", "vfs"]

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"podman {' '.join(args)}: {proc.stderr}"
        return proc


class podman_store:
    """A throwaway podman store (vfs driver) under *tmp*, removed afterwards even on failure."""

    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "podman-root"
        self.run_root = Path("/nonexistent")

    def __enter__(self) -> _Podman:
        # podman refuses a run root longer than 50 characters; pytest's tmp paths are longer
        self.run_root = Path(tempfile.mkdtemp(prefix="imod-podman-"))
        return _Podman(self.root, self.run_root)

    def __exit__(self, *exc: object) -> None:
        mounts = Path("/proc/self/mountinfo").read_text()
        leaked = [line for line in mounts.splitlines() if str(self.root) in line or str(self.run_root) in line]
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.run_root, ignore_errors=True)
        assert not leaked, f"podman left mounts behind: {leaked}"
