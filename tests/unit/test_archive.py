"""Image archives without root or peers: names, links, staging, determinism, round trips in memory."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from intermodal.engine import Engine
from intermodal.errors import DigestMismatch, ImageNotFound, InvalidArchive, UnsafePath
from intermodal.images import archive, docker_archive, oci_layout
from intermodal.images import mediatypes as mt
from intermodal.images.archive_source import TarSource, link_target, member_name
from intermodal.images.archive_staging import BlobStager
from intermodal.images.digest import sha256_digest
from intermodal.images.manifest import canonical_json
from intermodal.images.reference import parse

# -- names and links -------------------------------------------------------------


@pytest.mark.parametrize(("name", "normal"), [
    ("manifest.json", "manifest.json"),
    ("./index.json", "index.json"),
    ("blobs//sha256/abc", "blobs/sha256/abc"),
    ("abc/layer.tar", "abc/layer.tar"),
    ("dir/", "dir"),
])
def test_member_name_normalises(name: str, normal: str) -> None:
    assert member_name(name) == normal


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "a/../../b", "a/..", "", "x\x00y"])
def test_member_name_refuses_escapes(name: str) -> None:
    with pytest.raises(UnsafePath):
        member_name(name)


@pytest.mark.parametrize(("member", "target", "symbolic", "resolved"), [
    ("abc/layer.tar", "../def.tar", True, "def.tar"),
    ("abc/layer.tar", "other.tar", True, "abc/other.tar"),
    ("abc/layer.tar", "def.tar", False, "def.tar"),  # hard links name a member from the root
])
def test_link_target(member: str, target: str, symbolic: bool, resolved: str) -> None:
    assert link_target(member, target, symbolic=symbolic) == resolved


@pytest.mark.parametrize(("member", "target"), [
    ("layer.tar", "../../etc/shadow"),
    ("abc/layer.tar", "../../x"),
    ("abc/layer.tar", "/etc/passwd"),
])
def test_link_target_refuses_escapes(member: str, target: str) -> None:
    with pytest.raises(UnsafePath):
        link_target(member, target, symbolic=True)


@pytest.mark.parametrize(("annotations", "names"), [
    ({"io.containerd.image.name": "docker.io/library/busybox:latest", "org.opencontainers.image.ref.name": "latest"},
     ["docker.io/library/busybox:latest"]),
    ({"org.opencontainers.image.ref.name": "quay.io/a/b:1"}, ["quay.io/a/b:1"]),
    ({"org.opencontainers.image.ref.name": "busybox:1.36"}, ["docker.io/library/busybox:1.36"]),
    ({"org.opencontainers.image.ref.name": "latest"}, []),  # a tag alone names no repository
    ({"io.containerd.image.name": "busybox"}, ["docker.io/library/busybox:latest"]),
    ({}, []),
])
def test_names_from_annotations(annotations: dict, names: list[str]) -> None:
    assert [str(r) for r in oci_layout.names_from_annotations(annotations, "test")] == names


def test_bad_name_annotation_is_refused() -> None:
    with pytest.raises(InvalidArchive, match="not a valid reference"):
        oci_layout.names_from_annotations({"io.containerd.image.name": "UPPER/Case"}, "test")


def test_chain_ids_follow_the_oci_spec() -> None:
    a, b = sha256_digest(b"a"), sha256_digest(b"b")
    assert docker_archive.chain_ids([a, b]) == [a, sha256_digest(f"{a} {b}".encode())]
    assert docker_archive.chain_ids([]) == []


# -- tar sources -------------------------------------------------------------------


def tar_bytes(entries: list[tuple[str, bytes | str | None]]) -> bytes:
    """(name, data) regular files; (name, "->target") symlinks; (name, None) directories."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif isinstance(data, str):
                info.type = tarfile.SYMTYPE
                info.linkname = data.removeprefix("->")
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_tar_source_follows_links_inside_the_archive() -> None:
    src = TarSource(io.BytesIO(tar_bytes([("d.tar", b"layer"), ("abc/layer.tar", "->../d.tar")])), "t")
    assert src.open("abc/layer.tar").read() == b"layer"
    assert src.size("./abc/layer.tar") == 5
    assert not src.exists("missing")


@pytest.mark.parametrize("entries", [
    [("manifest.json", b"[]"), ("../evil", b"x")],
    [("/abs", b"x")],
    [("abc/layer.tar", "->../../etc/passwd")],
    [("abc/layer.tar", "->/etc/passwd")],
])
def test_tar_source_refuses_unsafe_archives(entries: list) -> None:
    with pytest.raises(UnsafePath):
        TarSource(io.BytesIO(tar_bytes(entries)), "t")


def test_not_a_tar_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidArchive, match="not a readable tar"):
        TarSource(io.BytesIO(b"hello" * 200), "t")


# -- staging -----------------------------------------------------------------------


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(root=tmp_path / "root")


