"""The layer store on the real kernel: unpacking, whiteouts through overlay and vfs, safety,
digests, concurrency, kill -9, container mounts and removal."""

from __future__ import annotations

import gzip
import io
import multiprocessing
import os
import shutil
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from intermodal.errors import DigestMismatch, StoreCorrupted, UnsafePath
from intermodal.images import mediatypes as mt
from intermodal.images.blobs import BlobStore
from intermodal.images.manifest import Descriptor
from intermodal.paths import EnginePaths
from intermodal.storage.layers import LayerStore, chain_id, chain_ids
from tests.support.layertar import diff_id, directory, file, hardlink, opaque, symlink, tar_bytes, whiteout

pytestmark = pytest.mark.requires("root")

DRIVERS = [pytest.param("overlay", marks=pytest.mark.requires("overlay")), "vfs"]


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("IMOD_STORAGE_DRIVER", request.param)
    return request.param


@pytest.fixture
def store(engine_root: Path) -> LayerStore:
    paths = EnginePaths.resolve(engine_root)
    return LayerStore(paths, BlobStore(paths.blobs, paths.tmp))


@pytest.fixture
def mounts(store: LayerStore) -> Iterator[list[Path]]:
    """Container dirs mounted by a test; unmounted afterwards, whatever happened."""
    mounted: list[Path] = []
    try:
        yield mounted
    finally:
        for container_dir in mounted:
            store.unmount(container_dir)


def _blob(store: LayerStore, data: bytes, compression: str = "gzip") -> Descriptor:
    if compression == "gzip":
        packed, media_type = gzip.compress(data, mtime=0), mt.OCI_LAYER_GZIP
    elif compression == "zstd":
        import zstandard

        packed, media_type = zstandard.ZstdCompressor().compress(data), mt.OCI_LAYER_ZSTD
    else:
        packed, media_type = data, mt.OCI_LAYER
    return Descriptor(media_type, store.blobs.put(packed), len(packed))


def _image(store: LayerStore, *tars: bytes) -> tuple[list[Descriptor], list[str]]:
    return [_blob(store, t) for t in tars], [diff_id(t) for t in tars]


def _leftovers(store: LayerStore) -> list[str]:
    """Anything in the layer directories or tmp/ that is not a complete layer."""
    found = []
    tmp = store.paths.tmp
    found += [p.name for p in tmp.iterdir()] if tmp.is_dir() else []
    for name in ("overlay", "vfs"):
        d = store.paths.layers / name
        found += [p.name for p in d.iterdir() if not (p / "layer.json").is_file()] if d.is_dir() else []
    return found


BASE = tar_bytes(directory("etc"), file("etc/keep", b"keep"), file("etc/gone", b"gone"), directory("var/cache"),
                 file("var/cache/old1", b"1"), directory("var/cache/sub"), file("var/cache/sub/old2", b"2"),
                 directory("opt/tree"), file("opt/tree/x", b"x"), symlink("bin", "usr/bin"))
TOP = tar_bytes(whiteout("etc/gone"), whiteout("opt/tree"), directory("var/cache"), opaque("var/cache"),
                file("var/cache/new", b"new"), file("etc/added", b"added"))
EXPECTED = {"bin", "etc", "etc/keep", "etc/added", "opt", "var", "var/cache", "var/cache/new"}


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# -- unpacking -----------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_unpack_a_layer(store: LayerStore, driver: str, compression: str) -> None:
    data = tar_bytes(directory("app", mode=0o750, uid=1000), file("app/run", b"#!/bin/sh\n", mode=0o755))
    layer = store.ensure_layer(_blob(store, data, compression), diff_id(data), None)
    assert layer is not None
    assert layer.diff_id == layer.chain_id == diff_id(data)
    assert layer.size == len(b"#!/bin/sh\n")
    assert (layer.path / "app/run").read_bytes() == b"#!/bin/sh\n"
    assert stat.S_IMODE((layer.path / "app").stat().st_mode) == 0o750
    assert (layer.path / "app").stat().st_uid == 1000
    assert store.unpacked == [layer.chain_id]
    assert layer.path.parent.parent.name == driver
    # unpacked once: a second store finds it ready
    again = LayerStore(store.paths, store.blobs)
    assert again.ensure_layer(_blob(store, data, compression), diff_id(data), None) == layer
    assert again.unpacked == []
    assert _leftovers(store) == []


