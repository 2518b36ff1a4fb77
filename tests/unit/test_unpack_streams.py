"""Layer streams: compression detection, gzip/zstd/bzip2/xz decoding, hashing, the compressing tee."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import zlib

import pytest

from intermodal.errors import InvalidArchive
from intermodal.storage import streams

DATA = os.urandom(300_000) + b"\0" * 300_000


def _zstd(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


COMPRESSORS = {
    "gzip": lambda d: gzip.compress(d),
    "zstd": _zstd,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "none": lambda d: d,
}


def _read_all(reader: streams.Readable, size: int = 65536) -> bytes:
    out = []
    while chunk := reader.read(size):
        out.append(chunk)
    return b"".join(out)


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_detect_and_decompress(kind: str) -> None:
    packed = COMPRESSORS[kind](DATA)
    found, reader = streams.sniffed(io.BytesIO(packed))
    assert found == kind
    assert _read_all(streams.decompressed(reader, found)) == DATA


def test_multi_member_gzip_and_trailing_zeros() -> None:
    packed = gzip.compress(b"first ") + gzip.compress(b"second") + b"\0" * 1000
    assert _read_all(streams.GzipReader(io.BytesIO(packed))) == b"first second"


def test_truncated_gzip_is_an_error() -> None:
    packed = gzip.compress(DATA)
    with pytest.raises(InvalidArchive, match="truncated"):
        _read_all(streams.GzipReader(io.BytesIO(packed[: len(packed) // 2])))


def test_corrupt_gzip_is_an_error() -> None:
    packed = bytearray(gzip.compress(DATA))
    packed[40:60] = b"\xff" * 20
    with pytest.raises(InvalidArchive, match="corrupt"):
        _read_all(streams.GzipReader(io.BytesIO(bytes(packed))))


def test_gzip_reader_bounds_its_output() -> None:
    # a small compressed input must not expand into one huge buffer (gzip bomb)
    reader = streams.GzipReader(io.BytesIO(gzip.compress(b"\0" * (8 << 20))))
    assert len(reader.read(1000)) <= 1000


def test_hashing_reader_covers_everything() -> None:
    reader = streams.HashingReader(io.BytesIO(DATA))
    reader.read(10)
    reader.drain()
    assert reader.digest == "sha256:" + hashlib.sha256(DATA).hexdigest()
    assert reader.size == len(DATA)


def test_prefixed_replays_the_sniffed_bytes() -> None:
    reader = streams.Prefixed(b"abc", io.BytesIO(b"def"))
    assert reader.read(2) + _read_all(reader, 2) == b"abcdef"


def test_compressing_tee_writes_a_gzip_of_the_stream() -> None:
    sink = io.BytesIO()
    tee = streams.CompressingTee(io.BytesIO(DATA), sink)
    assert tee.read(1000) == DATA[:1000]
    tee.finish()
    assert gzip.decompress(sink.getvalue()) == DATA
    assert tee.digest == "sha256:" + hashlib.sha256(DATA).hexdigest()
    # deterministic: no timestamp in the header, so equal tars give equal blobs
    sink2 = io.BytesIO()
    streams.CompressingTee(io.BytesIO(DATA), sink2).finish()
    assert sink.getvalue() == sink2.getvalue()
    assert zlib.decompress(sink.getvalue(), 31) == DATA


class _Trickle:
    """A source that returns at most *step* bytes per read, like a pipe."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._pos, self._step = data, 0, step

    def read(self, n: int = -1) -> bytes:
        n = self._step if n < 0 else min(n, self._step)
        out = self._data[self._pos:self._pos + n]
        self._pos += len(out)
        return out


@pytest.mark.parametrize("step", [7, 512, 1 << 20])
def test_forward_reader_reads_seeks_and_peeks(step: int) -> None:
    data = bytes(range(256)) * 40
    reader = streams.ForwardReader(_Trickle(data, step))
    assert reader.peek(600) == data[:600] and reader.tell() == 0
    assert reader.read(512) == data[:512]
    reader.seek(100)  # a step back inside what is buffered
    assert reader.read(12) == data[100:112]
    assert reader.seek(1000) == 1000 and reader.read(24) == data[1000:1024]
    assert reader.read(5000) == data[1024:6024]
    assert reader.seek(20000) == len(data)  # seeking past the end stops at the end
    assert reader.read(10) == b""
    with pytest.raises(OSError, match="seek back"):
        reader.seek(0)


def test_compressing_tee_in_pieces_is_ordered_and_deterministic() -> None:
    def run(workers: int) -> bytes:
        sink = io.BytesIO()
        tee = streams.CompressingTee(io.BytesIO(DATA), sink, workers=workers)
        tee.PIECE = 10_000  # many members, finishing out of order across threads
        while tee.read(7_777):
            pass
        tee.finish()
        return sink.getvalue()

    one, four = run(1), run(4)
    assert one == four  # the same bytes whatever the thread timing
    assert one.count(b"\x1f\x8b\x08") >= len(DATA) // 10_000  # one gzip member per piece
    assert gzip.decompress(one) == DATA
    assert _read_all(streams.GzipReader(io.BytesIO(one))) == DATA


def test_compressing_tee_of_an_empty_stream_is_a_valid_gzip() -> None:
    sink = io.BytesIO()
    streams.CompressingTee(io.BytesIO(b""), sink).finish()
    assert gzip.decompress(sink.getvalue()) == b""