def test_stager_commits_only_verified_blobs(engine: Engine) -> None:
    blobs = engine.images.store.blobs
    stager = BlobStager(blobs)
    good = sha256_digest(b"good")
    stager.stage(good, 4, io.BytesIO(b"good"), "good blob")
    assert not blobs.has(good)  # staged, not yet in the store
    with pytest.raises(DigestMismatch, match="bad blob"):
        stager.stage(sha256_digest(b"other"), 4, io.BytesIO(b"evil"), "bad blob")
    stager.abort()
    assert not blobs.has(good)
    assert list(blobs.digests()) == []
    assert list(engine.paths.tmp.iterdir()) == []
    stager.stage(good, 4, io.BytesIO(b"good"), "good blob")
    stager.commit()
    assert blobs.read(good) == b"good"


def test_stager_refuses_a_short_blob(engine: Engine) -> None:
    stager = BlobStager(engine.images.store.blobs)
    with pytest.raises(InvalidArchive, match="announced"):
        stager.stage(sha256_digest(b"abc"), 4, io.BytesIO(b"abc"), "short blob")
    assert list(engine.paths.tmp.iterdir()) == []


# -- save and read back, without unpacking -------------------------------------------


def layer_tar(content: bytes) -> bytes:
    return tar_bytes([("file", content)])


def add_image(engine: Engine, content: bytes, *tags: str):
    """An image of one gzip layer, recorded without unpacking (the layer store is not under test)."""
    blobs = engine.images.store.blobs
    plain = layer_tar(content)
    compressed = gzip.compress(plain, mtime=0)
    config = canonical_json({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                             "rootfs": {"type": "layers", "diff_ids": [sha256_digest(plain)]}})
    manifest = canonical_json({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": blobs.put(config), "size": len(config)},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": blobs.put(compressed), "size": len(compressed)}],
    })
    return engine.images.store.add(manifest, mt.OCI_MANIFEST, tags=[parse(t) for t in tags], unpack=False)


