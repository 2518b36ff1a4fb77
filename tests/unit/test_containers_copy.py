"""Path resolution inside a container's tree (copy.py): links stay in the container, mounts are followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from intermodal.containers.copy import ContainerFS, parse_cp_args
from intermodal.errors import InvalidArgument


@pytest.fixture
def tree(tmp_path: Path) -> ContainerFS:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "etc" / "passwd").write_text("root\n")
    os.symlink("/etc", root / "abs")  # absolute: the container's /etc, never the host's
    os.symlink("../../../../etc", root / "etc" / "up")  # .. stops at the container's root
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    os.symlink("/data/inside", root / "to-volume")
    volume = tmp_path / "volume"
    volume.mkdir()
    (volume / "inside").write_text("vol\n")
    return ContainerFS(str(root), [("/data", str(volume))])


@pytest.mark.parametrize(("path", "resolved"), [
    ("/etc/passwd", "/etc/passwd"),
    ("abs/passwd", "/etc/passwd"),
    ("/etc/up/passwd", "/etc/passwd"),
    ("/../../etc/./passwd", "/etc/passwd"),
    ("/to-volume", "/data/inside"),
    ("/missing/file", "/missing/file"),
])
def test_resolve_stays_inside(tree, path, resolved):
    assert tree.resolve(path) == resolved


def test_host_paths_follow_mounts(tree, tmp_path):
    assert tree.host("/etc/passwd") == str(tmp_path / "rootfs" / "etc" / "passwd")
    assert tree.host(tree.resolve("/to-volume")) == str(tmp_path / "volume" / "inside")
    assert Path(tree.host(tree.resolve("/to-volume"))).read_text() == "vol\n"


def test_last_link_kept_when_asked(tree):
    assert tree.resolve("/abs", follow_last=False) == "/abs"


def test_link_loops_end(tree):
    with pytest.raises(InvalidArgument, match="too many symbolic links"):
        tree.resolve("/loop1")


@pytest.mark.parametrize(("src", "dest", "expected"), [
    ("web:/etc/hosts", ".", ("out", "web", "/etc/hosts", ".")),
    ("./file", "web:/tmp", ("in", "web", "/tmp", "./file")),
    ("-", "web:/", ("in", "web", "/", "-")),
    ("/abs:path", "web:", ("in", "web", "/", "/abs:path")),
])
def test_parse_cp_args(src, dest, expected):
    assert parse_cp_args(src, dest) == expected


@pytest.mark.parametrize(("src", "dest"), [("a:/x", "b:/y"), ("file", "other")])
def test_parse_cp_args_refuses(src, dest):
    with pytest.raises(InvalidArgument):
        parse_cp_args(src, dest)
