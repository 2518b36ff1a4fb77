"""The image index: tags, lookups and removal, on blobs written by the test."""

import json
from pathlib import Path

import pytest

from intermodal.engine import Engine
from intermodal.errors import Conflict, ImageNotFound, InvalidArchive
from intermodal.images import mediatypes as mt
from intermodal.images.digest import sha256_digest
from intermodal.images.manifest import canonical_json
from intermodal.images.reference import parse


def make_image(engine: Engine, payload: bytes, *, layers: int = 1) -> tuple[bytes, str]:
    blobs = engine.images.store.blobs
    layer_descs, diff_ids = [], []
    for i in range(layers):
        data = payload + bytes([i])
        layer_descs.append({"mediaType": mt.OCI_LAYER, "digest": blobs.put(data), "size": len(data)})
        diff_ids.append(sha256_digest(data))
    config = canonical_json({"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                             "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {"Cmd": ["sh"]}})
    manifest = canonical_json({
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": blobs.put(config), "size": len(config)},
        "layers": layer_descs,
    })
    return manifest, sha256_digest(config)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return Engine(root=tmp_path / "root")


def add(engine: Engine, payload: bytes, *tags: str):
    manifest, _ = make_image(engine, payload)
    return engine.images.store.add(manifest, mt.OCI_MANIFEST, tags=[parse(t) for t in tags], unpack=False)


def test_add_and_resolve_by_every_name(engine: Engine) -> None:
    record = add(engine, b"one", "app:1")
    images = engine.images
    for name in ("app:1", "docker.io/library/app:1", record.id, record.id[7:], record.short_id, record.id[7:11]):
        assert images.get(name).id == record.id, name
    assert images.config(record)["config"]["Cmd"] == ["sh"]


def test_tag_moves_between_images(engine: Engine) -> None:
    first = add(engine, b"one", "app:latest")
    second = add(engine, b"two", "app:latest")
    assert engine.images.store.get(first.id).tags == ()
    assert engine.images.get("app").id == second.id


def test_rmi_untags_then_deletes(engine: Engine) -> None:
    record = add(engine, b"one", "app:1", "app:2")
    assert engine.images.remove("app:1") == [{"Untagged": "app:1"}]
    events = engine.images.remove("app:2")
    assert events == [{"Untagged": "app:2"}, {"Deleted": record.id}]
    with pytest.raises(ImageNotFound, match="imod pull"):
        engine.images.get(record.id)


def test_rmi_by_id_with_several_tags_needs_force(engine: Engine) -> None:
    record = add(engine, b"one", "app:1", "other:1")
    with pytest.raises(Conflict, match="several"):
        engine.images.remove(record.short_id)
    engine.images.remove(record.short_id, force=True)
    assert not engine.images.exists(record.id)


def test_ambiguous_prefix_is_refused(engine: Engine) -> None:
    records = [add(engine, bytes([i]) * 3, f"a{i}:1") for i in range(40)]
    firsts: dict[str, int] = {}
    for r in records:
        firsts[r.id[7]] = firsts.get(r.id[7], 0) + 1
    shared = next(c for c, n in firsts.items() if n > 1)
    with pytest.raises(Conflict, match="more digits"):
        engine.images.get(shared)


def test_prune_removes_dangling_and_unreferenced_blobs(engine: Engine) -> None:
    kept = add(engine, b"kept", "app:1")
    add(engine, b"old", "app:2")
    engine.images.tag("app:1", "app:2")  # the old image is now dangling
    orphan = engine.images.store.blobs.put(b"orphan blob")
    result = engine.images.prune()
    assert [e for e in result["ImagesDeleted"] if "Deleted" in e] != []
    blobs = set(engine.images.store.blobs.digests())
    assert orphan not in blobs
    assert kept.id in blobs and kept.manifest in blobs
    assert [r.id for r in engine.images.list()] == [kept.id]


def test_config_layer_count_mismatch_is_refused(engine: Engine) -> None:
    manifest, _ = make_image(engine, b"x", layers=2)
    doc = json.loads(manifest)
    doc["layers"] = doc["layers"][:1]
    with pytest.raises(InvalidArchive, match="broken"):
        engine.images.store.add(canonical_json(doc), mt.OCI_MANIFEST, unpack=False)
    assert engine.images.list() == []