def save_bytes(engine: Engine, names: list[str], fmt: str) -> bytes:
    out = io.BytesIO()
    archive.save(engine.images, names, out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_save_is_deterministic(engine: Engine, fmt: str) -> None:
    add_image(engine, b"one", "a:1")
    add_image(engine, b"two", "b:2")
    first = save_bytes(engine, ["a:1", "b:2"], fmt)
    assert first == save_bytes(engine, ["a:1", "b:2"], fmt)
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        assert {m.mtime for m in tar} == {0}
        assert {(m.uid, m.gid) for m in tar} == {(0, 0)}


def test_docker_archive_layers_are_the_diff_id_tars(engine: Engine) -> None:
    record = add_image(engine, b"payload", "a:1")
    data = save_bytes(engine, ["a"], "docker-archive")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        assert manifest[0]["RepoTags"] == ["docker.io/library/a:1"]
        layer = tar.extractfile(manifest[0]["Layers"][0]).read()
        config = tar.extractfile(manifest[0]["Config"]).read()
    assert sha256_digest(layer) == record.diff_ids[0]
    assert sha256_digest(config) == record.id


def test_select_follows_docker_save(engine: Engine) -> None:
    one = add_image(engine, b"one", "a:1", "a:2", "b:1")
    two = add_image(engine, b"two", "a:3")
    chosen = {r.id: [str(t) for t in tags] for r, tags in archive.select(engine.images, ["a"])}
    assert chosen == {one.id: ["docker.io/library/a:1", "docker.io/library/a:2"], two.id: ["docker.io/library/a:3"]}
    chosen = {r.id: [str(t) for t in tags] for r, tags in archive.select(engine.images, ["b:1", one.short_id])}
    assert chosen == {one.id: ["docker.io/library/b:1"]}
    with pytest.raises(ImageNotFound):
        archive.select(engine.images, ["nothere"])


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_saved_archive_reads_back(engine: Engine, tmp_path: Path, fmt: str) -> None:
    record = add_image(engine, b"round trip", "a:1")
    data = save_bytes(engine, ["a:1"], fmt)
    other = Engine(root=tmp_path / "other")
    stager = BlobStager(other.images.store.blobs)
    pending = archive.read(TarSource(io.BytesIO(data), "saved"), stager)
    stager.commit()
    assert [str(t) for t in pending[0].tags] == ["docker.io/library/a:1"]
    manifest = json.loads(pending[0].manifest_bytes)
    assert manifest["config"]["digest"] == record.id
    if fmt == "oci-archive":
        assert sha256_digest(pending[0].manifest_bytes) == record.manifest  # kept byte for byte
    else:
        assert [layer["digest"] for layer in manifest["layers"]] == list(record.diff_ids)
    for digest in [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]:
        assert other.images.store.blobs.has(digest)


def test_corrupted_layer_is_refused_and_nothing_staged(engine: Engine, tmp_path: Path) -> None:
    add_image(engine, b"will be damaged", "a:1")
    data = bytearray(save_bytes(engine, ["a:1"], "docker-archive"))
    at = bytes(data).index(b"will be damaged")
    data[at] ^= 0x20
    other = Engine(root=tmp_path / "other")
    stager = BlobStager(other.images.store.blobs)
    with pytest.raises(DigestMismatch, match="layer"):
        archive.read(TarSource(io.BytesIO(bytes(data)), "damaged"), stager)
    stager.abort()
    assert list(other.images.store.blobs.digests()) == []


def test_archive_without_index_or_manifest_is_refused() -> None:
    with pytest.raises(InvalidArchive, match=r"neither manifest\.json"):
        archive.read(TarSource(io.BytesIO(tar_bytes([("hello", b"x")])), "t"), None)


@pytest.mark.parametrize(("layer_path", "compress"), [
    ("blobs/sha256/{diff}", False),  # Docker 25: an OCI layout with manifest.json beside it
    ("{diff}/layer.tar", True),  # docker load accepts compressed layer tars
])
def test_docker_archive_layouts_read(engine: Engine, layer_path: str, compress: bool) -> None:
    plain = layer_tar(b"docker 25")
    diff_id = sha256_digest(plain)
    config = canonical_json({"os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}})
    config_path = "blobs/sha256/" + sha256_digest(config).split(":")[1]
    path = layer_path.format(diff=diff_id.split(":")[1])
    entry = {"Config": config_path, "RepoTags": ["app:1"], "Layers": [path]}
    data = tar_bytes([
        (config_path, config),
        (path, gzip.compress(plain) if compress else plain),
        ("manifest.json", json.dumps([entry]).encode()),
    ])
    stager = BlobStager(engine.images.store.blobs)
    [pending] = archive.read(TarSource(io.BytesIO(data), "docker"), stager)
    stager.commit()
    manifest = json.loads(pending.manifest_bytes)
    assert pending.image_id == sha256_digest(config)
    assert manifest["layers"] == [{"mediaType": mt.OCI_LAYER, "digest": diff_id, "size": len(plain)}]
    assert engine.images.store.blobs.read(diff_id) == plain  # stored as the diff_id tar
    assert [str(t) for t in pending.tags] == ["docker.io/library/app:1"]


def test_docker_archive_config_must_match_its_name(engine: Engine) -> None:
    config = canonical_json({"rootfs": {"type": "layers", "diff_ids": []}})
    name = "0" * 64 + ".json"
    data = tar_bytes([(name, config), ("manifest.json", json.dumps([{"Config": name, "Layers": []}]).encode())])
    with pytest.raises(DigestMismatch):
        archive.read(TarSource(io.BytesIO(data), "docker"), BlobStager(engine.images.store.blobs))


def test_known_image_is_not_read_again(engine: Engine) -> None:
    record = add_image(engine, b"present", "a:1")
    data = save_bytes(engine, ["a:1"], "docker-archive")
    stager = BlobStager(engine.images.store.blobs, frozenset({record.id}))
    [pending] = archive.read(TarSource(io.BytesIO(data), "again"), stager)
    assert pending.known and pending.image_id == record.id
    assert not engine.images.store.blobs.has(record.diff_ids[0])  # the uncompressed layer was not staged


def test_save_of_a_missing_image_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    add_image(engine, b"present", "a:1")
    out = tmp_path / "out.tar"
    with pytest.raises(ImageNotFound):
        archive.save(engine.images, ["a:1", "missing:1"], out)
    assert list(tmp_path.glob("*.tar*")) == [] and not list(tmp_path.glob(".out.tar*"))


def test_oci_layout_loads_this_platform_only(engine: Engine, tmp_path: Path) -> None:
    record = add_image(engine, b"amd64 image", "a:1")
    files = tar_members(save_bytes(engine, ["a:1"], "oci-archive"))
    index = json.loads(files["index.json"])
    missing = {"mediaType": mt.OCI_MANIFEST, "digest": sha256_digest(b"not in the archive"), "size": 10}
    index["manifests"] += [{**missing, "platform": {"os": "linux", "architecture": "arm64"}},
                           {**missing, "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}]
    files["index.json"] = json.dumps(index).encode()
    stager = BlobStager(Engine(root=tmp_path / "other").images.store.blobs)
    pending = oci_layout.read(TarSource(io.BytesIO(tar_bytes(list(files.items()))), "multi"), stager,
                              {"os": "linux", "architecture": "amd64"})
    assert [p.image_id for p in pending] == [record.id]


def test_one_image_listed_twice_is_loaded_once(engine: Engine, tmp_path: Path) -> None:
    record = add_image(engine, b"twice", "a:1", "b:2")
    files = tar_members(save_bytes(engine, ["a:1", "b:2"], "docker-archive"))
    [entry] = json.loads(files["manifest.json"])
    split = [{**entry, "RepoTags": [tag]} for tag in entry["RepoTags"]]
    files["manifest.json"] = json.dumps(split).encode()
    stager = BlobStager(Engine(root=tmp_path / "other").images.store.blobs)
    [pending] = archive.read(TarSource(io.BytesIO(tar_bytes(list(files.items()))), "twice"), stager)
    assert pending.image_id == record.id
    assert [str(t) for t in pending.tags] == ["docker.io/library/a:1", "docker.io/library/b:2"]


def tar_members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}
