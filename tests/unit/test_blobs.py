import os
from pathlib import Path

import pytest

from intermodal.errors import BlobNotFound, DigestMismatch, InvalidArgument
from intermodal.images.blobs import BlobStore
from intermodal.images.digest import sha256_digest


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs", tmp_path / "tmp")


def test_put_and_read_round_trip(blobs: BlobStore) -> None:
    digest = blobs.put(b"hello")
    assert digest == sha256_digest(b"hello")
    assert blobs.read(digest) == b"hello"
    assert blobs.size(digest) == 5
    assert list(blobs.digests()) == [digest]


def test_wrong_digest_stores_nothing(blobs: BlobStore, tmp_path: Path) -> None:
    expected = sha256_digest(b"good")
    with pytest.raises(DigestMismatch, match="tampered"), blobs.writer(expected, 3) as w:
        w.write(b"bad")
    assert not blobs.has(expected)
    assert list(blobs.digests()) == []
    assert os.listdir(tmp_path / "tmp") == []


def test_more_data_than_announced_is_refused(blobs: BlobStore) -> None:
    with pytest.raises(InvalidArgument, match="larger than"), blobs.writer(sha256_digest(b"abc"), 2) as w:
        w.write(b"abc")
    assert list(blobs.digests()) == []


def test_short_data_is_refused(blobs: BlobStore) -> None:
    with pytest.raises(InvalidArgument, match="announced"), blobs.writer(None, 10) as w:
        w.write(b"abc")
    assert list(blobs.digests()) == []


def test_corruption_on_disk_is_detected_on_read(blobs: BlobStore) -> None:
    digest = blobs.put(b"config")
    blobs.path(digest).write_bytes(b"changed")
    with pytest.raises(DigestMismatch):
        blobs.read(digest)


def test_missing_blob_says_what_to_do(blobs: BlobStore) -> None:
    with pytest.raises(BlobNotFound, match="pull or load"):
        blobs.open(sha256_digest(b"x"))


def test_malformed_digest_is_refused(blobs: BlobStore) -> None:
    with pytest.raises(InvalidArgument):
        blobs.path("sha256:../../etc/passwd")
