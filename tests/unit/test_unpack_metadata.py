"""Extraction keeps what the tar says: content, owners, modes, times, xattrs, links, devices."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from intermodal.errors import InvalidArchive
from intermodal.storage.unpack import extract
from tests.support.layertar import MTIME, Entry, directory, file, hardlink, symlink, tar_bytes


def _extract(tmp_path: Path, *entries: Entry, whiteouts: str = "overlay") -> Path:
    dest = tmp_path / "layer"
    dest.mkdir(exist_ok=True)
    extract(io.BytesIO(tar_bytes(*entries)), dest, whiteouts=whiteouts)
    return dest


def test_files_dirs_and_symlinks(tmp_path: Path) -> None:
    dest = _extract(
        tmp_path,
        directory("etc", mode=0o750),
        file("etc/hostname", b"box\n", mode=0o600),
        file("usr/bin/tool", b"#!/bin/sh\n", mode=0o4755),  # parents implied
        symlink("bin", "usr/bin"),
    )
    assert (dest / "etc/hostname").read_bytes() == b"box\n"
    assert stat.S_IMODE((dest / "etc").stat().st_mode) == 0o750
    assert stat.S_IMODE((dest / "etc/hostname").stat().st_mode) == 0o600
    assert stat.S_IMODE((dest / "usr/bin/tool").stat().st_mode) == 0o4755
    assert (dest / "usr").is_dir() and stat.S_IMODE((dest / "usr").stat().st_mode) == 0o755
    assert os.readlink(dest / "bin") == "usr/bin"


def test_mtimes_are_kept_for_files_dirs_and_symlinks(tmp_path: Path) -> None:
    dest = _extract(tmp_path, directory("d", mtime=MTIME - 100), file("d/f", b"x", mtime=MTIME - 50),
                    symlink("d/l", "f", mtime=MTIME - 10))
    # the directory's time is set after its entries were created in it
    assert int((dest / "d").stat().st_mtime) == MTIME - 100
    assert int((dest / "d/f").stat().st_mtime) == MTIME - 50
    assert int(os.lstat(dest / "d/l").st_mtime) == MTIME - 10


@pytest.mark.requires("root")
def test_owners_and_xattrs_are_kept(tmp_path: Path) -> None:
    cap = b"\x01\x00\x00\x02\x00\x04\x00\x00" + b"\x00" * 12  # binary: cap_net_bind_service
    dest = _extract(
        tmp_path,
        directory("home/u", uid=1000, gid=1000),
        file("home/u/f", b"x", uid=1000, gid=100, mode=0o2755, xattrs={"user.note": b"hello"}),
        file("ping", b"elf", mode=0o755, xattrs={"security.capability": cap}),
        symlink("home/u/l", "f", uid=1000, gid=1000),
    )
    st = (dest / "home/u/f").stat()
    assert (st.st_uid, st.st_gid) == (1000, 100)
    assert stat.S_IMODE(st.st_mode) == 0o2755  # chown before chmod keeps setgid
    assert os.getxattr(dest / "home/u/f", "user.note") == b"hello"
    assert os.getxattr(dest / "ping", "security.capability") == cap  # xattrs after chown survive
    assert (os.lstat(dest / "home/u/l").st_uid, (dest / "home/u").stat().st_uid) == (1000, 1000)


@pytest.mark.requires("root")
def test_overlay_xattrs_from_the_tar_are_ignored(tmp_path: Path) -> None:
    # trusted.overlay.* would let a layer redirect overlayfs into other layers
    dest = _extract(tmp_path, directory("d", xattrs={"trusted.overlay.redirect": b"/etc", "user.ok": b"1"}))
    assert "trusted.overlay.redirect" not in os.listxattr(dest / "d")
    assert os.getxattr(dest / "d", "user.ok") == b"1"


def test_hardlinks_share_the_inode(tmp_path: Path) -> None:
    dest = _extract(tmp_path, file("a", b"same"), directory("sub"), hardlink("sub/b", "a"))
    assert (dest / "a").stat().st_ino == (dest / "sub/b").stat().st_ino
    assert (dest / "a").stat().st_nlink == 2


def test_hardlink_to_a_symlink_links_the_symlink(tmp_path: Path) -> None:
    dest = _extract(tmp_path, symlink("s", "/etc/passwd"), hardlink("h", "s"))
    assert os.readlink(dest / "h") == "/etc/passwd"


@pytest.mark.requires("root")
def test_device_nodes_and_fifos_as_root(tmp_path: Path) -> None:
    dest = _extract(tmp_path, Entry("dev/null", "char", mode=0o666, dev=(1, 3)),
                    Entry("dev/loop9", "block", mode=0o660, dev=(7, 9)), Entry("run/fifo", "fifo", mode=0o600))
    st = os.lstat(dest / "dev/null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    assert stat.S_IMODE(st.st_mode) == 0o666
    assert stat.S_ISBLK(os.lstat(dest / "dev/loop9").st_mode)
    assert stat.S_ISFIFO(os.lstat(dest / "run/fifo").st_mode)


def test_later_entry_replaces_earlier(tmp_path: Path) -> None:
    dest = _extract(tmp_path, directory("x"), file("x/inner", b"1"), file("x", b"now a file"),
                    file("y", b"old"), symlink("y", "x"), directory("z"), directory("z", mode=0o700))
    assert (dest / "x").read_bytes() == b"now a file"
    assert os.readlink(dest / "y") == "x"
    assert stat.S_IMODE((dest / "z").stat().st_mode) == 0o700


def test_large_file_in_chunks(tmp_path: Path) -> None:
    blob = os.urandom(3 * (1 << 20) + 17)
    dest = _extract(tmp_path, file("big", blob))
    assert (dest / "big").read_bytes() == blob


def test_returns_content_size_and_entry_count(tmp_path: Path) -> None:
    dest = tmp_path / "layer"
    dest.mkdir()
    result = extract(io.BytesIO(tar_bytes(directory("d"), file("d/a", b"12345"), file("b", b"xy"))), dest,
                     whiteouts="overlay")
    assert (result.size, result.entries) == (7, 3)


def test_empty_layer(tmp_path: Path) -> None:
    dest = tmp_path / "layer"
    dest.mkdir()
    assert extract(io.BytesIO(b"\0" * 1024), dest, whiteouts="overlay").entries == 0
    assert extract(io.BytesIO(tar_bytes()), dest, whiteouts="overlay").entries == 0
    assert list(dest.iterdir()) == []


def test_not_a_tar(tmp_path: Path) -> None:
    dest = tmp_path / "layer"
    dest.mkdir()
    with pytest.raises(InvalidArchive, match="not a tar"):
        extract(io.BytesIO(b"this is not a tar archive" * 40), dest, whiteouts="overlay")


def test_truncated_tar(tmp_path: Path) -> None:
    dest = tmp_path / "layer"
    dest.mkdir()
    data = tar_bytes(file("big", os.urandom(100_000)))
    with pytest.raises(InvalidArchive, match="big"):
        extract(io.BytesIO(data[:50_000]), dest, whiteouts="overlay")


def test_filesystem_errors_are_kernel_errors_naming_the_entry(tmp_path: Path) -> None:
    from intermodal.errors import KernelError

    dest = tmp_path / "layer"
    dest.mkdir()
    # a name too long for the filesystem: ENAMETOOLONG, which no check before it catches
    data = tar_bytes(file("d/" + "x" * 300, b"1"))
    with pytest.raises(KernelError, match="x" * 20) as info:
        extract(io.BytesIO(data), dest, whiteouts="overlay")
    assert "File name too long" in str(info.value)
