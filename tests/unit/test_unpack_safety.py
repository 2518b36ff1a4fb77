"""Every layer entry that would land outside the layer is refused, naming the entry."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from intermodal.errors import InvalidArchive, UnsafePath
from intermodal.storage.unpack import clean_name, extract
from tests.support.layertar import directory, file, hardlink, symlink, tar_bytes


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    """A layer directory and, beside it, a directory an escape would reach."""
    layer = tmp_path / "layer"
    outside = tmp_path / "outside"
    layer.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("keep me")
    return layer, outside


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a/b", "a/b"),
        ("./a/b/", "a/b"),
        ("a//b/./c", "a/b/c"),
        ("./", ""),
        (".", ""),
    ],
)
def test_clean_name_normalises(name: str, expected: str) -> None:
    assert clean_name(name, name) == expected


@pytest.mark.parametrize("name", ["../x", "a/../../x", "a/..", "/abs", "/etc/passwd", "./../x"])
def test_clean_name_refuses(name: str) -> None:
    with pytest.raises(UnsafePath, match="refused"):
        clean_name(name, name)


ESCAPES = {
    "dotdot": lambda out: tar_bytes(file("../outside/evil", b"x")),
    "dotdot-deep": lambda out: tar_bytes(directory("a"), file("a/../../outside/evil", b"x")),
    "absolute": lambda out: tar_bytes(file(f"{out}/evil", b"x")),
    "symlink-then-write": lambda out: tar_bytes(symlink("esc", str(out)), file("esc/evil", b"x")),
    "relative-symlink-then-write": lambda out: tar_bytes(symlink("esc", "../outside"), file("esc/evil", b"x")),
    "symlink-then-dir": lambda out: tar_bytes(symlink("esc", str(out)), directory("esc/sub")),
    "nested-symlink-then-write": lambda out: tar_bytes(
        directory("a"), symlink("a/b", str(out)), file("a/b/c/evil", b"x")),
    "hardlink-dotdot": lambda out: tar_bytes(hardlink("link", "../outside/secret")),
    "hardlink-absolute": lambda out: tar_bytes(hardlink("link", f"{out}/secret")),
    "hardlink-through-symlink": lambda out: tar_bytes(symlink("esc", str(out)), hardlink("link", "esc/secret")),
    "whiteout-through-symlink": lambda out: tar_bytes(symlink("esc", str(out)), file("esc/.wh.secret")),
    "opaque-through-symlink": lambda out: tar_bytes(symlink("esc", str(out)), file("esc/.wh..wh..opq")),
    "whiteout-of-dotdot": lambda out: tar_bytes(file(".wh...")),
}


@pytest.mark.parametrize("whiteouts", ["overlay", "apply"])
@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_escape_is_refused_and_names_the_entry(world: tuple[Path, Path], whiteouts: str, case: str) -> None:
    layer, outside = world
    data = ESCAPES[case](outside)
    with pytest.raises(UnsafePath) as info:
        extract(io.BytesIO(data), layer, whiteouts=whiteouts)
    assert repr(_last_name(data)) in str(info.value)
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_text() == "keep me"
    assert not (outside / "secret").is_symlink()


def test_symlinks_themselves_may_point_anywhere(world: tuple[Path, Path]) -> None:
    # Absolute and climbing symlinks are normal in images (/bin/sh -> busybox);
    # they are resolved inside the container, never during extraction.
    layer, _ = world
    data = tar_bytes(symlink("abs", "/etc/passwd"), symlink("up", "../../../etc"))
    extract(io.BytesIO(data), layer, whiteouts="overlay")
    assert (layer / "abs").readlink() == Path("/etc/passwd")
    assert (layer / "up").readlink() == Path("../../../etc")


def test_hardlink_to_missing_target_is_refused(world: tuple[Path, Path]) -> None:
    layer, _ = world
    with pytest.raises(InvalidArchive, match="'link'"):
        extract(io.BytesIO(tar_bytes(hardlink("link", "nowhere"))), layer, whiteouts="overlay")


def test_file_over_directory_parent_is_refused(world: tuple[Path, Path]) -> None:
    layer, _ = world
    data = tar_bytes(file("a", b"plain"), file("a/b", b"x"))
    with pytest.raises(InvalidArchive, match="'a/b'"):
        extract(io.BytesIO(data), layer, whiteouts="overlay")


def test_replacing_a_directory_by_a_symlink_forgets_it(world: tuple[Path, Path]) -> None:
    # "d" is first a directory, then a symlink out; writing under "d" afterwards
    # must see the symlink, not the remembered directory.
    layer, outside = world
    data = tar_bytes(directory("d"), file("d/x", b"1"), symlink("d", str(outside)), file("d/evil", b"2"))
    with pytest.raises(UnsafePath, match="'d/evil'"):
        extract(io.BytesIO(data), layer, whiteouts="overlay")
    assert not (outside / "evil").exists()


def _last_name(data: bytes) -> str:
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()[-1].name
