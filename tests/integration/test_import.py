"""`imod import`: a rootfs tar becomes a one-layer image, through the real CLI."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
from pathlib import Path

import pytest

from intermodal.errors import UnsafePath
from intermodal.images.manifest import host_platform
from tests.support.layertar import file, symlink, tar_bytes

pytestmark = pytest.mark.requires("root", "busybox")


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_imod_import_busybox_with_change(imod, engine, busybox_tar: Path) -> None:
    out = imod("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox:latest").stdout.decode().strip()
    assert out.startswith("sha256:") and len(out) == 71
    config = engine.images.config("busybox:latest")
    assert config["config"]["Cmd"] == ["sh"]
    assert config["rootfs"] == {"type": "layers", "diff_ids": [_sha(busybox_tar.read_bytes())]}
    assert config["architecture"] == host_platform()["architecture"] and config["os"] == "linux"
    assert config["history"][0]["comment"] == config["comment"] == "Imported from -"
    assert "created_by" not in config["history"][0]  # as Docker's import: CREATED BY stays empty
    record = engine.images.get("busybox:latest")
    assert record.id == out
    assert "docker.io/library/busybox:latest" in record.tags
    # the layer is unpacked: busybox is there, executable, with its applet links
    layer = engine.images.store.layers.layers(record.diff_ids)[0]
    assert layer.size > 100_000 and record.size == layer.size
    assert os.stat(layer.path / "bin/busybox").st_mode & stat.S_IXUSR
    assert os.readlink(layer.path / "bin/sh") == "busybox"
    assert stat.S_IMODE(os.stat(layer.path / "tmp").st_mode) == 0o1777
    # the manifest names a gzip layer blob whose content is the tar
    manifest = engine.images.store.manifest(record)
    blob = engine.images.store.blobs.read(manifest.layers[0].digest)
    assert gzip.decompress(blob) == busybox_tar.read_bytes()


def test_busybox_image_fixture(engine, busybox_image: str) -> None:
    assert engine.images.config(busybox_image)["config"] == {"Cmd": ["sh"]}


@pytest.mark.parametrize("kind", ["gzip", "zstd", "bzip2", "xz"])
def test_import_compressed_from_stdin(imod, engine, busybox_tar: Path, kind: str) -> None:
    import zstandard

    raw = busybox_tar.read_bytes()
    packed = {"gzip": gzip.compress, "zstd": zstandard.ZstdCompressor().compress, "bzip2": bz2.compress,
              "xz": lzma.compress}[kind](raw)
    image_id = imod("import", "-m", f"from {kind}", "-", f"local/{kind}:1", input=packed).stdout.decode().strip()
    config = engine.images.config(image_id)
    assert config["rootfs"]["diff_ids"] == [_sha(raw)]  # the diff_id is of the uncompressed tar
    assert config["history"][0]["comment"] == f"from {kind}"
    assert engine.images.exists(f"local/{kind}:1")


def test_import_file_object_without_tag(engine) -> None:
    data = tar_bytes(file("hello", b"hi\n"))
    record = engine.images.import_rootfs(io.BytesIO(data), None, changes=["ENV A=1", "WORKDIR /srv"])
    assert record.tags == ()
    assert engine.images.config(record.id)["config"] == {"Env": ["A=1"], "WorkingDir": "/srv"}


def test_bad_change_fails_before_storing_anything(imod, engine_root: Path, busybox_tar: Path) -> None:
    proc = imod("import", "-c", "RUN rm -rf /", str(busybox_tar), "x:1", check=False)
    assert proc.returncode != 0
    assert b"--change" in proc.stderr and b"not supported" in proc.stderr
    blobs = engine_root / "blobs"
    assert not blobs.exists() or not any(p.is_file() for p in blobs.rglob("*"))


def test_missing_file(imod, engine_root: Path) -> None:
    proc = imod("import", str(engine_root / "nope.tar"), check=False)
    assert proc.returncode == 125 and b"no such file" in proc.stderr


def test_unsafe_tar_leaves_nothing(engine, engine_root: Path) -> None:
    data = tar_bytes(file("ok", b"1"), symlink("esc", "/tmp"), file("esc/evil", b"2"))
    with pytest.raises(UnsafePath, match="'esc/evil'"):
        engine.images.import_rootfs(io.BytesIO(data), "bad:1")
    assert engine.images.list() == []
    blobs = engine_root / "blobs"
    assert not blobs.exists() or not [p for p in blobs.rglob("*") if p.is_file()]
    layers = engine_root / "layers" / "overlay"
    assert not layers.exists() or list(layers.iterdir()) == []
    assert not (engine_root / "tmp").exists() or list((engine_root / "tmp").iterdir()) == []
