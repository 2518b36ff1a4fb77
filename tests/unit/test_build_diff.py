"""The vfs diff: what differs between a snapshot and a changed copy, as a layer tar with whiteouts."""

from __future__ import annotations

import io
import os
import shutil
import tarfile

from intermodal.images.build.diff import write_compare


def test_compare_finds_added_changed_removed_and_leaves_the_rest(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "copy"
    for name, text in {"same": "1", "changed": "2", "gone": "3", "dir/in": "4", "olddir/x": "5"}.items():
        (lower / name).parent.mkdir(parents=True, exist_ok=True)
        (lower / name).write_text(text)
    os.symlink("same", lower / "link")
    shutil.copytree(lower, upper, symlinks=True)  # copy2 keeps the times, as `cp -a` does
    (upper / "changed").write_text("X")  # same size, new content
    (upper / "gone").unlink()
    shutil.rmtree(upper / "olddir")
    (upper / "dir" / "new").write_text("6")
    os.chmod(upper / "same", 0o600)  # metadata only
    os.unlink(upper / "link")
    os.symlink("changed", upper / "link")
    out = io.BytesIO()
    write_compare(lower, upper, out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        names = sorted(tar.getnames())
    assert names == [".wh.gone", ".wh.olddir", "changed", "dir", "dir/new", "link", "same"]


def test_compare_without_a_lower_takes_everything(tmp_path):
    (tmp_path / "a").write_text("1")
    out = io.BytesIO()
    write_compare(None, tmp_path, out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        assert tar.getnames() == ["a"]
