"""intermodal.fsutil and intermodal.locking on a real temporary directory."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from intermodal.errors import InvalidArgument, LockTimeout
from intermodal.fsutil import check_name, remove_tree
from intermodal.locking import locked


def _tree(root: Path) -> None:
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "b" / "c" / "f").write_text("x")
    (root / "a" / "g").write_text("y")
    (root / "empty").mkdir()
    os.mkfifo(root / "fifo")
    (root / "dangling").symlink_to(root / "nowhere")


def test_remove_tree_removes_everything(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    _tree(tree)
    remove_tree(tree)
    assert not tree.exists()
    assert list(tmp_path.iterdir()) == []


def test_remove_tree_does_not_follow_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("k")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "link").symlink_to(outside)
    (tree / "filelink").symlink_to(outside / "keep")
    remove_tree(tree)
    assert not tree.exists()
    assert (outside / "keep").read_text() == "k"


def test_remove_tree_of_a_missing_path_is_done(tmp_path: Path) -> None:
    remove_tree(tmp_path / "missing")
    assert not (tmp_path / "missing").exists()


def test_remove_tree_refuses_a_symlink_and_a_file(tmp_path: Path) -> None:
    target = tmp_path / "dir"
    target.mkdir()
    (target / "f").write_text("x")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(OSError, match="symbolic link"):
        remove_tree(tmp_path / "link")
    assert (target / "f").exists()
    with pytest.raises(NotADirectoryError):
        remove_tree(target / "f")


def test_check_name() -> None:
    assert check_name("web-1.a_b", "container") == "web-1.a_b"
    for bad in ("", "../x", "a/b", "-x", ".x", "a" * 254, "web\n", "a b", "\u00e9t\u00e9", "\uff57eb", "x\x00"):
        with pytest.raises(InvalidArgument, match="invalid container name"):
            check_name(bad, "container")


def test_check_name_accepts_what_docker_s_pattern_accepts() -> None:
    import random
    import re

    rng = random.Random(7)
    alphabet = "aZ09_.-/ \n\u00e9"
    for _ in range(3000):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        wanted = re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name) is not None
        try:
            got = check_name(name, "volume") == name
        except InvalidArgument:
            got = False
        assert got == wanted, repr(name)


def test_locked_holds_an_flock_and_releases_it(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "one"
    with locked(path):
        fd = os.open(path, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with pytest.raises(LockTimeout, match="still locked"), locked(path, timeout=0.05):
                pass
        finally:
            os.close(fd)
    with locked(path, timeout=0.05):  # free again
        assert path.exists()


def test_locked_shared_locks_coexist(tmp_path: Path) -> None:
    path = tmp_path / "shared"
    with locked(path, shared=True), locked(path, shared=True, timeout=0.05):
        assert path.exists()
