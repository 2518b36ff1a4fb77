"""Whiteouts: stored for overlayfs, or carried out on a copy of the parent (vfs)."""

from __future__ import annotations

import io
import os
import shutil
import stat
from pathlib import Path

import pytest

from intermodal.storage.unpack import extract
from tests.support.layertar import directory, file, opaque, tar_bytes, whiteout

LOWER = (directory("etc"), file("etc/keep", b"k"), file("etc/gone", b"g"), directory("var/cache"),
         file("var/cache/a", b"a"), file("var/cache/b", b"b"), directory("var/cache/sub"), file("var/cache/sub/c"),
         directory("opt/tree"), file("opt/tree/x"))
UPPER = (whiteout("etc/gone"), whiteout("opt/tree"), file("var/cache/new", b"n"), opaque("var/cache"),
         file("var/cache/after", b"z"))


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.requires("root")
def test_overlay_whiteouts_are_devices_and_xattrs(tmp_path: Path) -> None:
    dest = tmp_path / "upper"
    dest.mkdir()
    extract(io.BytesIO(tar_bytes(*UPPER)), dest, whiteouts="overlay")
    for gone in ("etc/gone", "opt/tree"):
        st = os.lstat(dest / gone)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0), gone
    assert os.getxattr(dest / "var/cache", "trusted.overlay.opaque") == b"y"
    assert not any(".wh." in name for name in _files(dest))
    assert (dest / "var/cache/new").read_bytes() == b"n"


def test_apply_whiteouts_on_a_copy_of_the_parent(tmp_path: Path) -> None:
    parent = tmp_path / "parent"
    parent.mkdir()
    extract(io.BytesIO(tar_bytes(*LOWER)), parent, whiteouts="apply")
    child = tmp_path / "child"
    shutil.copytree(parent, child, symlinks=True)
    extract(io.BytesIO(tar_bytes(*UPPER)), child, whiteouts="apply")
    assert _files(child) == {"etc", "etc/keep", "var", "var/cache", "var/cache/new", "var/cache/after", "opt"}
    # the parent is untouched
    assert {"etc/gone", "opt/tree/x", "var/cache/sub/c"} <= _files(parent)


def test_apply_opaque_keeps_entries_of_the_same_layer_written_before_it(tmp_path: Path) -> None:
    dest = tmp_path / "snap"
    dest.mkdir()
    extract(io.BytesIO(tar_bytes(directory("d"), file("d/old"))), dest, whiteouts="apply")
    extract(io.BytesIO(tar_bytes(directory("d"), file("d/mine"), directory("d/sub"), file("d/sub/x"), opaque("d"))),
            dest, whiteouts="apply")
    assert _files(dest) == {"d", "d/mine", "d/sub", "d/sub/x"}


def test_whiteout_of_missing_path_is_harmless(tmp_path: Path) -> None:
    dest = tmp_path / "snap"
    dest.mkdir()
    extract(io.BytesIO(tar_bytes(whiteout("nothing/here"))), dest, whiteouts="apply")
    assert _files(dest) == {"nothing"}