def test_an_incomplete_layer_directory_is_replaced(store: LayerStore, driver: str) -> None:
    data = tar_bytes(file("a", b"real"))
    (store.paths.layers / driver / diff_id(data).split(":")[1] / "diff").mkdir(parents=True)  # no layer.json
    layer = store.ensure_layer(_blob(store, data), diff_id(data), None)
    assert layer is not None and (layer.path / "a").read_bytes() == b"real"


def test_ensure_returns_layers_bottom_first_with_chain_ids(store: LayerStore, driver: str) -> None:
    descriptors, diff_ids = _image(store, BASE, TOP)
    layers = store.ensure(descriptors, diff_ids)
    assert [layer.diff_id for layer in layers] == diff_ids
    assert [layer.chain_id for layer in layers] == chain_ids(diff_ids)
    assert layers[1].chain_id == chain_id(diff_ids[0], diff_ids[1])
    assert layers[1].parent == layers[0].chain_id


def test_diff_id_mismatch_keeps_nothing(store: LayerStore, driver: str) -> None:
    data = tar_bytes(file("a", b"content"))
    wrong = diff_id(b"something else")
    with pytest.raises(DigestMismatch) as info:
        store.ensure_layer(_blob(store, data), wrong, None)
    assert info.value.expected == wrong and info.value.actual == diff_id(data)
    assert store.get(wrong) is None and store.get(diff_id(data)) is None
    assert _leftovers(store) == []


@pytest.mark.parametrize("bad", [
    tar_bytes(file("../x", b"1")),
    tar_bytes(file("/abs", b"1")),
    tar_bytes(symlink("esc", "/"), file("esc/tmp/evil", b"1")),
    tar_bytes(file("a", b"1"), symlink("esc", ".."), file("esc/evil", b"1")),
    tar_bytes(hardlink("link", "../../../../../../etc/passwd")),
    tar_bytes(hardlink("link", "/etc/passwd")),
    tar_bytes(symlink("etc", "/etc"), hardlink("link", "etc/passwd")),
], ids=["dotdot", "absolute", "symlink-then-write", "relative-symlink-then-write", "hardlink-dotdot",
        "hardlink-absolute", "hardlink-through-symlink"])
def test_unsafe_layer_is_refused_and_leaves_nothing(store: LayerStore, driver: str, bad: bytes) -> None:
    with pytest.raises(UnsafePath, match="refused"):
        store.ensure_layer(_blob(store, bad), diff_id(bad), None)
    assert store.get(diff_id(bad)) is None
    assert _leftovers(store) == []
    assert not Path("/tmp/evil").exists()
    assert os.stat("/etc/passwd").st_nlink == 1


def test_create_from_tar_stores_a_gzip_blob_and_the_layer(store: LayerStore, driver: str) -> None:
    data = tar_bytes(file("a", os.urandom(200_000)), file("b", b"\0" * 100_000))
    descriptor, digest = store.create_from_tar(io.BytesIO(data))
    assert digest == diff_id(data)
    assert descriptor.media_type == mt.OCI_LAYER_GZIP
    assert gzip.decompress(store.blobs.read(descriptor.digest)) == data
    assert store.blobs.size(descriptor.digest) == descriptor.size
    layer = store.get(digest)
    assert layer is not None and layer.size == 300_000
    # on top of a parent: the chain id follows, and vfs copies the parent
    top = tar_bytes(file("c", b"c"))
    _, top_id = store.create_from_tar(io.BytesIO(top), parent_chain_id=digest)
    stacked = store.get(chain_id(digest, top_id))
    assert stacked is not None
    assert ((stacked.path / "a").exists()) == (driver == "vfs")
    assert _leftovers(store) == []


# -- whiteouts through a real root filesystem ----------------------------------------


def test_whiteouts_and_opaque_dirs_through_the_container_rootfs(store: LayerStore, driver: str, mounts: list[Path],
                                                                tmp_path: Path) -> None:
    descriptors, diff_ids = _image(store, BASE, TOP)
    store.ensure(descriptors, diff_ids)
    container = tmp_path / "container"
    mounts.append(container)
    rootfs = store.mount(diff_ids, container)
    assert _tree(rootfs) == EXPECTED
    assert (rootfs / "etc/keep").read_bytes() == b"keep"
    assert os.readlink(rootfs / "bin") == "usr/bin"
    if driver == "overlay":
        assert os.path.ismount(rootfs)
        assert store.lower_dirs(diff_ids) == [layer.path for layer in reversed(store.layers(diff_ids))]
    else:
        assert store.lower_dirs(diff_ids) == [store.layers(diff_ids)[-1].path]


@pytest.mark.requires("overlay")
def test_overlay_mount_writes_go_to_upper(store: LayerStore, mounts: list[Path], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMOD_STORAGE_DRIVER", "overlay")
    descriptors, diff_ids = _image(store, BASE)
    (layer,) = store.ensure(descriptors, diff_ids)
    container = tmp_path / "c1"
    mounts.append(container)
    merged = store.mount(diff_ids, container)
    assert store.mount(diff_ids, container) == merged  # idempotent
    (merged / "written").write_bytes(b"mine")
    (merged / "etc/keep").write_bytes(b"changed")
    os.unlink(merged / "etc/gone")
    assert (container / "upper/written").read_bytes() == b"mine"
    assert (container / "upper/etc/keep").read_bytes() == b"changed"
    assert stat.S_ISCHR(os.lstat(container / "upper/etc/gone").st_mode)  # overlay's own whiteout
    assert (layer.path / "etc/keep").read_bytes() == b"keep"  # the layer is untouched
    assert (layer.path / "etc/gone").exists() and not (layer.path / "written").exists()
    store.unmount(container)
    assert not os.path.ismount(merged)
    store.unmount(container)  # unmounting twice is fine


@pytest.mark.requires("overlay")
def test_many_layers_exceeding_a_page_of_mount_options(store: LayerStore, mounts: list[Path], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMOD_STORAGE_DRIVER", "overlay")
    tars = [tar_bytes(file(f"f{i}", str(i).encode()), file("top", str(i).encode())) for i in range(40)]
    descriptors, diff_ids = _image(store, *tars)
    store.ensure(descriptors, diff_ids)
    assert len(":".join(str(p) for p in store.lower_dirs(diff_ids))) > os.sysconf("SC_PAGE_SIZE")
    container = tmp_path / "deep"
    mounts.append(container)
    merged = store.mount(diff_ids, container)
    assert (merged / "f0").read_bytes() == b"0" and (merged / "f39").read_bytes() == b"39"
    assert (merged / "top").read_bytes() == b"39"  # the topmost layer wins


def test_vfs_mount_is_a_private_copy(store: LayerStore, mounts: list[Path], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMOD_STORAGE_DRIVER", "vfs")
    descriptors, diff_ids = _image(store, BASE)
    (layer,) = store.ensure(descriptors, diff_ids)
    container = tmp_path / "c2"
    mounts.append(container)
    rootfs = store.mount(diff_ids, container)
    (rootfs / "etc/keep").write_bytes(b"changed")
    assert (layer.path / "etc/keep").read_bytes() == b"keep"
    assert store.mount(diff_ids, container) == rootfs and (rootfs / "etc/keep").read_bytes() == b"changed"


def test_mount_with_descriptors_unpacks_missing_layers(store: LayerStore, driver: str, mounts: list[Path],
                                                       tmp_path: Path) -> None:
    descriptors, diff_ids = _image(store, BASE, TOP)
    container = tmp_path / "c4"
    with pytest.raises(StoreCorrupted, match="pull or load the image again"):
        store.mount(diff_ids, container)
    mounts.append(container)
    rootfs = store.mount(diff_ids, container, descriptors)
    assert _tree(rootfs) == EXPECTED


# -- removal -------------------------------------------------------------------------


def test_remove_unused_keeps_used_and_mounted_layers(store: LayerStore, driver: str, mounts: list[Path],
                                                     tmp_path: Path) -> None:
    other = tar_bytes(file("other", b"o"))
    descriptors, diff_ids = _image(store, BASE, TOP)
    store.ensure(descriptors, diff_ids)
    store.ensure([_blob(store, other)], [diff_id(other)])
    removed = store.remove_unused({diff_ids[0]})
    assert set(removed) == {chain_ids(diff_ids)[1], diff_id(other)}
    assert store.get(diff_ids[0]) is not None and store.get(diff_id(other)) is None
    # a mounted layer stays even when no image keeps it
    store.ensure([_blob(store, other)], [diff_id(other)])
    container = tmp_path / "c3"
    mounts.append(container)
    store.mount([diff_id(other)], container)
    assert store.remove_unused(set()) == [diff_ids[0]]
    assert store.get(diff_id(other)) is not None
    store.unmount(container)
    assert store.remove_unused(set()) == [diff_id(other)]
    assert _leftovers(store) == []


def test_a_mount_record_of_a_removed_container_does_not_pin_layers(store: LayerStore, driver: str,
                                                                     tmp_path: Path) -> None:
    descriptors, diff_ids = _image(store, BASE)
    store.ensure(descriptors, diff_ids)
    container = tmp_path / "gone"
    try:
        store.mount(diff_ids, container)
        assert store.in_use() == {diff_ids[0]}
    finally:
        store.driver.unmount(container)  # unmounted behind the store's back, record left
    shutil.rmtree(container)
    assert store.in_use() == set()
    assert store.remove_unused(set()) == [diff_ids[0]]


def test_remove_unused_with_exact_image_chains(store: LayerStore, driver: str) -> None:
    descriptors, diff_ids = _image(store, BASE, TOP)
    store.ensure(descriptors, diff_ids)
    store.ensure(descriptors[1:], diff_ids[1:])  # TOP alone is another chain
    removed = store.remove_unused(set(diff_ids), images=[diff_ids])
    assert removed == [diff_ids[1]]


# -- concurrency and crashes ---------------------------------------------------------


def _ensure_in_child(root: str, descriptor: Descriptor, digest: str, start: object, results: object) -> None:
    paths = EnginePaths.resolve(root)
    store = LayerStore(paths, BlobStore(paths.blobs, paths.tmp))
    start.wait(10)  # type: ignore[attr-defined]
    layer = store.ensure_layer(descriptor, digest, None)
    results.put((os.getpid(), store.unpacked, str(layer.path) if layer else None))  # type: ignore[attr-defined]


def test_two_processes_unpack_a_layer_once(store: LayerStore, driver: str) -> None:
    data = tar_bytes(*(file(f"d/f{i}", os.urandom(50_000)) for i in range(100)))
    descriptor = _blob(store, data)
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_ensure_in_child, args=(str(store.paths.root), descriptor, diff_id(data), start,
                                                        results)) for _ in range(2)]
    try:
        for p in procs:
            p.start()
        got = [results.get(timeout=60) for _ in procs]
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
                p.join()
    assert [p.exitcode for p in procs] == [0, 0]
    unpacked = [u for _, u, _ in got]
    assert sorted(len(u) for u in unpacked) == [0, 1]  # exactly one of them unpacked it
    assert got[0][2] == got[1][2] and Path(got[0][2], "d/f99").is_file()
    assert _leftovers(store) == []


def _ensure_and_block(root: str, descriptor: Descriptor, digest: str) -> None:
    paths = EnginePaths.resolve(root)
    LayerStore(paths, BlobStore(paths.blobs, paths.tmp)).ensure_layer(descriptor, digest, None)


def test_kill_9_while_unpacking_leaves_a_store_the_next_ensure_completes(store: LayerStore, driver: str) -> None:
    data = tar_bytes(file("first", os.urandom(4 << 20)), file("second", os.urandom(4 << 20)))
    descriptor = _blob(store, data)
    packed = store.blobs.read(descriptor.digest)
    blob_path = store.blobs.path(descriptor.digest)
    # The blob is swapped for a FIFO so the child blocks half-way, at a point we choose.
    os.unlink(blob_path)
    os.mkfifo(blob_path)
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_ensure_and_block, args=(str(store.paths.root), descriptor, diff_id(data)))
    child.start()
    try:
        with open(blob_path, "wb") as fifo:
            fifo.write(packed[: len(packed) // 2])
            fifo.flush()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not list(store.paths.tmp.glob("layer-*/diff/first")):
                time.sleep(0.02)
            assert list(store.paths.tmp.glob("layer-*/diff/first")), "the child never started unpacking"
            os.kill(child.pid, signal.SIGKILL)
            child.join(30)
    except BrokenPipeError:
        pass
    finally:
        if child.is_alive():
            child.kill()
            child.join()
    assert child.exitcode == -signal.SIGKILL
    assert store.get(diff_id(data)) is None  # nothing half-done is visible
    os.unlink(blob_path)
    store.blobs.put(packed)
    layer = store.ensure_layer(descriptor, diff_id(data), None)
    assert layer is not None and (layer.path / "second").stat().st_size == 4 << 20
    assert _leftovers(store) == []  # the killed child's work dir is gone


@pytest.mark.requires("overlay")
def test_remove_unused_cleans_a_probe_left_mounted_by_a_killed_command(store: LayerStore) -> None:
    from intermodal.storage.overlay import mount_overlay, unmount

    child = multiprocessing.get_context("fork").Process(target=os._exit, args=(0,))
    child.start()
    child.join()  # its pid is now free: a command that died while probing
    probe = store.paths.layers / f"probe-{child.pid}-0000"
    for d in ("l1", "upper", "work", "merged"):
        (probe / d).mkdir(parents=True)
    mount_overlay([probe / "l1"], probe / "upper", probe / "work", probe / "merged")
    try:
        store.remove_unused(set())
        assert not os.path.ismount(probe / "merged")
        assert not probe.exists()
    finally:
        unmount(probe / "merged")


@pytest.mark.requires("overlay")
def test_an_overlay_mount_loads_no_ctypes_and_a_failed_one_says_what_to_check(tmp_path: Path) -> None:
    import subprocess
    import sys

    for d in ("lower", "upper", "work", "merged"):
        (tmp_path / d).mkdir()
    (tmp_path / "lower" / "seen").write_text("from the layer")
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from intermodal.errors import KernelError\n"
        "from intermodal.storage.overlay import mount_overlay, unmount\n"
        f"t = Path({str(tmp_path)!r})\n"
        "mount_overlay([t / 'lower'], t / 'upper', t / 'work', t / 'merged')\n"
        "seen = (t / 'merged' / 'seen').read_text()\n"
        "unmount(t / 'merged')\n"
        "try:\n"
        "    mount_overlay([t / 'missing'], t / 'upper', t / 'work', t / 'merged')\n"
        "except KernelError as err:\n"
        "    print(err)\n"
        "print(seen, 'ctypes' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    failed, mounted = out.stdout.strip().splitlines()
    assert failed.startswith(f"mount overlay on {tmp_path / 'merged'}: No such file or directory; check that")
    assert mounted == "from the layer False"
    assert not os.path.ismount(tmp_path / "merged")


# -- against a peer ------------------------------------------------------------------


def _describe(root: Path) -> dict[str, tuple]:
    """Every entry's type, mode, owner, link target and content digest."""
    import hashlib

    out = {}
    for path in sorted(root.rglob("*")):
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            detail: object = os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            detail = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            detail = None
        out[str(path.relative_to(root))] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                                            detail)
    return out


@pytest.mark.requires("umoci", "busybox")
def test_rootfs_matches_what_umoci_unpacks(store: LayerStore, driver: str, mounts: list[Path], tmp_path: Path,
                                           busybox_tar: Path) -> None:
    import json
    import subprocess

    extra = tar_bytes(directory("home/user", uid=1000, gid=1000, mode=0o700), file("home/user/f", b"u", uid=1000),
                      file("sbin/tool", b"#!/bin/sh\n", mode=0o4755), hardlink("sbin/tool2", "sbin/tool"))
    tars = [busybox_tar.read_bytes(), BASE, TOP, extra]
    descriptors, diff_ids = _image(store, *tars)
    store.ensure(descriptors, diff_ids)
    # and a layer written by create_from_tar: a multi-member gzip blob
    big = tar_bytes(file("data/random", os.urandom(9 << 20)))
    made, made_id = store.create_from_tar(io.BytesIO(big), parent_chain_id=chain_ids(diff_ids)[-1])
    descriptors.append(made)
    diff_ids.append(made_id)
    # the same image as an OCI layout, for umoci
    layout = tmp_path / "layout"
    (layout / "blobs/sha256").mkdir(parents=True)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                           "config": {"mediaType": mt.OCI_CONFIG, "digest": store.blobs.put(config),
                                      "size": len(config)},
                           "layers": [d.to_json() for d in descriptors]}).encode()
    manifest_digest = store.blobs.put(manifest)
    for digest in [d.digest for d in descriptors] + [manifest_digest, json.loads(manifest)["config"]["digest"]]:
        (layout / "blobs/sha256" / digest.split(":")[1]).write_bytes(store.blobs.read(digest))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": mt.OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest),
         "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))
    subprocess.run(["umoci", "raw", "unpack", "--image", f"{layout}:latest", str(tmp_path / "umoci")], check=True,
                   capture_output=True)
    container = tmp_path / "ours"
    mounts.append(container)
    ours = _describe(store.mount(diff_ids, container))
    theirs = _describe(tmp_path / "umoci")
    assert ours.keys() == theirs.keys()
    differing = {k: (ours[k], theirs[k]) for k in ours if ours[k][:4] != theirs[k][:4] or ours[k][4] != theirs[k][4]}
    assert differing == {}
    assert "home/user/f" in ours and "etc/gone" not in ours
